//! The token keys: `secrets/tokens/<key id>.key` (32 random bytes, 0600) and
//! `secrets/tokens/active`, the id of the key that signs new tokens. Every key in the directory
//! verifies the tokens it signed, so a key is rotated in (new tokens take it, old ones keep
//! working) and the old one retired later (its tokens stop working at once), one at a time and
//! apart from every other key of the node.

use super::{Claims, KeyId, Parts, TokenError, TokenKey};
use crate::secrets::{SecretsError, open_secrets_dir, random, read_key, write_key};
use cap_std::fs::Dir;
use lockergrid_files::{Mode, write_atomic};
use lockergrid_protocol::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

/// The keyring's directory under `secrets/`.
const TOKENS_DIR: &str = "tokens";
/// The file naming the signing key.
const ACTIVE: &str = "active";

/// The token keys of a gateway.
pub struct Keyring {
    path: PathBuf,
    dir: Dir,
    keys: BTreeMap<KeyId, Held>,
    active: KeyId,
}

struct Held {
    key: TokenKey,
    created_at: Option<Timestamp>,
}

/// One key as an operator sees it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// Its id, the second field of every token it signed.
    pub id: KeyId,
    /// Whether it signs new tokens.
    pub active: bool,
    /// When its file was written.
    pub created_at: Option<Timestamp>,
}

/// Why the keyring could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// A key file could not be read or written.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// `active` is missing or names no key in the directory.
    #[error("{0:?} names no token key there; write the id of the key that signs new tokens")]
    NoActiveKey(PathBuf),
    /// The key that signs new tokens cannot be retired; rotate first.
    #[error("token key {0} signs new tokens; rotate to a new key before retiring it")]
    RetireActive(KeyId),
    /// No key has that id.
    #[error("no token key {0}")]
    Unknown(KeyId),
}

impl Keyring {
    /// The keyring of the node whose data directory is `data_dir`, with a first key if it has
    /// none.
    pub fn open(data_dir: &Path) -> Result<Keyring, KeyringError> {
        let (secrets, parent) = open_secrets_dir(data_dir)?;
        let path = secrets.join(TOKENS_DIR);
        let io = |source| SecretsError::Io {
            path: path.clone(),
            source,
        };
        lockergrid_files::private_dir(&path).map_err(io)?;
        let dir = parent.open_dir(TOKENS_DIR).map_err(io)?;
        let mut keys = read_keys(&dir, &path)?;
        let active = match dir.read_to_string(ACTIVE) {
            Ok(text) => text.trim().parse().ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e).into()),
        };
        let active = match active {
            Some(id) if keys.contains_key(&id) => id,
            None if keys.is_empty() => {
                let (id, held) = new_key(&dir, &path, &keys)?;
                keys.insert(id.clone(), held);
                id
            }
            _ => return Err(KeyringError::NoActiveKey(path.join(ACTIVE))),
        };
        Ok(Keyring {
            path,
            dir,
            keys,
            active,
        })
    }

    /// The key that signs new tokens.
    pub fn signing_key(&self) -> &TokenKey {
        &self.keys[&self.active].key
    }

    /// The claims of `token` if a key of the ring signed it and it is current.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        let parts = Parts::split(token)?;
        let held = self
            .keys
            .get(&parts.key)
            .ok_or_else(|| TokenError::UnknownKey(parts.key.to_string()))?;
        held.key.verify(&parts, now)
    }

    /// A new key that signs from now on; the others keep verifying. Answers its id.
    pub fn rotate(&mut self) -> Result<KeyId, KeyringError> {
        let (id, held) = new_key(&self.dir, &self.path, &self.keys)?;
        self.keys.insert(id.clone(), held);
        self.active = id.clone();
        Ok(id)
    }

    /// Removes key `id`: every token it signed is refused from now on.
    pub fn retire(&mut self, id: &KeyId) -> Result<(), KeyringError> {
        if *id == self.active {
            return Err(KeyringError::RetireActive(id.clone()));
        }
        if !self.keys.contains_key(id) {
            return Err(KeyringError::Unknown(id.clone()));
        }
        self.dir
            .remove_file(file_name(id))
            .map_err(|source| SecretsError::Io {
                path: self.path.join(file_name(id)),
                source,
            })?;
        self.keys.remove(id);
        Ok(())
    }

    /// Every key, oldest id first.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.keys
            .iter()
            .map(|(id, held)| KeyInfo {
                id: id.clone(),
                active: *id == self.active,
                created_at: held.created_at,
            })
            .collect()
    }
}

/// Writes a new key with an id none of `keys` has and makes it the one that signs.
fn new_key(
    dir: &Dir,
    path: &Path,
    keys: &BTreeMap<KeyId, Held>,
) -> Result<(KeyId, Held), KeyringError> {
    let mut id = KeyId::random();
    while keys.contains_key(&id) {
        id = KeyId::random();
    }
    let secret = random();
    write_key(dir, path, &file_name(&id), &secret)?;
    write_atomic(dir, ACTIVE, id.as_str().as_bytes(), Mode::Private).map_err(|source| {
        SecretsError::Io {
            path: path.join(ACTIVE),
            source,
        }
    })?;
    let held = Held {
        created_at: created_at(dir, &file_name(&id)),
        key: TokenKey::new(id.clone(), secret),
    };
    Ok((id, held))
}

fn file_name(id: &KeyId) -> String {
    format!("{id}.key")
}

/// Every `<key id>.key` in the directory; other names are left alone.
fn read_keys(dir: &Dir, path: &Path) -> Result<BTreeMap<KeyId, Held>, KeyringError> {
    let io = |source| SecretsError::Io {
        path: path.to_owned(),
        source,
    };
    let mut keys = BTreeMap::new();
    for entry in dir.entries().map_err(io)? {
        let name = entry.map_err(io)?.file_name();
        let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".key"))
            .and_then(|stem| stem.parse::<KeyId>().ok())
        else {
            continue;
        };
        let name = file_name(&id);
        let Some(secret) = read_key(dir, path, &name)? else {
            continue;
        };
        let created_at = created_at(dir, &name);
        let key = TokenKey::new(id.clone(), secret);
        keys.insert(id, Held { key, created_at });
    }
    Ok(keys)
}

fn created_at(dir: &Dir, name: &str) -> Option<Timestamp> {
    let modified = dir.metadata(name).ok()?.modified().ok()?.into_std();
    let millis = modified.duration_since(UNIX_EPOCH).ok()?.as_millis();
    Some(Timestamp(u64::try_from(millis).ok()?))
}
