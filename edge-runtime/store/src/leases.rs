//! Edge nodes' leases (DESIGN.md §7): per station an edge node serves, a small pool of empty
//! compartments per size held for it (`reserved`, with no reservation, listed in its
//! [`LeaseRecord`]), so it can open one for a return drop-off while its uplink is down. Checkout
//! never gets a leased compartment (it is not free). The gateway renews a lease (tops it up after
//! drop-offs used compartments), shrinks it (the policy's pool went down, or the station filled
//! up: a lease never takes more than half of what would otherwise be free) and revokes it; every
//! change raises the lease's epoch, and a compartment taken back stays held until the edge node
//! confirms an epoch without it, so no compartment is promised twice.

use super::access_log::Draft;
use super::tables::{COMPARTMENTS_V1, LEASES_V1, compartment_key};
use super::writer::{Tx, Writer};
use super::{ChangeError, Store, StoreError};
use lockergrid_model::{Actor, CompartmentRecord, LeaseRecord, StationStatus};
use lockergrid_protocol::{CompartmentEvent, CompartmentId, CompartmentState, Size, StationId};
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
fn targets(pool: [u32; 4], held: [u32; 4], free: [u32; 4]) -> [u32; 4] {
    std::array::from_fn(|i| pool[i].min((held[i] + free[i]) / 2))
}

/// The pool a lease should have at a station in `status`: none once an operator takes the
/// station out of service or makes it inactive, so its lease is revoked. A station whose locker
/// merely stopped reporting keeps it: that is when the lease is needed.
fn pool_of(want: &LeaseWant, status: StationStatus) -> [u32; 4] {
    match status {
        StationStatus::Active | StationStatus::Offline => want.pool,
        StationStatus::Inactive | StationStatus::OutOfService => [0; 4],
    }
}

/// Whether `c` is still held by a lease: reserved for no reservation.
fn leased(c: Option<&CompartmentRecord>) -> bool {
    c.is_some_and(|c| c.state == CompartmentState::Reserved && c.reservation.is_none())
}

fn storage(e: ChangeError) -> StoreError {
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

    /// Renews, shrinks and releases leases as `wants` say; `true` when anything changed.
    pub async fn maintain_leases(&self, wants: Vec<LeaseWant>) -> Result<bool, StoreError> {
        self.write(move |w, tx| w.maintain_leases(tx, wants)).await
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

impl Writer {
    pub(super) fn maintain_leases(
        &mut self,
        tx: &mut Tx<'_>,
        wants: Vec<LeaseWant>,
    ) -> Result<bool, StoreError> {
        let mut changed = false;
        for want in wants {
            if !self.index.stations.contains_key(&want.station) {
                continue;
            }
            let before = LEASES_V1.get(&tx.leases, want.station.as_str())?;
            let mut lease = before
                .clone()
                .unwrap_or_else(|| LeaseRecord::empty(want.station.clone(), want.edge.clone()));
            if let Some(acked) = want.acked {
                lease.acked_epoch = lease.acked_epoch.max(acked.min(lease.epoch));
            }
            // Compartments a drop-off (or an operator) took out of the lease leave it.
            let mut by_size: [Vec<CompartmentId>; 4] = Default::default();
            let mut keep = BTreeSet::new();
            for id in &lease.compartments {
                let c = COMPARTMENTS_V1.get(&tx.compartments, compartment_key(id).as_str())?;
                if let Some(c) = c.filter(|c| leased(Some(c))) {
                    by_size[c.size.index()].push(id.clone());
                    keep.insert(id.clone());
                }
            }
            lease.compartments = keep;
            let mut revoking = std::mem::take(&mut lease.revoking);
            for (id, epoch) in std::mem::take(&mut revoking) {
                let c = COMPARTMENTS_V1.get(&tx.compartments, compartment_key(&id).as_str())?;
                if !leased(c.as_ref()) {
                    continue;
                }
                if epoch <= lease.acked_epoch {
                    // The edge node holds an epoch without it: free for checkout again.
                    self.move_compartment(tx, &id, CompartmentEvent::Cancel, None)
                        .map_err(storage)?;
                } else {
                    revoking.insert(id, epoch);
                }
            }
            lease.revoking = revoking;
            let held = by_size.each_ref().map(|ids| ids.len() as u32);
            let (free, status) = match self.index.stations.get(&want.station) {
                Some(station) => (
                    station.free.each_ref().map(|ids| ids.len() as u32),
                    station.record.status,
                ),
                None => ([0; 4], StationStatus::Inactive),
            };
            let target = targets(pool_of(&want, status), held, free);
            let next = lease.epoch + 1;
            let mut moved = false;
            for size in Size::ALL {
                let i = size.index();
                if held[i] < target[i] {
                    let take: Vec<CompartmentId> = self
                        .index
                        .stations
                        .get(&want.station)
                        .map(|s| {
                            s.free[i]
                                .iter()
                                .take((target[i] - held[i]) as usize)
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    for id in take {
                        self.move_compartment(tx, &id, CompartmentEvent::Reserve, None)
                            .map_err(storage)?;
                        lease.compartments.insert(id);
                        moved = true;
                    }
                }
                for id in by_size[i]
                    .iter()
                    .rev()
                    .take(held[i].saturating_sub(target[i]) as usize)
                {
                    lease.compartments.remove(id);
                    lease.revoking.insert(id.clone(), next);
                    moved = true;
                }
            }
            if moved {
                lease.epoch = next;
            }
            if before.as_ref() == Some(&lease) {
                continue;
            }
            LEASES_V1.put(&mut tx.leases, want.station.as_str(), &lease)?;
            changed = true;
            let material = before.as_ref().is_none_or(|b| {
                (&b.compartments, &b.revoking) != (&lease.compartments, &lease.revoking)
            });
            if material {
                let outcome = format!(
                    "edge {} epoch {}: {} held, {} being taken back, epoch {} confirmed",
                    lease.edge,
                    lease.epoch,
                    lease.compartments.len(),
                    lease.revoking.len(),
                    lease.acked_epoch
                );
                let actor = Actor {
                    subject: "gateway".into(),
                    role: "system".into(),
                };
                self.log(
                    tx,
                    Draft::new(actor, "lease", want.station.as_str(), &outcome),
                )?;
            }
        }
        Ok(changed)
    }
}
