//! An edge node's decision outbox (`edge_outbox_v1`): each decision it makes itself gets its
//! next sequence number in the transaction that makes it, and stays until the gateway confirms
//! it (docs/offline.md).

use super::StoreError;
use super::tables::{EDGE_INBOX_V1, EDGE_OUTBOX_V1, OUTBOX_DRAINED};
use super::writer::{Tx, Writer};
use lockergrid_model::{Decision, EdgeDecision};

impl Writer {
    /// On an edge node, puts a decision it made into its outbox, in the transaction that made it.
    pub(super) fn decided(
        &mut self,
        tx: &mut Tx<'_>,
        decision: Decision,
    ) -> Result<(), StoreError> {
        if !self.edge {
            return Ok(());
        }
        let seq = match EDGE_OUTBOX_V1.last(&tx.edge_outbox)? {
            Some(last) => last.seq,
            None => EDGE_INBOX_V1
                .get(&tx.edge_inbox, OUTBOX_DRAINED)?
                .unwrap_or(0),
        } + 1;
        let entry = EdgeDecision {
            seq,
            at: tx.now,
            decision,
        };
        EDGE_OUTBOX_V1.put(&mut tx.edge_outbox, seq, &entry)
    }
}
