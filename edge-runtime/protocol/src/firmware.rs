//! Firmware images (DESIGN.md §9): a manifest naming the image's version, the hardware model it
//! is for, its SHA-256 and size, the oldest version it may replace and an anti-rollback
//! counter, signed with Ed25519 by a firmware key that is neither the plugin key nor the
//! command key. The signature covers a fixed binary layout, as commands' do. A locker checks an
//! image with [`SignedManifest::verify`] and [`FirmwareManifest::admits`] before anything is
//! written to its inactive slot; each refusal has a stable reason code.
//!
//! The anti-rollback counter is kept apart from the version (as Uptane's release counter and
//! MCUboot's security counter are): an image whose counter is below the one the locker stored
//! is refused whatever its version says, and the locker raises its stored counter only once
//! the new image is confirmed.

use crate::{from_hex, to_hex};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// The domain line the signature starts with.
const DOMAIN: &[u8] = b"lockergrid firmware manifest v1\0";

/// A firmware version, `major.minor.patch`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FirmwareVersion(pub u32, pub u32, pub u32);

impl fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

impl FromStr for FirmwareVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<FirmwareVersion, String> {
        let parts: Vec<&str> = s.split('.').collect();
        let number = |p: &str| p.parse::<u32>().ok().filter(|_| !p.starts_with('+'));
        match parts.as_slice() {
            [a, b, c] => match (number(a), number(b), number(c)) {
                (Some(a), Some(b), Some(c)) => Ok(FirmwareVersion(a, b, c)),
                _ => Err(format!("version {s:?} is not major.minor.patch")),
            },
            _ => Err(format!("version {s:?} is not major.minor.patch")),
        }
    }
}

impl Serialize for FirmwareVersion {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for FirmwareVersion {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<FirmwareVersion, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The SHA-256 of `bytes`, lowercase hex, as manifests name it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// What an image is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareManifest {
    /// Its version.
    pub version: FirmwareVersion,
    /// The hardware model it runs on.
    pub model: String,
    /// The image's SHA-256, lowercase hex.
    pub sha256: String,
    /// The image's size in bytes.
    pub size: u64,
    /// The oldest version it may replace.
    pub min_version: FirmwareVersion,
    /// Its anti-rollback counter.
    pub counter: u32,
}

/// A manifest with the signature of the firmware key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedManifest {
    /// What it says.
    pub manifest: FirmwareManifest,
    /// The public key of the firmware key that signed it, hex.
    pub key: String,
    /// Ed25519 over [`FirmwareManifest::signed_bytes`], hex.
    pub signature: String,
}

/// Why an image is refused, each with the reason code a locker reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirmwareRefusal {
    /// Signed by no key this locker trusts.
    #[error("signed by a key that is not trusted")]
    UntrustedKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The bytes are not those the manifest names.
    #[error("image SHA-256 {0} is not the manifest's")]
    DigestMismatch(String),
    /// The image is not as long as the manifest says.
    #[error("image is {got} bytes, the manifest says {want}")]
    SizeMismatch {
        /// Received.
        got: u64,
        /// Named.
        want: u64,
    },
    /// For another hardware model.
    #[error("image for model {image:?}, this locker is {locker:?}")]
    WrongModel {
        /// The image's model.
        image: String,
        /// The locker's.
        locker: String,
    },
    /// Its anti-rollback counter is below the locker's.
    #[error("anti-rollback counter {image} is below {stored}")]
    Downgrade {
        /// The image's.
        image: u32,
        /// The locker's.
        stored: u32,
    },
    /// The locker runs a version older than the image may replace.
    #[error("replaces {min} or later; this locker runs {running}")]
    TooOld {
        /// The image's minimum.
        min: FirmwareVersion,
        /// What the locker runs.
        running: FirmwareVersion,
    },
}

impl FirmwareRefusal {
    /// The stable reason code a locker reports.
    pub fn code(&self) -> &'static str {
        match self {
            FirmwareRefusal::UntrustedKey => "untrusted-key",
            FirmwareRefusal::BadSignature => "signature-refused",
            FirmwareRefusal::DigestMismatch(_) => "digest-mismatch",
            FirmwareRefusal::SizeMismatch { .. } => "size-mismatch",
            FirmwareRefusal::WrongModel { .. } => "wrong-model",
            FirmwareRefusal::Downgrade { .. } => "downgrade",
            FirmwareRefusal::TooOld { .. } => "version-too-old",
        }
    }
}

impl FirmwareManifest {
    /// The manifest of `image`: its digest and size, with the rest as given.
    pub fn of(
        image: &[u8],
        version: FirmwareVersion,
        model: String,
        min_version: FirmwareVersion,
        counter: u32,
    ) -> FirmwareManifest {
        FirmwareManifest {
            version,
            model,
            sha256: sha256_hex(image),
            size: image.len() as u64,
            min_version,
            counter,
        }
    }

    /// The bytes the signature covers: the domain line, then each field (strings as a u32
    /// length and their bytes, numbers big-endian).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        let text = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u32).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        text(&mut out, &self.version.to_string());
        text(&mut out, &self.model);
        text(&mut out, &self.sha256);
        out.extend_from_slice(&self.size.to_be_bytes());
        text(&mut out, &self.min_version.to_string());
        out.extend_from_slice(&self.counter.to_be_bytes());
        out
    }

    /// Signs it with the firmware key.
    pub fn sign(self, key: &FirmwareKey) -> SignedManifest {
        let signature = to_hex(&key.0.sign(&self.signed_bytes()).to_bytes());
        SignedManifest {
            key: key.public().to_hex(),
            manifest: self,
            signature,
        }
    }

    /// Whether `image` is the image it names: size first, then the digest.
    pub fn matches(&self, image: &[u8]) -> Result<(), FirmwareRefusal> {
        if image.len() as u64 != self.size {
            return Err(FirmwareRefusal::SizeMismatch {
                got: image.len() as u64,
                want: self.size,
            });
        }
        let digest = sha256_hex(image);
        if digest != self.sha256 {
            return Err(FirmwareRefusal::DigestMismatch(digest));
        }
        Ok(())
    }

    /// Whether a locker of `model` running `running`, with anti-rollback counter `stored`, may
    /// install it.
    pub fn admits(
        &self,
        model: &str,
        running: FirmwareVersion,
        stored: u32,
    ) -> Result<(), FirmwareRefusal> {
        if self.model != model {
            return Err(FirmwareRefusal::WrongModel {
                image: self.model.clone(),
                locker: model.to_owned(),
            });
        }
        if self.counter < stored {
            return Err(FirmwareRefusal::Downgrade {
                image: self.counter,
                stored,
            });
        }
        if running < self.min_version {
            return Err(FirmwareRefusal::TooOld {
                min: self.min_version,
                running,
            });
        }
        Ok(())
    }
}

impl SignedManifest {
    /// The manifest, if one of `trusted` signed it (strictly: a weak key or a malleable
    /// signature does not verify).
    pub fn verify(
        &self,
        trusted: &[FirmwarePublicKey],
    ) -> Result<&FirmwareManifest, FirmwareRefusal> {
        let key = FirmwarePublicKey::from_hex(&self.key)
            .filter(|k| trusted.contains(k))
            .ok_or(FirmwareRefusal::UntrustedKey)?;
        let signature = from_hex::<64>(&self.signature).ok_or(FirmwareRefusal::BadSignature)?;
        key.0
            .verify_strict(
                &self.manifest.signed_bytes(),
                &ed25519_dalek::Signature::from_bytes(&signature),
            )
            .map_err(|_| FirmwareRefusal::BadSignature)?;
        Ok(&self.manifest)
    }
}

/// The firmware signing key: kept by whoever releases firmware, never by a node.
pub struct FirmwareKey(SigningKey);

impl FirmwareKey {
    /// The key with this 32-byte secret.
    pub fn from_secret(secret: [u8; 32]) -> FirmwareKey {
        FirmwareKey(SigningKey::from_bytes(&secret))
    }

    /// The public key lockers and nodes verify with.
    pub fn public(&self) -> FirmwarePublicKey {
        FirmwarePublicKey(self.0.verifying_key())
    }
}

/// A public key firmware manifests are verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirmwarePublicKey(VerifyingKey);

impl FirmwarePublicKey {
    /// Hex of the key.
    pub fn to_hex(&self) -> String {
        to_hex(self.0.as_bytes())
    }

    /// Parses 64 hex digits; a weak key is refused.
    pub fn from_hex(text: &str) -> Option<FirmwarePublicKey> {
        let bytes = from_hex::<32>(text)?;
        let key = VerifyingKey::from_bytes(&bytes).ok()?;
        (!key.is_weak()).then_some(FirmwarePublicKey(key))
    }
}

#[cfg(test)]
mod tests;
