//! A node's keys, one file each under `secrets/` in its data directory, so that each can be
//! replaced without touching the others: `command.key` (signs locker commands), `code.key`
//! (hashes pickup and drop-off codes), `plugin-signing.key` (signs the bundled plugins) and
//! `contact.key` (derives the data keys recipients' addresses are sealed with). Each is
//! 32 random bytes, created on first start with mode 0600 in a 0700 directory, and never logged.
//! The gateway's token keys have a directory of their own there (`auth::keyring`).
//!
//! A data directory from before the split holds one `master.key` the three were derived from:
//! they are written out once with the values they had (lockers keep trusting the command key,
//! stored code hashes keep matching), and the master file is removed.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use hmac::{Hmac, Mac};
use lockergrid_files::{Mode, write_atomic};
use lockergrid_protocol::CodeKey;
use lockergrid_protocol::command::CommandKey;
use rand::RngCore;
use sha2::Sha256;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// The directory under a data directory that holds the key files.
pub const SECRETS_DIR: &str = "secrets";
/// The file the keys were derived from before each had its own.
const LEGACY_MASTER: &str = "master.key";

/// One key file: its name and the purpose string the legacy master derived it with, if it did.
struct KeyFile {
    name: &'static str,
    legacy_purpose: Option<&'static str>,
}

const COMMAND: KeyFile = KeyFile {
    name: "command.key",
    legacy_purpose: Some("lockergrid locker command signing v1"),
};
const CODE: KeyFile = KeyFile {
    name: "code.key",
    legacy_purpose: Some("lockergrid pickup code hashing v1"),
};
const PLUGIN_SIGNING: KeyFile = KeyFile {
    name: "plugin-signing.key",
    legacy_purpose: Some("lockergrid plugin signing v1"),
};
const CONTACT: KeyFile = KeyFile {
    name: "contact.key",
    legacy_purpose: None,
};

/// A node's command, code and plugin-signing keys.
#[derive(Clone)]
pub struct Secrets {
    command: [u8; 32],
    code: [u8; 32],
    plugin_signing: [u8; 32],
    contact: [u8; 32],
}

/// Why the keys could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Reading or writing a key file failed.
    #[error("secret key file {path:?}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file exists but is not 32 bytes.
    #[error("secret key file {0:?} is not 32 bytes; refusing to replace it")]
    Malformed(PathBuf),
}

impl Secrets {
    /// Loads the keys from `data_dir`, creating those missing (from the legacy master secret if
    /// it is there, else at random).
    pub fn load_or_create(data_dir: &Path) -> Result<Secrets, SecretsError> {
        let (path, dir) = open_secrets_dir(data_dir)?;
        let legacy = read_key(&dir, &path, LEGACY_MASTER)?;
        let key = |file: &KeyFile| -> Result<[u8; 32], SecretsError> {
            let fresh = match (&legacy, file.legacy_purpose) {
                (Some(master), Some(purpose)) => derive(master, purpose),
                _ => random(),
            };
            load_or_write(&dir, &path, file.name, fresh)
        };
        let secrets = Secrets {
            command: key(&COMMAND)?,
            code: key(&CODE)?,
            plugin_signing: key(&PLUGIN_SIGNING)?,
            contact: key(&CONTACT)?,
        };
        if legacy.is_some() {
            dir.remove_file(LEGACY_MASTER)
                .map_err(|source| io_error(&path, LEGACY_MASTER, source))?;
            tracing::info!(dir = %path.display(), "keys moved out of the master secret into a file each");
        }
        Ok(secrets)
    }

    /// The deployment's own plugin-signing key, which signs the bundled default plugins.
    pub fn plugin_signing_secret(&self) -> [u8; 32] {
        self.plugin_signing
    }

    /// The key this node signs locker commands with.
    pub fn command_key(&self) -> CommandKey {
        CommandKey::from_secret(self.command)
    }

    /// The key recipients' addresses are sealed with, by data keys derived from it.
    pub fn contact_keys(&self) -> crate::contacts::ContactKeys {
        crate::contacts::ContactKeys::new(self.contact)
    }

    /// The key pickup codes are hashed with.
    pub fn code_key(&self) -> CodeKey {
        CodeKey::from_bytes(self.code)
    }
}

/// `secrets/` under `data_dir` (created 0700) as a path and a directory handle.
pub fn open_secrets_dir(data_dir: &Path) -> Result<(PathBuf, Dir), SecretsError> {
    let path = data_dir.join(SECRETS_DIR);
    let io = |source| SecretsError::Io {
        path: path.clone(),
        source,
    };
    lockergrid_files::private_dir(&path).map_err(io)?;
    let dir = Dir::open_ambient_dir(&path, ambient_authority()).map_err(io)?;
    Ok((path, dir))
}

/// The 32-byte key in `name`, if the file exists.
pub fn read_key(dir: &Dir, path: &Path, name: &str) -> Result<Option<[u8; 32]>, SecretsError> {
    match dir.read(name) {
        Ok(bytes) => bytes
            .try_into()
            .map(Some)
            .map_err(|_| SecretsError::Malformed(path.join(name))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(source) => Err(io_error(path, name, source)),
    }
}

/// The key in `name`, or `fresh` written there (0600) if there is none.
fn load_or_write(
    dir: &Dir,
    path: &Path,
    name: &str,
    fresh: [u8; 32],
) -> Result<[u8; 32], SecretsError> {
    if let Some(key) = read_key(dir, path, name)? {
        return Ok(key);
    }
    write_key(dir, path, name, &fresh)?;
    Ok(fresh)
}

/// Writes a key file whole, durably, readable by the service alone.
pub fn write_key(dir: &Dir, path: &Path, name: &str, key: &[u8; 32]) -> Result<(), SecretsError> {
    write_atomic(dir, name, key, Mode::Private).map_err(|source| io_error(path, name, source))
}

/// 32 random bytes.
pub fn random() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

fn derive(master: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(master)
        .expect("HMAC-SHA256 accepts a key of any length");
    mac.update(purpose.as_bytes());
    mac.finalize().into_bytes().into()
}

fn io_error(dir: &Path, name: &str, source: std::io::Error) -> SecretsError {
    SecretsError::Io {
        path: dir.join(name),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn each_key_has_a_file_of_its_own_created_once_and_then_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = Secrets::load_or_create(dir.path()).expect("created");
        let again = Secrets::load_or_create(dir.path()).expect("loaded");
        assert_eq!(first.code, again.code);
        assert_eq!(first.command, again.command);
        assert_eq!(first.plugin_signing, again.plugin_signing);
        assert_ne!(first.code, first.command);
        assert_ne!(first.command, first.plugin_signing);
        let secrets = dir.path().join(SECRETS_DIR);
        assert_eq!(mode(&secrets), 0o700);
        assert_ne!(first.contact, first.code);
        for file in [COMMAND.name, CODE.name, PLUGIN_SIGNING.name, CONTACT.name] {
            assert_eq!(mode(&secrets.join(file)), 0o600, "{file}");
        }
    }

    #[test]
    fn replacing_one_key_file_changes_that_key_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let before = Secrets::load_or_create(dir.path()).expect("created");
        std::fs::remove_file(dir.path().join(SECRETS_DIR).join(CODE.name)).expect("removed");
        let after = Secrets::load_or_create(dir.path()).expect("loaded");
        assert_ne!(before.code, after.code);
        assert_eq!(before.command, after.command);
        assert_eq!(before.plugin_signing, after.plugin_signing);
    }

    #[test]
    fn a_legacy_master_secret_is_split_into_the_keys_it_derived_and_removed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let secrets = dir.path().join(SECRETS_DIR);
        std::fs::create_dir_all(&secrets).expect("dir");
        let master = [7u8; 32];
        std::fs::write(secrets.join(LEGACY_MASTER), master).expect("write");
        let split = Secrets::load_or_create(dir.path()).expect("split");
        let derived = |file: &KeyFile| derive(&master, file.legacy_purpose.expect("derived"));
        assert_eq!(split.command, derived(&COMMAND));
        assert_eq!(split.code, derived(&CODE));
        assert_eq!(split.plugin_signing, derived(&PLUGIN_SIGNING));
        assert!(!secrets.join(LEGACY_MASTER).exists());
        let again = Secrets::load_or_create(dir.path()).expect("loaded");
        assert_eq!(again.command, split.command);
    }

    #[test]
    fn a_truncated_key_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let secrets = dir.path().join(SECRETS_DIR);
        std::fs::create_dir_all(&secrets).expect("dir");
        std::fs::write(secrets.join(CODE.name), b"short").expect("write");
        assert!(matches!(
            Secrets::load_or_create(dir.path()),
            Err(SecretsError::Malformed(_))
        ));
        assert_eq!(
            std::fs::read(secrets.join(CODE.name)).expect("kept"),
            b"short"
        );
    }
}
