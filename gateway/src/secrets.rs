//! The gateway's master secret: 32 random bytes in `secrets/master.key` under the data
//! directory, created on first start with mode 0600 and never logged. The token-signing key and
//! the pickup-code hashing key are derived from it, each for its own purpose.

use hmac::{Hmac, Mac};
use lockergrid_protocol::CodeKey;
use lockergrid_protocol::command::CommandKey;
use rand::RngCore;
use sha2::Sha256;
use std::fs::OpenOptions;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Name of the key file under `secrets/`.
const MASTER_FILE: &str = "master.key";

/// The master secret and the keys derived from it.
#[derive(Clone)]
pub struct Secrets {
    master: [u8; 32],
}

/// Why the secret could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Reading or writing the key file failed.
    #[error("secret key file {path:?}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key file exists but is not 32 bytes.
    #[error("secret key file {0:?} is not 32 bytes; refusing to replace it")]
    Malformed(std::path::PathBuf),
}

impl Secrets {
    /// Loads the master secret from `data_dir`, creating it if this is the first start.
    pub fn load_or_create(data_dir: &Path) -> Result<Secrets, SecretsError> {
        let dir = data_dir.join("secrets");
        let path = dir.join(MASTER_FILE);
        let io = |source| SecretsError::Io {
            path: path.clone(),
            source,
        };
        lockergrid_files::private_dir(&dir).map_err(io)?;
        let mut master = [0u8; 32];
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                rand::rng().fill_bytes(&mut master);
                file.write_all(&master).map_err(io)?;
                file.sync_all().map_err(io)?;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let mut bytes = Vec::new();
                std::fs::File::open(&path)
                    .and_then(|mut f| f.read_to_end(&mut bytes))
                    .map_err(io)?;
                master = bytes
                    .try_into()
                    .map_err(|_| SecretsError::Malformed(path.clone()))?;
            }
            Err(e) => return Err(io(e)),
        }
        Ok(Secrets { master })
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.master)
            .expect("HMAC-SHA256 accepts a key of any length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The key bearer tokens are signed with.
    pub fn token_key(&self) -> [u8; 32] {
        self.derive("lockergrid token signing v1")
    }

    /// The deployment's own plugin-signing key, which signs the bundled default plugins.
    pub fn plugin_signing_secret(&self) -> [u8; 32] {
        self.derive("lockergrid plugin signing v1")
    }

    /// The key this gateway signs locker commands with.
    pub fn command_key(&self) -> CommandKey {
        CommandKey::from_secret(self.derive("lockergrid locker command signing v1"))
    }

    /// The key pickup codes are hashed with.
    pub fn code_key(&self) -> CodeKey {
        CodeKey::from_bytes(self.derive("lockergrid pickup code hashing v1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_created_once_and_then_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Secrets::load_or_create(dir.path()).expect("created");
        let again = Secrets::load_or_create(dir.path()).expect("loaded");
        assert_eq!(first.token_key(), again.token_key());
        assert_ne!(first.token_key(), first.derive("something else"));
        let mode = std::fs::metadata(dir.path().join("secrets/master.key"))
            .expect("exists")
            .permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }

    #[test]
    fn a_truncated_secret_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("secrets")).expect("dir");
        std::fs::write(dir.path().join("secrets/master.key"), b"short").expect("write");
        assert!(matches!(
            Secrets::load_or_create(dir.path()),
            Err(SecretsError::Malformed(_))
        ));
    }
}
