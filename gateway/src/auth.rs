//! Bearer tokens and roles. A token is `lgt1.<claims>.<mac>`: base64url JSON claims and an
//! HMAC-SHA256 over them with the gateway's token key. Tokens are stateless; they expire.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use lockergrid_protocol::{StationId, Timestamp};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;
use std::time::Duration;

const PREFIX: &str = "lgt1";

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

/// Why a token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not of the form `lgt1.<claims>.<mac>`.
    #[error("malformed token")]
    Malformed,
    /// The MAC does not match: forged or for another gateway.
    #[error("token signature does not verify")]
    BadSignature,
    /// Past its expiry.
    #[error("token expired")]
    Expired,
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
}

/// Signs and verifies tokens.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// A key from its secret bytes.
    pub fn new(bytes: [u8; 32]) -> TokenKey {
        TokenKey(bytes)
    }

    fn mac(&self, payload: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC-SHA256 accepts a key of any length");
        mac.update(payload.as_bytes());
        mac
    }

    /// Issues a token for `role` valid for `ttl` from `now`.
    pub fn issue(
        &self,
        subject: &str,
        role: Role,
        stations: Vec<StationId>,
        now: Timestamp,
        ttl: Duration,
    ) -> Result<String, IssueError> {
        if subject.is_empty() || subject.len() > 128 || subject.chars().any(char::is_control) {
            return Err(IssueError::Subject);
        }
        match (role.is_scoped(), stations.is_empty()) {
            (true, true) => return Err(IssueError::Scope(role, "needs at least one station")),
            (false, false) => return Err(IssueError::Scope(role, "takes no stations")),
            _ => {}
        }
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            stations,
            iat: now,
            exp: now.plus(ttl),
        };
        let json = serde_json::to_vec(&claims).expect("claims serialize");
        let payload = format!("{PREFIX}.{}", URL_SAFE_NO_PAD.encode(json));
        let tag = self.mac(&payload).finalize().into_bytes();
        Ok(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag)))
    }

    /// Verifies a token and returns its claims if it is genuine and current.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
        let (payload, tag) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
        let (prefix, claims) = payload.split_once('.').ok_or(TokenError::Malformed)?;
        if prefix != PREFIX {
            return Err(TokenError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| TokenError::Malformed)?;
        self.mac(payload)
            .verify_slice(&tag)
            .map_err(|_| TokenError::BadSignature)?;
        let json = URL_SAFE_NO_PAD
            .decode(claims)
            .map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_796_083_200_000);
    const DAY: Duration = Duration::from_secs(86_400);

    fn station(s: &str) -> StationId {
        StationId::new(s).expect("valid")
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let key = TokenKey::new([3; 32]);
        let token = key
            .issue("agent-7", Role::Agent, vec![station("st-a")], NOW, DAY)
            .expect("issued");
        let claims = key.verify(&token, NOW).expect("verifies");
        assert_eq!(claims.role, Role::Agent);
        assert!(claims.covers(&station("st-a")));
        assert!(!claims.covers(&station("st-b")));
    }

    #[test]
    fn forged_expired_and_foreign_tokens_are_refused() {
        let key = TokenKey::new([3; 32]);
        let token = key
            .issue("c", Role::Checkout, vec![], NOW, DAY)
            .expect("issued");
        assert_eq!(key.verify(&token, NOW.plus(DAY)), Err(TokenError::Expired));
        assert_eq!(
            TokenKey::new([4; 32]).verify(&token, NOW),
            Err(TokenError::BadSignature)
        );
        let operator = key
            .issue("c", Role::Operator, vec![], NOW, DAY)
            .expect("issued");
        let (_, operator_claims) = operator.split_once('.').expect("dot");
        let (operator_claims, _) = operator_claims.split_once('.').expect("dot");
        let (_, rest) = token.split_once('.').expect("dot");
        let (_, tag) = rest.split_once('.').expect("dot");
        let spliced = format!("{PREFIX}.{operator_claims}.{tag}");
        assert_eq!(key.verify(&spliced, NOW), Err(TokenError::BadSignature));
        for junk in ["", "lgt1", "lgt1..", "Bearer x", "lgt2.e30.AA"] {
            assert!(key.verify(junk, NOW).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn scoped_roles_need_stations_and_others_take_none() {
        let key = TokenKey::new([3; 32]);
        assert!(key.issue("a", Role::Station, vec![], NOW, DAY).is_err());
        assert!(
            key.issue("a", Role::Operator, vec![station("s")], NOW, DAY)
                .is_err()
        );
        assert!(key.issue("", Role::Operator, vec![], NOW, DAY).is_err());
    }
}
