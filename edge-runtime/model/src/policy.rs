//! Which plugin serves where, and whether its bytes may run: the policy file format of
//! `policies/`, scopes, and Ed25519 signatures by keys the operator trusts.
//!
//! A policy binds a plugin, by file and SHA-256, to a world and a scope, with its settings and
//! limits. A component is loaded only when its bytes hash to the SHA-256 the binding pins and the
//! binding carries a signature by one of the policy's trusted keys over all of it — world, scope,
//! name, version, SHA-256, settings and limits ([`Binding::signed_message`]) — so nobody who can
//! change a policy file or the sync can move a signed plugin to another scope or loosen its limits
//! or settings.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use lockergrid_protocol::{StationId, from_hex, to_hex};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The three plugin worlds of `wit/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum World {
    /// Ranks stations and chooses the hold.
    ReservationPolicy,
    /// Plans notifications.
    NotificationRouter,
    /// Allows or denies access; turns telemetry into alerts.
    SiteRules,
}

impl World {
    /// Every world.
    pub const ALL: [World; 3] = [
        World::ReservationPolicy,
        World::NotificationRouter,
        World::SiteRules,
    ];

    /// The world's name in `wit/`.
    pub fn as_str(self) -> &'static str {
        match self {
            World::ReservationPolicy => "reservation-policy",
            World::NotificationRouter => "notification-router",
            World::SiteRules => "site-rules",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for World {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<World, PolicyError> {
        World::ALL
            .into_iter()
            .find(|w| w.as_str() == s)
            .ok_or_else(|| PolicyError::Invalid(format!("unknown world {s:?}")))
    }
}

/// Where a binding applies; the most specific one wins: station, then region, then default.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Everywhere nothing more specific is bound.
    Default,
    /// Every station of a region.
    Region(String),
    /// One station.
    Station(StationId),
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Default => f.write_str("default"),
            Scope::Region(r) => write!(f, "region:{r}"),
            Scope::Station(s) => write!(f, "station:{s}"),
        }
    }
}

impl FromStr for Scope {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Scope, PolicyError> {
        let invalid = || {
            PolicyError::Invalid(format!(
                "scope {s:?} is not \"default\", \"region:<id>\" or \"station:<id>\""
            ))
        };
        match s.split_once(':') {
            None if s == "default" => Ok(Scope::Default),
            Some(("region", r)) if StationId::new(r).is_ok() => Ok(Scope::Region(r.to_owned())),
            Some(("station", id)) => StationId::new(id)
                .map(Scope::Station)
                .map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Why a policy file or a signature is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The TOML does not parse or names unknown fields.
    #[error("policy does not parse: {0}")]
    Parse(String),
    /// A value is out of range or two bindings collide.
    #[error("invalid policy: {0}")]
    Invalid(String),
    /// The component carries no signature.
    #[error("the component is not signed")]
    Unsigned,
    /// The signature file is malformed.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// The signing key is not one the policy trusts.
    #[error("the component is signed by a key that is not trusted ({0})")]
    UntrustedKey(String),
    /// The signature does not verify over the binding.
    #[error(
        "the signature does not match the binding (world, scope, name, version, sha256, settings, limits)"
    )]
    BadSignature,
    /// The bytes do not hash to the SHA-256 the policy pins.
    #[error("the component's SHA-256 is {actual}, the policy pins {expected}")]
    DigestMismatch {
        /// What the policy says.
        expected: String,
        /// What the bytes hash to.
        actual: String,
    },
}

/// Limits for one plugin, as a policy writes them; each must lie within its maximum
/// ([`MAX_MEMORY_MIB`], [`MAX_DEADLINE_MS`], [`MAX_TIMEOUT_MS`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingLimits {
    /// Linear memory one call may use, MiB.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u32,
    /// CPU time one call may take, milliseconds (epoch deadline).
    #[serde(default = "default_deadline_ms")]
    pub deadline_ms: u32,
    /// Wall-clock time around a whole call, milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u32,
}

fn default_memory_mib() -> u32 {
    16
}
fn default_deadline_ms() -> u32 {
    50
}
fn default_timeout_ms() -> u32 {
    250
}

/// The most linear memory a plugin call may be given, MiB (the engine's maximum).
pub const MAX_MEMORY_MIB: u32 = 64;
/// The most CPU time a plugin call may be given, milliseconds.
pub const MAX_DEADLINE_MS: u32 = 1_000;
/// The longest wall-clock time a plugin call may be given, milliseconds: well inside the HTTP
/// request timeout, so a plugin's own limit always ends a slow call first and counts it.
pub const MAX_TIMEOUT_MS: u32 = 2_000;

impl BindingLimits {
    /// Checks each limit is above zero and within its documented maximum.
    pub fn check(&self) -> Result<(), PolicyError> {
        let within = |name: &str, value: u32, max: u32| {
            if value == 0 || value > max {
                return Err(PolicyError::Invalid(format!(
                    "{name} is {value}; it must be from 1 to {max}"
                )));
            }
            Ok(())
        };
        within("memory_mib", self.memory_mib, MAX_MEMORY_MIB)?;
        within("deadline_ms", self.deadline_ms, MAX_DEADLINE_MS)?;
        within("timeout_ms", self.timeout_ms, MAX_TIMEOUT_MS)
    }
}

impl Default for BindingLimits {
    fn default() -> Self {
        BindingLimits {
            memory_mib: default_memory_mib(),
            deadline_ms: default_deadline_ms(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// One plugin bound to a world and a scope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The world it implements.
    pub world: World,
    /// Where it applies.
    pub scope: Scope,
    /// Its name, e.g. `reservation-balanced`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The component file, relative to the plugin directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// SHA-256 of the file's bytes, hex; the component is refused unless it matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Settings the plugin reads through `host.setting`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, toml::Value>,
    /// Its limits.
    #[serde(default)]
    pub limits: BindingLimits,
    /// `ed25519 <public key hex> <signature hex>` over [`Binding::signed_message`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// What a binding's signature covers, in a fixed field order.
#[derive(Serialize)]
struct SignedBinding<'a> {
    world: World,
    scope: &'a Scope,
    name: &'a str,
    version: &'a str,
    sha256: Option<String>,
    settings: BTreeMap<String, String>,
    limits: BindingLimits,
}

/// The domain of a binding signature, so no other signed message can pass for one.
const BINDING_DOMAIN: &[u8] = b"lockergrid plugin binding v1\n";

impl Binding {
    /// The bytes its signature covers: a domain line, then world, scope, name, version, SHA-256
    /// (lowercase), the settings as the plugin reads them (in key order) and the limits, as JSON
    /// in that order. Not the file name: where the bytes are kept does not matter.
    pub fn signed_message(&self) -> Vec<u8> {
        let signed = SignedBinding {
            world: self.world,
            scope: &self.scope,
            name: &self.name,
            version: &self.version,
            sha256: self.sha256.as_ref().map(|s| s.trim().to_ascii_lowercase()),
            settings: self.settings_text(),
            limits: self.limits,
        };
        let mut message = BINDING_DOMAIN.to_vec();
        message.extend(serde_json::to_vec(&signed).expect("a binding serializes"));
        message
    }

    /// The settings as the plugin reads them: strings as they are, other values as TOML text.
    pub fn settings_text(&self) -> BTreeMap<String, String> {
        self.settings
            .iter()
            .map(|(k, v)| {
                let text = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), text)
            })
            .collect()
    }
}

/// A public key whose signatures the node accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedKey {
    /// A name for people, e.g. `ops-2026`.
    pub name: String,
    /// The Ed25519 public key, hex.
    pub public_key: String,
}

/// A policy file of `policies/`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Format version; 1.
    pub version: u32,
    /// Keys whose signatures are accepted.
    #[serde(default, rename = "trusted_key")]
    pub trusted_keys: Vec<TrustedKey>,
    /// The bindings.
    #[serde(default, rename = "plugin")]
    pub plugins: Vec<Binding>,
    /// How many empty compartments of each size an edge node holds per station it serves.
    #[serde(default)]
    pub lease: LeasePool,
}

/// The pool an edge node leases at each of its stations, per size (DESIGN.md §7). The gateway
/// never leases more than half of a size's compartments that would otherwise be free, so
/// checkout keeps the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeasePool {
    /// Small compartments.
    #[serde(default = "two")]
    pub small: u32,
    /// Medium compartments.
    #[serde(default = "two")]
    pub medium: u32,
    /// Large compartments.
    #[serde(default = "one")]
    pub large: u32,
    /// Oversized compartments.
    #[serde(default)]
    pub oversized: u32,
}

fn two() -> u32 {
    2
}
fn one() -> u32 {
    1
}

impl Default for LeasePool {
    fn default() -> Self {
        LeasePool {
            small: two(),
            medium: two(),
            large: one(),
            oversized: 0,
        }
    }
}

impl LeasePool {
    /// The pool per size, indexed by [`lockergrid_protocol::Size::index`].
    pub fn per_size(&self) -> [u32; 4] {
        [self.small, self.medium, self.large, self.oversized]
    }
}

impl PolicyFile {
    /// Parses and checks a policy file's text.
    pub fn parse(text: &str) -> Result<PolicyFile, PolicyError> {
        let policy: PolicyFile =
            toml::from_str(text).map_err(|e| PolicyError::Parse(e.message().to_owned()))?;
        if policy.version != 1 {
            return Err(PolicyError::Invalid(format!(
                "version {} is not supported (1 is)",
                policy.version
            )));
        }
        for key in &policy.trusted_keys {
            parse_public_key(&key.public_key)?;
        }
        let mut seen = std::collections::BTreeSet::new();
        for b in &policy.plugins {
            if !seen.insert((b.world, b.scope.clone())) {
                return Err(PolicyError::Invalid(format!(
                    "two plugins bound to {} at {}",
                    b.world, b.scope
                )));
            }
            if let Some(sha) = &b.sha256 {
                parse_hex::<32>(sha, "sha256")?;
            }
            b.limits
                .check()
                .map_err(|e| PolicyError::Invalid(format!("{} at {}: {e}", b.world, b.scope)))?;
        }
        Ok(policy)
    }

    /// The policy as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// The trust set of this policy.
    pub fn trust(&self) -> Result<Trust, PolicyError> {
        let keys = self
            .trusted_keys
            .iter()
            .map(|k| Ok((k.name.clone(), parse_public_key(&k.public_key)?)))
            .collect::<Result<_, PolicyError>>()?;
        Ok(Trust { keys })
    }
}

fn parse_hex<const N: usize>(text: &str, what: &str) -> Result<[u8; N], PolicyError> {
    from_hex(text)
        .ok_or_else(|| PolicyError::Invalid(format!("{what} is not {} hex digits", N * 2)))
}

/// An Ed25519 public key from hex. A weak key — one of small order, such as the identity point
/// or the all-zero encoding, under which a single signature verifies for any message — is
/// refused: trusting one would let anybody sign a plugin.
fn parse_public_key(text: &str) -> Result<VerifyingKey, PolicyError> {
    let bytes = parse_hex::<32>(text, "public_key")?;
    let key = VerifyingKey::from_bytes(&bytes)
        .map_err(|_| PolicyError::Invalid("public_key is not an Ed25519 key".into()))?;
    if key.is_weak() {
        return Err(PolicyError::Invalid(
            "public_key is a weak Ed25519 key (of small order)".into(),
        ));
    }
    Ok(key)
}

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// The keys a node accepts plugin signatures from.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    keys: Vec<(String, VerifyingKey)>,
}

impl Trust {
    /// Checks that `bytes` hash to the SHA-256 `binding` pins and that the binding carries a
    /// signature over all of it by a trusted key; answers the key's name.
    pub fn verify(&self, bytes: &[u8], binding: &Binding) -> Result<String, PolicyError> {
        let actual = sha256_hex(bytes);
        let expected = binding.sha256.as_deref().ok_or_else(|| {
            PolicyError::Invalid("the binding pins no sha256 for the component".into())
        })?;
        if !expected.trim().eq_ignore_ascii_case(&actual) {
            return Err(PolicyError::DigestMismatch {
                expected: expected.trim().to_owned(),
                actual,
            });
        }
        let signature =
            Signature::parse(binding.signature.as_deref().ok_or(PolicyError::Unsigned)?)?;
        let name = self
            .keys
            .iter()
            .find(|(_, k)| *k == signature.key)
            .map(|(name, _)| name.clone())
            .ok_or_else(|| PolicyError::UntrustedKey(to_hex(signature.key.as_bytes())))?;
        // Strict: no non-canonical signature or small-order component is accepted.
        signature
            .key
            .verify_strict(&binding.signed_message(), &signature.signature)
            .map_err(|_| PolicyError::BadSignature)?;
        Ok(name)
    }
}

/// A detached signature: the signer's public key and an Ed25519 signature over a binding. Its
/// text form, a binding's `signature`, is `ed25519 <public key hex> <signature hex>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    key: VerifyingKey,
    signature: ed25519_dalek::Signature,
}

impl Signature {
    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Signature, PolicyError> {
        let malformed = |why: &str| PolicyError::MalformedSignature(why.to_owned());
        let mut parts = text.split_ascii_whitespace();
        if parts.next() != Some("ed25519") {
            return Err(malformed("it does not start with \"ed25519\""));
        }
        let key = parts.next().ok_or_else(|| malformed("no public key"))?;
        let sig = parts.next().ok_or_else(|| malformed("no signature"))?;
        if parts.next().is_some() {
            return Err(malformed("text after the signature"));
        }
        let key = parse_public_key(key).map_err(|e| malformed(&e.to_string()))?;
        let sig = parse_hex::<64>(sig, "signature").map_err(|e| malformed(&e.to_string()))?;
        Ok(Signature {
            key,
            signature: ed25519_dalek::Signature::from_bytes(&sig),
        })
    }
}

impl Signature {
    /// Whether this is `signer`'s signature over `bytes` alone: the format before signatures
    /// covered the binding, which a gateway re-signs for its own bundled plugins when it upgrades.
    pub fn is_legacy_by(&self, signer: &PluginSigner, bytes: &[u8]) -> bool {
        self.key == signer.key.verifying_key()
            && self.key.verify_strict(bytes, &self.signature).is_ok()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ed25519 {} {}",
            to_hex(self.key.as_bytes()),
            to_hex(&self.signature.to_bytes())
        )
    }
}

/// A plugin-signing key.
pub struct PluginSigner {
    key: SigningKey,
}

impl PluginSigner {
    /// The key with this 32-byte secret.
    pub fn from_secret(secret: [u8; 32]) -> PluginSigner {
        PluginSigner {
            key: SigningKey::from_bytes(&secret),
        }
    }

    /// Reads a secret key file: 64 hex digits.
    pub fn parse(text: &str) -> Result<PluginSigner, PolicyError> {
        Ok(PluginSigner::from_secret(parse_hex::<32>(
            text,
            "the secret key",
        )?))
    }

    /// The secret, hex, for a key file.
    pub fn secret_hex(&self) -> String {
        to_hex(&self.key.to_bytes())
    }

    /// The public key, hex, for a policy's `trusted_key`.
    pub fn public_hex(&self) -> String {
        to_hex(self.key.verifying_key().as_bytes())
    }

    /// Signs all of `binding` (its SHA-256 pins the component's bytes).
    pub fn sign(&self, binding: &Binding) -> Signature {
        Signature {
            key: self.key.verifying_key(),
            signature: self.key.sign(&binding.signed_message()),
        }
    }
}
