//! Files a node writes whole or not at all, through `cap-std` directory handles, so a name can
//! never escape the directory it is written in. It depends on cap-std alone.

use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use std::io::Write;

/// Who may read a file: everyone on the host, or its owner only (keys, secrets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 0644: certificates, revocation lists, policies.
    Public,
    /// 0600: private keys.
    Private,
}

/// Creates `path` if it is missing, with any missing parents, all readable by their owner alone
/// (0700), and makes `path` itself so if it existed: the directories that hold a node's store,
/// keys and secrets.
pub fn private_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
}

/// Writes `name` in `dir` atomically and durably: a temporary file, synced, renamed over the old
/// one, and the directory synced so the rename survives a crash. A reader sees the old bytes or
/// the new ones, never a mix.
pub fn write_atomic(dir: &Dir, name: &str, bytes: &[u8], mode: Mode) -> std::io::Result<()> {
    let tmp = format!(".{name}.tmp");
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    options.mode(match mode {
        Mode::Public => 0o644,
        Mode::Private => 0o600,
    });
    let mut file = dir.open_with(&tmp, &options)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    dir.rename(&tmp, dir, name)?;
    dir.open(".")?.sync_all()
}
