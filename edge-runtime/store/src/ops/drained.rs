//! On an edge node: the gateway confirmed its decisions up to a sequence number.

use crate::tables::{EDGE_INBOX_V1, OUTBOX_DRAINED};
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};

impl Store {
    /// The gateway applied this edge node's decisions up to `seq`: they leave the outbox.
    pub async fn drained(&self, seq: u64) -> Result<(), StoreError> {
        self.write(move |w, tx| w.drained(tx, seq)).await
    }
}

impl Writer {
    pub(crate) fn drained(&mut self, tx: &mut Tx<'_>, seq: u64) -> Result<(), StoreError> {
        let before = EDGE_INBOX_V1
            .get(&tx.edge_inbox, OUTBOX_DRAINED)?
            .unwrap_or(0);
        tx.edge_outbox.retain(|k, _| k > seq)?;
        EDGE_INBOX_V1.put(&mut tx.edge_inbox, OUTBOX_DRAINED, &before.max(seq))
    }
}
