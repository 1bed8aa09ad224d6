//! Bearer tokens and roles. A token is `lgt2.<key id>.<claims>.<mac>`: base64url JSON claims and
//! an HMAC-SHA256 over everything before the MAC with the token key of that id. Keys live in a
//! keyring of their own (`keyring`), so one can be rotated in while the last still verifies and
//! then retired; every role has a longest lifetime; a token or a subject can be revoked
//! (`revocations`).

pub mod keyring;
pub mod revocations;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use lockergrid_protocol::{StationId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::time::Duration;

const PREFIX: &str = "lgt2";
/// How far in the future a token's issue time may lie: clocks of the issuing host and the
/// gateway may differ by this much.
const CLOCK_SKEW: Duration = Duration::from_secs(300);
const DAY: Duration = Duration::from_secs(86_400);

/// What a token holder may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The checkout service: discovery and reservations.
    Checkout,
    /// A delivery agent: deposits at the stations on its route.
    Agent,
    /// A return carrier: collects at the stations on its route.
    Carrier,
    /// An operator: reads everything but pickup codes, releases reservations, reads the audit log.
    Operator,
    /// A locker touchscreen: enters codes at its own station.
    Station,
}

impl Role {
    /// The role's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Checkout => "checkout",
            Role::Agent => "agent",
            Role::Carrier => "carrier",
            Role::Operator => "operator",
            Role::Station => "station",
        }
    }

    /// Whether tokens of this role must name the stations they act on.
    pub const fn is_scoped(self) -> bool {
        matches!(self, Role::Agent | Role::Carrier | Role::Station)
    }

    /// The longest a token of this role may be valid: a day for a person who runs the fleet, a
    /// route's month for couriers and carriers, a quarter for a merchant's service, a year for a
    /// station screen bolted to its locker.
    pub const fn max_lifetime(self) -> Duration {
        match self {
            Role::Operator => DAY,
            Role::Agent | Role::Carrier => Duration::from_secs(30 * 86_400),
            Role::Checkout => Duration::from_secs(90 * 86_400),
            Role::Station => Duration::from_secs(365 * 86_400),
        }
    }

    /// The longest lifetime of any role: how long a revocation must be remembered.
    pub const LONGEST_LIFETIME: Duration = Duration::from_secs(365 * 86_400);
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// The token's own id, which revokes it alone.
    pub jti: String,
    /// Who holds it, for the audit log.
    pub sub: String,
    /// What it may do.
    pub role: Role,
    /// The stations it may act on (agents, carriers, stations).
    #[serde(default)]
    pub stations: Vec<StationId>,
    /// When it was issued.
    pub iat: Timestamp,
    /// When it stops working.
    pub exp: Timestamp,
}

impl Claims {
    /// Whether the holder may act on `station`.
    pub fn covers(&self, station: &StationId) -> bool {
        self.stations.contains(station)
    }
}

/// The id of a token key: eight lowercase hex digits, also its file name in the keyring.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct KeyId(String);

impl KeyId {
    /// A fresh random id.
    pub fn random() -> KeyId {
        KeyId(format!("{:08x}", rand::random::<u32>()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for KeyId {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<KeyId, TokenError> {
        let hex = s.len() == 8 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        hex.then(|| KeyId(s.to_owned()))
            .ok_or(TokenError::Malformed)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `lgt2.<key id>.<claims>.<mac>`.
    #[error("malformed token")]
    Malformed,
    /// Signed by a key this gateway does not hold: retired, or another gateway's.
    #[error("token key {0:?} is not in use")]
    UnknownKey(String),
    /// The MAC does not match: forged or altered.
    #[error("token signature does not verify")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
    /// Issued in the future, beyond any clock skew.
    #[error("token is not valid yet")]
    NotYetValid,
    /// Valid for longer than its role allows.
    #[error("a {role} token may be valid for at most {max}", role = .0, max = humantime::format_duration(*.1))]
    TooLong(Role, Duration),
    /// Revoked by an operator.
    #[error("token revoked")]
    Revoked,
}

/// Why a token could not be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueError {
    /// A scoped role without stations, or stations on an unscoped role.
    #[error("role {0} {1}")]
    Scope(Role, &'static str),
    /// The subject is empty or too long.
    #[error("subject must be 1 to 128 printable characters")]
    Subject,
    /// Longer than the role allows.
    #[error("a {role} token may be valid for at most {max}", role = .0, max = humantime::format_duration(*.1))]
    TooLong(Role, Duration),
}

/// A token key with its id: signs tokens and checks their MAC.
#[derive(Clone)]
pub struct TokenKey {
    id: KeyId,
    secret: [u8; 32],
}

impl TokenKey {
    /// The key `id` with its secret bytes.
    pub fn new(id: KeyId, secret: [u8; 32]) -> TokenKey {
        TokenKey { id, secret }
    }

    /// Its id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .expect("HMAC-SHA256 accepts a key of any length");
        mac.update(payload.as_bytes());
        mac
    }

    /// Issues a token for `role` valid for `ttl` from `now`, with a fresh id; answers the token
    /// and its claims.
    pub fn issue(
        &self,
        subject: &str,
        role: Role,
        stations: Vec<StationId>,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<(String, Claims), IssueError> {
        if subject.is_empty() || subject.len() > 128 || subject.chars().any(char::is_control) {
            return Err(IssueError::Subject);
        }
        match (role.is_scoped(), stations.is_empty()) {
            (true, true) => return Err(IssueError::Scope(role, "needs at least one station")),
            (false, false) => return Err(IssueError::Scope(role, "takes no stations")),
            _ => {}
        }
        if ttl > role.max_lifetime() {
            return Err(IssueError::TooLong(role, role.max_lifetime()));
        }
        let claims = Claims {
            jti: format!("{:032x}", rand::random::<u128>()),
            sub: subject.to_owned(),
            role,
            stations,
            iat: now,
            exp: now.plus(ttl),
        };
        let json = serde_json::to_vec(&claims).expect("claims serialize");
        let payload = format!("{PREFIX}.{}.{}", self.id, URL_SAFE_NO_PAD.encode(json));
        let tag = self.mac(&payload).finalize().into_bytes();
        let token = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag));
        Ok((token, claims))
    }

    /// The claims of `token` if this key signed it and it is current.
    fn verify(&self, parts: &Parts<'_>, now: Timestamp) -> Result<Claims, TokenError> {
        let tag = URL_SAFE_NO_PAD
            .decode(parts.tag)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(parts.signed)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(parts.claims)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        if claims.iat > now.plus(CLOCK_SKEW) {
            return Err(TokenError::NotYetValid);
        }
        let max = claims.role.max_lifetime();
        if claims.exp.millis().saturating_sub(claims.iat.millis()) > max.as_millis() as u64 {
            return Err(TokenError::TooLong(claims.role, max));
        }
        Ok(claims)
    }
}

/// A token split into its parts, before any is trusted.
struct Parts<'t> {
    /// Everything the MAC covers.
    signed: &'t str,
    key: KeyId,
    claims: &'t str,
    tag: &'t str,
}

impl<'t> Parts<'t> {
    fn split(token: &'t str) -> Result<Parts<'t>, TokenError> {
        let (signed, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let mut fields = signed.splitn(3, '.');
        let (Some(PREFIX), Some(key), Some(claims)) = (fields.next(), fields.next(), fields.next())
        else {
            return Err(TokenError::Malformed);
        };
        let key = key
            .parse()
            .map_err(|_| TokenError::UnknownKey(key.chars().take(16).collect()))?;
        Ok(Parts {
            signed,
            key,
            claims,
            tag,
        })
    }
}

#[cfg(test)]
mod tests;
