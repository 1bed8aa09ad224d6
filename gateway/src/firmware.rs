//! The firmware images a gateway holds for its lockers: each stored under
//! `<data_dir>/firmware/` through a cap-std handle, as `<model>-<version>.img` beside its signed
//! manifest `<model>-<version>.json`, only once a key of `[firmware] trusted_keys` signed the
//! manifest and the bytes are the ones it names.

use cap_std::ambient_authority;
use cap_std::fs::Dir;
use lockergrid_files::{Mode, write_atomic};
use lockergrid_protocol::firmware::{FirmwarePublicKey, FirmwareRefusal, SignedManifest};
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

/// Why an image was not taken.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    /// The gateway trusts no firmware key.
    #[error("no firmware key is trusted here: list one under [firmware] trusted_keys")]
    NoTrustedKey,
    /// The manifest or the image is refused, with its reason code.
    #[error("{code}: {refusal}", code = .refusal.code())]
    Refused {
        /// Why.
        refusal: FirmwareRefusal,
    },
    /// A model name that cannot name a file.
    #[error("model {0:?} must be 1-64 characters of a-z, 0-9, '-', '_', '.'")]
    BadModel(String),
    /// Another image has that model and version.
    #[error("another image is stored as {0}")]
    Conflict(String),
    /// The directory could not be read or written.
    #[error("firmware store: {0}")]
    Io(#[from] std::io::Error),
}

/// The gateway's firmware images.
pub struct FirmwareStore {
    dir: Dir,
    trusted: Vec<FirmwarePublicKey>,
    /// File stem of each image by SHA-256, as last listed.
    by_digest: Mutex<HashMap<String, String>>,
}

impl FirmwareStore {
    /// Opens (creating it, 0700) `<data_dir>/firmware`, taking manifests of `trusted` keys.
    pub fn open(
        data_dir: &Path,
        trusted: Vec<FirmwarePublicKey>,
    ) -> std::io::Result<FirmwareStore> {
        let path = data_dir.join("firmware");
        lockergrid_files::private_dir(&path)?;
        Ok(FirmwareStore {
            dir: Dir::open_ambient_dir(&path, ambient_authority())?,
            trusted,
            by_digest: Mutex::new(HashMap::new()),
        })
    }

    /// The firmware keys it takes manifests of (lockers trust the same).
    pub fn trusted(&self) -> &[FirmwarePublicKey] {
        &self.trusted
    }

    /// Verifies `signed` and `image` and stores both; `false` when that very image was stored
    /// already.
    pub fn add(&self, signed: &SignedManifest, image: &[u8]) -> Result<bool, FirmwareError> {
        if self.trusted.is_empty() {
            return Err(FirmwareError::NoTrustedKey);
        }
        let manifest = signed
            .verify(&self.trusted)
            .map_err(|refusal| FirmwareError::Refused { refusal })?;
        manifest
            .matches(image)
            .map_err(|refusal| FirmwareError::Refused { refusal })?;
        let name = file_stem(&manifest.model, &manifest.version.to_string())?;
        let json = format!("{name}.json");
        if let Ok(bytes) = self.dir.read(&json) {
            let held: Option<SignedManifest> = serde_json::from_slice(&bytes).ok();
            return match held {
                Some(held) if held.manifest == *manifest => Ok(false),
                _ => Err(FirmwareError::Conflict(name)),
            };
        }
        // The image first: a manifest on disk always has its image beside it.
        write_atomic(&self.dir, &format!("{name}.img"), image, Mode::Private)?;
        let text = serde_json::to_vec_pretty(signed).map_err(std::io::Error::other)?;
        write_atomic(&self.dir, &json, &text, Mode::Private)?;
        Ok(true)
    }

    /// Every stored image's signed manifest, by model and version.
    pub fn list(&self) -> Result<Vec<SignedManifest>, FirmwareError> {
        let mut found = Vec::new();
        for entry in self.dir.entries()? {
            let name = entry?.file_name();
            let Some(name) = name.to_str().filter(|n| n.ends_with(".json")) else {
                continue;
            };
            if let Ok(signed) = serde_json::from_slice::<SignedManifest>(&self.dir.read(name)?) {
                found.push(signed);
            }
        }
        found.sort_by(|a, b| {
            (&a.manifest.model, a.manifest.version).cmp(&(&b.manifest.model, b.manifest.version))
        });
        Ok(found)
    }
}

impl FirmwareStore {
    /// The stored image with this SHA-256: its file stem, from the index or a fresh listing.
    fn stem(&self, sha256: &str) -> Result<Option<String>, FirmwareError> {
        let mut index = self.by_digest.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stem) = index.get(sha256) {
            return Ok(Some(stem.clone()));
        }
        for signed in self.list()? {
            let m = &signed.manifest;
            index.insert(
                m.sha256.clone(),
                file_stem(&m.model, &m.version.to_string())?,
            );
        }
        Ok(index.get(sha256).cloned())
    }

    /// The signed manifest of the stored image with this SHA-256.
    pub fn manifest(&self, sha256: &str) -> Result<Option<SignedManifest>, FirmwareError> {
        let Some(stem) = self.stem(sha256)? else {
            return Ok(None);
        };
        let bytes = self.dir.read(format!("{stem}.json"))?;
        Ok(serde_json::from_slice(&bytes).ok())
    }

    /// The stored image of `model` at `version`.
    pub fn find(
        &self,
        model: &str,
        version: lockergrid_protocol::firmware::FirmwareVersion,
    ) -> Result<Option<SignedManifest>, FirmwareError> {
        Ok(self
            .list()?
            .into_iter()
            .find(|s| s.manifest.model == model && s.manifest.version == version))
    }

    /// Up to `len` bytes of the image with this SHA-256 from `offset`; none when no such image
    /// is stored, empty at or past its end.
    pub fn read(
        &self,
        sha256: &str,
        offset: u64,
        len: u32,
    ) -> Result<Option<Vec<u8>>, FirmwareError> {
        let Some(stem) = self.stem(sha256)? else {
            return Ok(None);
        };
        let mut file = self.dir.open(format!("{stem}.img"))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(u64::from(len)).read_to_end(&mut bytes)?;
        Ok(Some(bytes))
    }
}

/// `<model>-<version>`, with the model checked to be safe in a file name.
fn file_stem(model: &str, version: &str) -> Result<String, FirmwareError> {
    let ok = !model.is_empty()
        && model.len() <= 64
        && model.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && !model.starts_with('.');
    if !ok {
        return Err(FirmwareError::BadModel(model.to_owned()));
    }
    Ok(format!("{model}-{version}"))
}
