//! Signed commands from a node to a locker (DESIGN.md §6). A command names its locker, the
//! compartment, the action, a unique id, a per-locker counter and its validity window; an Ed25519
//! signature covers all of them in a fixed binary layout, so no JSON detail can change what was
//! signed. The locker refuses a command for another locker, a counter it has seen, a stale or
//! future timestamp and a window longer than [`MAX_LIFETIME`], and records the counter before it
//! acts.

use crate::{CompartmentId, LockerId, Lockout, Timestamp, from_hex, to_hex};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Version of the command layout and its signature.
pub const COMMAND_VERSION: u16 = 1;
/// Longest validity window a locker accepts.
pub const MAX_LIFETIME: Duration = Duration::from_secs(120);
/// How far a locker's clock may be behind the node's.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// What the locker should do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Release the compartment's lock so its door can open.
    Unlock,
    /// Take the locker out of service (doors stay shut except for operators) or back in.
    SetOutOfService {
        /// Out of service when true.
        out_of_service: bool,
    },
    /// Replace the locker's whole cache of active codes, which it checks codes against itself
    /// while no node answers (the command's compartment is ignored).
    SyncCodes {
        /// The station's code key, hex ([`crate::StationCodeKey`]): the locker hashes an entered
        /// code with it. It travels only over the locker's own TLS session.
        key: String,
        /// Every active code of the station.
        codes: Vec<CachedCode>,
        /// The station's wrong-code count at the node: cut off, the locker goes on from there
        /// (it never lowers its own).
        #[serde(default)]
        lockout: Lockout,
        /// The station is locked down (a tamper alarm): cut off, the locker opens nothing
        /// from its cache either.
        #[serde(default)]
        locked_down: bool,
    },
}

/// One active code in a locker's cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedCode {
    /// The compartment it opens.
    pub compartment: CompartmentId,
    /// Its keyed hash, hex.
    pub hash: String,
    /// When it stops working.
    pub expires_at: Timestamp,
}

impl Action {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Action::Unlock => out.push(1),
            Action::SetOutOfService { out_of_service } => {
                out.push(2);
                out.push(u8::from(*out_of_service));
            }
            Action::SyncCodes {
                key,
                codes,
                lockout,
                locked_down,
            } => {
                out.push(3);
                field(out, key.as_bytes());
                out.extend_from_slice(&(codes.len() as u32).to_be_bytes());
                for code in codes {
                    field(out, code.compartment.as_str().as_bytes());
                    field(out, code.hash.as_bytes());
                    out.extend_from_slice(&code.expires_at.millis().to_be_bytes());
                }
                out.extend_from_slice(&lockout.failures.to_be_bytes());
                let last = lockout.last_failure_at.map_or(0, Timestamp::millis);
                out.extend_from_slice(&last.to_be_bytes());
                // Signed only when set, so a cache update for a station that is not locked
                // down reads the same to a locker whose firmware predates the field.
                if *locked_down {
                    out.push(1);
                }
            }
        }
    }
}

/// A command before it is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Layout version, [`COMMAND_VERSION`].
    pub version: u16,
    /// The locker that must execute it.
    pub locker: LockerId,
    /// The compartment it concerns.
    pub compartment: CompartmentId,
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
    /// Unique id; the acknowledgement names it.
    pub id: String,
    /// Strictly increasing per locker.
    pub counter: u64,
    /// When it was issued, by the node's clock.
    pub issued_at: Timestamp,
    /// When it stops being valid.
    pub expires_at: Timestamp,
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

impl Command {
    /// The bytes the signature covers.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"lockergrid-command\0");
        out.extend_from_slice(&self.version.to_be_bytes());
        field(&mut out, self.locker.as_str().as_bytes());
        field(&mut out, self.compartment.as_str().as_bytes());
        self.action.encode(&mut out);
        field(&mut out, self.id.as_bytes());
        out.extend_from_slice(&self.counter.to_be_bytes());
        out.extend_from_slice(&self.issued_at.millis().to_be_bytes());
        out.extend_from_slice(&self.expires_at.millis().to_be_bytes());
        out
    }

    /// Signs the command.
    pub fn sign(self, key: &CommandKey) -> SignedCommand {
        let signature = to_hex(&key.0.sign(&self.signed_bytes()).to_bytes());
        SignedCommand {
            command: self,
            signature,
        }
    }
}

/// A command with its signature, as it travels on `lockers/{id}/commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCommand {
    /// The command.
    #[serde(flatten)]
    pub command: Command,
    /// Ed25519 signature over [`Command::signed_bytes`], hex.
    pub signature: String,
}

/// The node's command-signing key.
pub struct CommandKey(SigningKey);

impl CommandKey {
    /// The key with this 32-byte secret.
    pub fn from_secret(secret: [u8; 32]) -> CommandKey {
        CommandKey(SigningKey::from_bytes(&secret))
    }

    /// The public key lockers verify with.
    pub fn public(&self) -> CommandPublicKey {
        CommandPublicKey(self.0.verifying_key())
    }
}

/// The public key a locker verifies commands with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandPublicKey(VerifyingKey);

impl CommandPublicKey {
    /// Hex of the key, for a locker's configuration.
    pub fn to_hex(&self) -> String {
        to_hex(self.0.as_bytes())
    }

    /// Parses 64 hex digits; a weak key (of small order, such as the identity point, under
    /// which one signature verifies for many messages) is refused.
    pub fn from_hex(text: &str) -> Option<CommandPublicKey> {
        let bytes = from_hex::<32>(text)?;
        let key = VerifyingKey::from_bytes(&bytes).ok()?;
        (!key.is_weak()).then_some(CommandPublicKey(key))
    }
}

/// Why a locker refused a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A layout this locker does not know.
    #[error("command version {0} is not supported")]
    Version(u16),
    /// The command is for another locker.
    #[error("command for locker {0:?}")]
    WrongLocker(String),
    /// The counter is not above the last one executed.
    #[error("counter {counter} is not above {last}")]
    Replayed {
        /// The command's counter.
        counter: u64,
        /// The last counter executed.
        last: u64,
    },
    /// Issued too far in the future for this locker's clock.
    #[error("issued in the future")]
    NotYetValid,
    /// Past its expiry.
    #[error("expired")]
    Expired,
    /// Valid for longer than [`MAX_LIFETIME`].
    #[error("validity window too long")]
    WindowTooLong,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
}

impl SignedCommand {
    /// Checks everything but the counter: version, locker, window and signature. The caller
    /// checks and records the counter durably before it acts.
    pub fn check(
        &self,
        locker: &LockerId,
        key: &CommandPublicKey,
        now: Timestamp,
    ) -> Result<(), Refusal> {
        let c = &self.command;
        if c.version != COMMAND_VERSION {
            return Err(Refusal::Version(c.version));
        }
        if &c.locker != locker {
            return Err(Refusal::WrongLocker(c.locker.to_string()));
        }
        if c.expires_at.millis() < c.issued_at.millis()
            || c.expires_at.since(c.issued_at) > MAX_LIFETIME
        {
            return Err(Refusal::WindowTooLong);
        }
        if c.issued_at.millis() > now.plus(MAX_CLOCK_SKEW).millis() {
            return Err(Refusal::NotYetValid);
        }
        if now.millis() >= c.expires_at.millis() {
            return Err(Refusal::Expired);
        }
        let signature = from_hex::<64>(&self.signature).ok_or(Refusal::BadSignature)?;
        key.0
            .verify_strict(
                &c.signed_bytes(),
                &ed25519_dalek::Signature::from_bytes(&signature),
            )
            .map_err(|_| Refusal::BadSignature)
    }
}
