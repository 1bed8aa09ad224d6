//! Renewing, shrinking and releasing the edge nodes' leases of empty compartments.

use crate::LeaseWant;
use crate::access_log::Draft;
use crate::leases::leased;
use crate::leases::pool_of;
use crate::leases::storage;
use crate::leases::targets;
use crate::tables::{COMPARTMENTS_V1, LEASES_V1, compartment_key};
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::{Actor, LeaseRecord, StationStatus};
use lockergrid_protocol::{CompartmentEvent, CompartmentId, Size};
use std::collections::BTreeSet;

impl Store {
    /// Renews, shrinks and releases leases as `wants` say; `true` when anything changed.
    pub async fn maintain_leases(&self, wants: Vec<LeaseWant>) -> Result<bool, StoreError> {
        self.write(move |w, tx| w.maintain_leases(tx, wants)).await
    }
}

impl Writer {
    pub(crate) fn maintain_leases(
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
