//! What a deployment leaves on disk: readable by the service alone.

use crate::edges::{deposit_parcels, edge_b};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Every directory under `root` (and `root`) with its mode, and every file.
fn walk(root: &Path, dirs: &mut Vec<(String, u32)>, files: &mut Vec<(String, u32)>) {
    let mode = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.permissions().mode() & 0o777);
    dirs.push((root.display().to_string(), mode(root)));
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, dirs, files);
        } else {
            files.push((path.display().to_string(), mode(&path)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_keys_and_caches_are_readable_by_the_service_alone() -> anyhow::Result<()> {
    let d = edge_b(10).await?;
    deposit_parcels(&d, "st-b", 1).await?;
    d.locker_until("st-b", |s| s["cached_codes"] == 1).await?;
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    walk(&d.gateway.data_dir, &mut dirs, &mut files);
    for (dir, mode) in &dirs {
        assert_eq!(mode & 0o077, 0, "{dir} is {mode:o}");
    }
    let secret = |name: &str| {
        name.ends_with(".redb")
            || name.ends_with(".key")
            || name.ends_with(".keys")
            || name.ends_with(".key.pem")
            || name.ends_with("codes.json")
            || name.ends_with("tokens/active")
    };
    let held: Vec<&(String, u32)> = files.iter().filter(|(f, _)| secret(f)).collect();
    for kind in [
        "gateway.redb",
        "edge.redb",
        "secrets/command.key",
        "secrets/code.key",
        "secrets/plugin-signing.key",
        "secrets/tokens/active",
        "ca.key.pem",
        "codes.json",
    ] {
        assert!(
            held.iter().any(|(f, _)| f.ends_with(kind)),
            "no {kind} among {held:?}"
        );
    }
    for (file, mode) in held {
        assert_eq!(*mode, 0o600, "{file} is {mode:o}");
    }
    d.stop().await
}
