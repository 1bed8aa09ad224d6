//! The shim's state directory: small files written whole or not at all, so a power cut leaves
//! either the old contents or the new.

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use std::io::Write;

/// Writes `name` in `dir` atomically and durably: a temporary file, synced, renamed over the old
/// one, and the directory synced so the rename itself survives a power cut.
pub fn write_atomic(dir: &Dir, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = format!(".{name}.tmp");
    let mut options = OpenOptions::new();
    // Owner only: the code cache holds the station's code key.
    options.write(true).create(true).truncate(true).mode(0o600);
    let mut file = dir.open_with(&tmp, &options)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    dir.rename(&tmp, dir, name)?;
    dir.open(".")?.sync_all()
}
