//! The notification outbox (`outbox_v1`): one entry per message, written unplanned in the
//! transaction of the change it tells about, planned by the notification router after the
//! commit, with the reminders the plan asks for appended as entries of their own.

use super::tables::{self, OUTBOX_V1};
use super::writer::{Tx, Writer};
use super::{Store, StoreError, new_id};
use lockergrid_model::{NotificationEvent, OutboxEntry, Parcel};
use lockergrid_protocol::Timestamp;
use redb::ReadableDatabase;

impl Store {
    /// The outbox from entry `from` on, at most `limit` entries.
    pub fn outbox(&self, from: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(tables::OUTBOX_V1.def())?;
        tables::OUTBOX_V1.page(&table, from, limit)
    }
}

impl Writer {
    /// Puts a notification about `parcel` in the outbox, unplanned, if it has a recipient; the
    /// notification router plans it after the commit.
    pub(super) fn notify(
        &mut self,
        tx: &mut Tx<'_>,
        parcel: &Parcel,
        event: NotificationEvent,
        due_at: Timestamp,
    ) -> Result<(), StoreError> {
        let Some(recipient) = parcel.recipient.clone() else {
            return Ok(());
        };
        self.append_outbox(
            tx,
            OutboxEntry {
                seq: 0,
                id: new_id("ntf"),
                parcel_id: parcel.id.clone(),
                station_id: parcel.station_id.clone(),
                event,
                recipient,
                created_at: tx.now,
                due_at,
                plan: None,
                decided_by: None,
            },
        )
    }

    /// Appends `entry` with the outbox's next sequence number.
    pub(crate) fn append_outbox(
        &mut self,
        tx: &mut Tx<'_>,
        mut entry: OutboxEntry,
    ) -> Result<(), StoreError> {
        self.index.outbox_seq += 1;
        entry.seq = self.index.outbox_seq;
        OUTBOX_V1.put(&mut tx.outbox, entry.seq, &entry)
    }
}
