//! Builds the guest workspace in `plugins/` for `wasm32-wasip2` with the same cargo that builds
//! this crate, into a target directory of its own under `OUT_DIR`, so tests always run the
//! plugins of this checkout and no `.wasm` file is ever committed.

use std::path::PathBuf;
use std::process::Command;

const PLUGINS: &[&str] = &[
    "reservation_balanced",
    "notify_multichannel",
    "site_rules_standard",
    "misbehave_loop",
    "misbehave_trap",
    "misbehave_recursion",
    "misbehave_unknown_station",
    "misbehave_huge_answer",
    "misbehave_memory",
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.join("../..");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    for watched in ["plugins", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    let target_dir = out.join("plugins-target");
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        // The outer build's flags, target and wrappers (clippy's, for one) are for the host
        // crates, not for the guests.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("cargo runs");
    if !status.success() {
        panic!(
            "building plugins/ for wasm32-wasip2 failed; is the target installed? \
             (rustup target add wasm32-wasip2)"
        );
    }
    for plugin in PLUGINS {
        let built = target_dir.join(format!("wasm32-wasip2/release/{plugin}.wasm"));
        std::fs::copy(&built, out.join(format!("{plugin}.wasm")))
            .unwrap_or_else(|e| panic!("{built:?}: {e}"));
    }
}
