//! The append-only access log. Each entry carries the SHA-256 of the one before it, so removing or
//! editing an entry breaks the chain and [`verify`] finds where.

use super::StoreError;
use super::index::ChainHead;
use super::tables::ACCESS_LOG_V1;
use lockergrid_model::{AccessEntry, Actor, DecidedBy};
use lockergrid_protocol::Timestamp;
use redb::ReadableTable;
use sha2::{Digest, Sha256};

/// An entry before the writer gives it a place in the chain.
#[derive(Debug, Clone)]
pub struct Draft {
    actor: Actor,
    action: String,
    target: String,
    outcome: String,
    decided_by: Option<DecidedBy>,
}

impl Draft {
    /// A new entry.
    pub fn new(actor: Actor, action: &str, target: &str, outcome: &str) -> Draft {
        Draft {
            actor,
            action: action.to_owned(),
            target: target.to_owned(),
            outcome: outcome.to_owned(),
            decided_by: None,
        }
    }

    /// The same entry, recording which plugin decided.
    pub fn decided_by(mut self, decided_by: Option<DecidedBy>) -> Draft {
        self.decided_by = decided_by;
        self
    }
}

/// Why the chain does not verify.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The log could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The entry at `seq` does not follow from the one before it.
    #[error("access log chain broken at entry {seq}")]
    Broken {
        /// The first entry that does not verify.
        seq: u64,
    },
}

fn entry_hash(e: &AccessEntry) -> String {
    let fields = (
        e.seq,
        e.at,
        &e.actor,
        &e.action,
        &e.target,
        &e.outcome,
        &e.prev_hash,
    );
    // Entries without a decision hash as they did before the field existed.
    let json = match &e.decided_by {
        None => serde_json::to_vec(&fields),
        Some(d) => serde_json::to_vec(&(fields, d)),
    }
    .unwrap_or_default();
    lockergrid_protocol::to_hex(&Sha256::digest(&json))
}

fn genesis() -> String {
    "0".repeat(64)
}

/// Appends `draft` after `head` and moves `head` forward.
pub(super) fn append(
    table: &mut redb::Table<'_, u64, &'static [u8]>,
    head: &mut ChainHead,
    at: Timestamp,
    draft: Draft,
) -> Result<(), StoreError> {
    let prev_hash = if head.seq == 0 {
        genesis()
    } else {
        head.hash.clone()
    };
    let mut entry = AccessEntry {
        seq: head.seq + 1,
        at,
        actor: draft.actor,
        action: draft.action,
        target: draft.target,
        outcome: draft.outcome,
        decided_by: draft.decided_by,
        prev_hash,
        hash: String::new(),
    };
    entry.hash = entry_hash(&entry);
    ACCESS_LOG_V1.put(table, entry.seq, &entry)?;
    head.seq = entry.seq;
    head.hash = entry.hash;
    Ok(())
}

/// Walks the whole chain.
pub(super) fn verify(table: &impl ReadableTable<u64, &'static [u8]>) -> Result<u64, ChainError> {
    let mut prev = genesis();
    let mut count = 0;
    for entry in ACCESS_LOG_V1.all(table)? {
        count += 1;
        if entry.seq != count || entry.prev_hash != prev || entry_hash(&entry) != entry.hash {
            return Err(ChainError::Broken { seq: count });
        }
        prev = entry.hash;
    }
    Ok(count)
}
