//! Tokens an operator revoked before they expire: one token by its id, or every token of a
//! subject issued until the revocation (a courier who left, a merchant's leaked credential). The
//! store keeps the records (`Store::revoke_tokens`); the gateway holds them in memory, so a
//! request pays a hash lookup.

use super::{Claims, TokenError};
use lockergrid_model::{Revocation, RevokedTokens};
use lockergrid_protocol::Timestamp;
use std::collections::{HashMap, HashSet};

/// The revocations in force.
#[derive(Debug, Default)]
pub struct Revocations {
    tokens: HashSet<String>,
    subjects: HashMap<String, Timestamp>,
}

impl Revocations {
    /// The revocations of `records`.
    pub fn new(records: Vec<Revocation>) -> Revocations {
        let mut revocations = Revocations::default();
        for record in &records {
            revocations.add(record);
        }
        revocations
    }

    /// Takes in one more revocation.
    pub fn add(&mut self, record: &Revocation) {
        match &record.revoked {
            RevokedTokens::Token(id) => {
                self.tokens.insert(id.clone());
            }
            RevokedTokens::Subject(subject) => {
                let until = self.subjects.entry(subject.clone()).or_default();
                *until = (*until).max(record.revoked_at);
            }
        }
    }

    /// Refuses a token that is revoked by its id or by its subject.
    pub fn check(&self, claims: &Claims) -> Result<(), TokenError> {
        let by_subject = self
            .subjects
            .get(&claims.sub)
            .is_some_and(|until| claims.iat <= *until);
        if by_subject || self.tokens.contains(&claims.jti) {
            return Err(TokenError::Revoked);
        }
        Ok(())
    }
}
