//! Each station's count of wrong codes, kept in the store so that checking an attempt and
//! counting it happen in one write transaction (a burst in flight cannot outrun the count) and a
//! restart forgets nothing. The rule itself is `lockergrid_protocol::Lockout`. An edge node's count
//! is its own while it decides and the gateway's once synced: the sync waits until the gateway
//! has applied the edge node's decisions, whose rejections carry its count, so taking the
//! gateway's record then loses nothing.

use super::tables::LOCKOUTS_V1;
use super::writer::{Tx, Writer};
use super::{Store, StoreError};
use lockergrid_protocol::{Lockout, StationId};
use redb::ReadableDatabase;
use std::time::Duration;

impl Store {
    /// The wrong-code count of `station` as committed.
    pub fn lockout(&self, station: &StationId) -> Result<Lockout, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(LOCKOUTS_V1.def())?;
        Ok(LOCKOUTS_V1
            .get(&table, station.as_str())?
            .unwrap_or_default())
    }
}

impl Writer {
    /// Checks and counts an attempt at `station` now: `Ok` with the count after it (the attempt
    /// counted as a failure until its code proves right), `Err(wait)` when it must wait.
    pub(crate) fn admit_attempt(
        &mut self,
        tx: &mut Tx<'_>,
        station: &StationId,
    ) -> Result<Result<Lockout, Duration>, StoreError> {
        let mut lockout = self.lockout(tx, station)?;
        if let Err(wait) = lockout.admit(tx.now) {
            return Ok(Err(wait));
        }
        self.put_lockout(tx, station, &lockout)?;
        Ok(Ok(lockout))
    }

    /// An admitted attempt at `station` whose code was right: it is no failure.
    pub(crate) fn give_back_attempt(
        &mut self,
        tx: &mut Tx<'_>,
        station: &StationId,
    ) -> Result<(), StoreError> {
        let mut lockout = self.lockout(tx, station)?;
        lockout.give_back();
        self.put_lockout(tx, station, &lockout)
    }

    /// Raises the count of `station` to one made elsewhere (an edge node's, the gateway's).
    pub(crate) fn merge_lockout(
        &mut self,
        tx: &mut Tx<'_>,
        station: &StationId,
        other: &Lockout,
    ) -> Result<(), StoreError> {
        let mut lockout = self.lockout(tx, station)?;
        lockout.merge(other);
        self.put_lockout(tx, station, &lockout)
    }

    /// Writes the count of `station`; a station with no failures has no record, so the records
    /// an edge node mirrors are the gateway's exactly.
    pub(crate) fn put_lockout(
        &mut self,
        tx: &mut Tx<'_>,
        station: &StationId,
        lockout: &Lockout,
    ) -> Result<(), StoreError> {
        if lockout.failures == 0 {
            tx.lockouts.remove(station.as_str())?;
            return Ok(());
        }
        LOCKOUTS_V1.put(&mut tx.lockouts, station.as_str(), lockout)
    }

    /// The count of `station` inside the transaction.
    pub(crate) fn lockout(&self, tx: &Tx<'_>, station: &StationId) -> Result<Lockout, StoreError> {
        Ok(LOCKOUTS_V1
            .get(&tx.lockouts, station.as_str())?
            .unwrap_or_default())
    }
}
