//! The inbox: the ids of the locker events a node has applied (`inbox_v1`), written in the
//! transaction that applies each, so an event its locker sends again is applied once.

use super::tables::{self, INBOX_V1};
use super::writer::{Tx, Writer};
use super::{Store, StoreError};
use lockergrid_model::InboxRecord;
use lockergrid_protocol::StationId;
use redb::ReadableDatabase;

impl Writer {
    /// Records locker event `key` (`{station}/{event id}`) as applied, in the transaction that
    /// applies it.
    pub(super) fn mark_applied(&mut self, tx: &mut Tx<'_>, key: &str) -> Result<(), StoreError> {
        INBOX_V1.put(&mut tx.inbox, key, &InboxRecord { applied_at: tx.now })
    }

    /// Whether locker event `key` was applied before.
    pub(super) fn is_applied(&self, tx: &Tx<'_>, key: &str) -> Result<bool, StoreError> {
        Ok(INBOX_V1.get(&tx.inbox, key)?.is_some())
    }
}

impl Store {
    /// Whether `station`'s locker event `event` was applied.
    pub fn event_applied(&self, station: &StationId, event: &str) -> Result<bool, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(tables::INBOX_V1.def())?;
        Ok(tables::INBOX_V1
            .get(&table, tables::inbox_key(station, event).as_str())?
            .is_some())
    }
}
