//! Writing a signing key's secret for the commands that make one (`plugin keygen`, `firmware
//! keygen`): created with mode 0600, never overwriting a file that exists.

use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `secret_hex` and a newline to a new file at `out`, readable by its owner alone.
pub fn create(out: &Path, secret_hex: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("cannot create {out:?} (it is never overwritten)"))?;
    writeln!(file, "{secret_hex}")?;
    file.sync_all()?;
    Ok(())
}
