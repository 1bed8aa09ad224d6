//! Builds guest crates of `plugins/` into WebAssembly components from a build script, so a
//! checkout never commits a `.wasm` file and always runs the plugins it holds.
//!
//! It is a build-dependency only: no node links it. It runs the cargo that runs the build
//! script, for `wasm32-wasip2`, into one guest target directory per host profile, and first adds
//! that target with rustup when the toolchain lacks it (a fresh machine has only rustup and
//! cargo). It depends on nothing but std.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest target.
pub const TARGET: &str = "wasm32-wasip2";

/// Builds `packages` (guest package names as in `plugins/Cargo.toml`) in release mode and copies
/// each `{package}.wasm` (dashes as underscores) into the build script's `OUT_DIR`.
///
/// # Panics
///
/// When cargo cannot build them: a build script has no other way to fail, and the message says
/// what to fix.
pub fn build(packages: &[&str]) {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = workspace_root(&manifest_dir);
    let out = PathBuf::from(env("OUT_DIR"));
    for watched in ["plugins", "wit"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    ensure_target();
    let target_dir = guest_target_dir(&out);
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    // Run in `plugins/`, so cargo reads the guests' own `.cargo/config.toml` (their link flags).
    cargo
        .current_dir(root.join("plugins"))
        .args(["build", "--release", "--locked", "--target", TARGET])
        .arg("--manifest-path")
        .arg(root.join("plugins/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for package in packages {
        cargo.args(["--package", package]);
    }
    // The outer build's flags, target and wrappers (clippy's, for one) are for the host crates,
    // not for the guests.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CLIPPY_ARGS",
        "RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
    ] {
        cargo.env_remove(var);
    }
    let status = cargo.status().expect("cargo runs");
    if !status.success() {
        panic!(
            "building {packages:?} of plugins/ for {TARGET} failed; is the target installed? \
             (rustup target add {TARGET})"
        );
    }
    for package in packages {
        let file = format!("{}.wasm", package.replace('-', "_"));
        let built = target_dir.join(TARGET).join("release").join(&file);
        std::fs::copy(&built, out.join(&file)).unwrap_or_else(|e| panic!("{built:?}: {e}"));
    }
}

fn env(name: &str) -> OsString {
    std::env::var_os(name).unwrap_or_else(|| panic!("{name} is set by cargo for build scripts"))
}

/// The directory holding `plugins/` and `wit/`, found upwards from the calling crate.
fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .find(|dir| dir.join("plugins/Cargo.toml").is_file() && dir.join("wit").is_dir())
        .unwrap_or_else(|| panic!("no plugins/ above {manifest_dir:?}"))
        .to_path_buf()
}

/// One guest target directory per host profile (`OUT_DIR` is
/// `<target>/<profile>/build/<package>-<hash>/out`), shared by every crate that builds guests,
/// so the SDK and its dependencies compile once; cargo's own lock serialises the builds.
fn guest_target_dir(out: &Path) -> PathBuf {
    out.ancestors().nth(3).unwrap_or(out).join("guest-plugins")
}

/// Adds the guest target with rustup when the toolchain running this build lacks it. rustup
/// honours `RUSTUP_TOOLCHAIN`, which its proxies set for the build, so the target lands on the
/// toolchain in use. Without rustup, the build that follows says what is missing.
fn ensure_target() {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = sysroot.is_some_and(|s| s.join("lib/rustlib").join(TARGET).is_dir());
    if installed {
        return;
    }
    match Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
    {
        Ok(status) if status.success() => {}
        Ok(status) => println!("cargo:warning=rustup target add {TARGET} failed: {status}"),
        Err(e) => println!("cargo:warning=rustup is not available to add {TARGET}: {e}"),
    }
}
