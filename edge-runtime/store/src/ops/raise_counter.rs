//! A locker reported a command counter above the one this store would sign next with: the
//! store is older than the locker's memory (restored from a backup, or a copy moved to another
//! machine). Every command it signed would be refused as a replay, so its counter is raised to
//! the locker's, with an access-log entry, since it also means commands were signed that this
//! store does not know.

use crate::access_log::Draft;
use crate::tables::LOCKERS_V1;
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::Actor;
use lockergrid_protocol::StationId;
use redb::ReadableDatabase;

impl Store {
    /// The counter of the last command signed for `station`'s locker, as committed.
    pub fn command_counter(&self, station: &StationId) -> Result<u64, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(LOCKERS_V1.def())?;
        Ok(LOCKERS_V1
            .get(&table, station.as_str())?
            .unwrap_or_default()
            .counter)
    }

    /// Raises `station`'s counter to `seen`, the last one its locker executed; the counter it
    /// had when that was higher than it, else `None` and nothing changes.
    pub async fn raise_counter(
        &self,
        station: StationId,
        seen: u64,
        actor: Actor,
    ) -> Result<Option<u64>, StoreError> {
        self.write(move |w, tx| w.raise_counter(tx, &station, seen, actor))
            .await
    }
}

impl Writer {
    fn raise_counter(
        &mut self,
        tx: &mut Tx<'_>,
        station: &StationId,
        seen: u64,
        actor: Actor,
    ) -> Result<Option<u64>, StoreError> {
        let mut locker = LOCKERS_V1
            .get(&tx.lockers, station.as_str())?
            .unwrap_or_default();
        if locker.counter >= seen {
            return Ok(None);
        }
        let before = std::mem::replace(&mut locker.counter, seen);
        LOCKERS_V1.put(&mut tx.lockers, station.as_str(), &locker)?;
        let outcome = format!(
            "raised from {before} to {seen}: the locker executed commands this store does not know (restored from an older backup?)"
        );
        self.log(
            tx,
            Draft::new(actor, "command_counter_raised", station.as_str(), &outcome),
        )?;
        Ok(Some(before))
    }
}
