//! Edge nodes' leases (DESIGN.md §7): per station an edge node serves, a small pool of empty
//! compartments per size held for it (`reserved`, with no reservation, listed in its
//! [`LeaseRecord`]), so it can open one for a return drop-off while its uplink is down. Checkout
//! never gets a leased compartment (it is not free). The gateway renews a lease (tops it up after
//! drop-offs used compartments), shrinks it (the policy's pool went down, or the station filled
//! up: a lease never takes more than half of what would otherwise be free) and revokes it; every
//! change raises the lease's epoch, and a compartment taken back stays held until the edge node
//! confirms an epoch without it, so no compartment is promised twice.

use super::tables::{COMPARTMENTS_V1, LEASES_V1, compartment_key};
use super::writer::Writer;
use super::{ChangeError, Store, StoreError};
use lockergrid_model::{CompartmentRecord, LeaseRecord, StationStatus};
use lockergrid_protocol::{CompartmentState, Size, StationId};
use redb::ReadableDatabase;
use std::collections::BTreeSet;

/// What one station's lease should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseWant {
    /// The station.
    pub station: StationId,
    /// The edge node that serves it.
    pub edge: String,
    /// The pool per size, indexed by [`Size::index`].
    pub pool: [u32; 4],
    /// The newest epoch the edge node reported holding, if it reported.
    pub acked: Option<u64>,
}

/// How many of each size a lease should hold: the pool, never more than half of the
/// compartments of that size that are free or already leased.
pub(crate) fn targets(pool: [u32; 4], held: [u32; 4], free: [u32; 4]) -> [u32; 4] {
    std::array::from_fn(|i| pool[i].min((held[i] + free[i]) / 2))
}

/// The pool a lease should have at a station in `status`: none once an operator takes the
/// station out of service or makes it inactive, so its lease is revoked. A station whose locker
/// merely stopped reporting keeps it: that is when the lease is needed.
pub(crate) fn pool_of(want: &LeaseWant, status: StationStatus) -> [u32; 4] {
    match status {
        StationStatus::Active | StationStatus::Offline => want.pool,
        StationStatus::Inactive | StationStatus::OutOfService => [0; 4],
    }
}

/// Whether `c` is still held by a lease: reserved for no reservation.
pub(crate) fn leased(c: Option<&CompartmentRecord>) -> bool {
    c.is_some_and(|c| c.state == CompartmentState::Reserved && c.reservation.is_none())
}

pub(crate) fn storage(e: ChangeError) -> StoreError {
    match e {
        ChangeError::Store(e) => e,
        other => StoreError::Corrupt {
            table: "leases_v1",
            detail: other.to_string(),
        },
    }
}

impl Store {
    /// Whether [`Store::maintain_leases`] would change anything for `wants`: a read, so the
    /// writer only commits when there is work.
    pub fn leases_due(&self, wants: &[LeaseWant]) -> Result<bool, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let leases = rx.open_table(LEASES_V1.def())?;
        let compartments = rx.open_table(COMPARTMENTS_V1.def())?;
        let snapshot = self.snapshot();
        for want in wants {
            let Some(view) = snapshot.station(&want.station) else {
                continue;
            };
            let lease = LEASES_V1
                .get(&leases, want.station.as_str())?
                .unwrap_or_else(|| LeaseRecord::empty(want.station.clone(), want.edge.clone()));
            if want
                .acked
                .is_some_and(|a| a.min(lease.epoch) > lease.acked_epoch)
                || lease.revoking.values().any(|e| *e <= lease.acked_epoch)
            {
                return Ok(true);
            }
            let mut held = [0u32; 4];
            for id in lease.compartments.iter().chain(lease.revoking.keys()) {
                let c = COMPARTMENTS_V1.get(&compartments, compartment_key(id).as_str())?;
                if !leased(c.as_ref()) {
                    return Ok(true);
                }
                if let Some(c) = c
                    && lease.compartments.contains(id)
                {
                    held[c.size.index()] += 1;
                }
            }
            let free = Size::ALL.map(|s| view.count(s).free);
            let pool = pool_of(want, view.record.status);
            if targets(pool, held, free) != held {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The leases of `stations`.
    pub fn leases(&self, stations: &BTreeSet<StationId>) -> Result<Vec<LeaseRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(LEASES_V1.def())?;
        let mut leases = Vec::new();
        for station in stations {
            if let Some(lease) = LEASES_V1.get(&table, station.as_str())? {
                leases.push(lease);
            }
        }
        Ok(leases)
    }

    /// The leases of `stations`, each with how many compartments it holds of each size
    /// (indexed by [`Size::index`]).
    pub fn lease_sizes(
        &self,
        stations: &BTreeSet<StationId>,
    ) -> Result<Vec<(LeaseRecord, [u32; 4])>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let compartments = rx.open_table(COMPARTMENTS_V1.def())?;
        self.leases(stations)?
            .into_iter()
            .map(|lease| {
                let mut sizes = [0u32; 4];
                for id in &lease.compartments {
                    let key = compartment_key(id);
                    if let Some(c) = COMPARTMENTS_V1.get(&compartments, key.as_str())? {
                        sizes[c.size.index()] += 1;
                    }
                }
                Ok((lease, sizes))
            })
            .collect()
    }

    /// Every lease this store holds.
    pub fn all_leases(&self) -> Result<Vec<LeaseRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(LEASES_V1.def())?;
        LEASES_V1.all(&table)
    }
}

impl Writer {}
