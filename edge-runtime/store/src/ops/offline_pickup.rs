//! A pickup a locker decided alone from its own cache, applied once.

use crate::access_log::Draft;
use crate::tables::{self, CODES_V1, COMPARTMENTS_V1, INBOX_V1, RESERVATIONS_V1, inbox_key};
use crate::writer::{Tx, Writer};
use crate::{Applied, OfflinePickup};
use crate::{ChangeError, Store, StoreError};
use lockergrid_model::{Decision, InboxRecord};
use lockergrid_protocol::ParcelId;

impl Store {
    /// Applies a locker's own pickup once: the parcel its code belonged to (or, when that code
    /// is no longer active here, the parcel stored in the compartment it released) is picked up,
    /// on an edge node also as a decision for the gateway. It happened: a conflict is recorded,
    /// not refused.
    pub async fn offline_pickup(&self, pickup: OfflinePickup) -> Result<Applied, StoreError> {
        self.write(move |w, tx| w.offline_pickup(tx, pickup)).await
    }
}

impl Writer {
    pub(crate) fn offline_pickup(
        &mut self,
        tx: &mut Tx<'_>,
        pickup: OfflinePickup,
    ) -> Result<Applied, StoreError> {
        let key = inbox_key(&pickup.station, &pickup.event);
        if INBOX_V1.get(&tx.inbox, key.as_str())?.is_some() {
            return Ok(Applied::Duplicate);
        }
        INBOX_V1.put(
            &mut tx.inbox,
            key.as_str(),
            &InboxRecord { applied_at: tx.now },
        )?;
        let by_code = CODES_V1
            .get(&tx.codes, pickup.code_hash.as_str())?
            .filter(|c| c.station_id == pickup.station)
            .map(|c| c.parcel_id);
        let in_compartment = || -> Result<Option<ParcelId>, StoreError> {
            let compartment = tables::compartment_key(&pickup.compartment);
            let Some(c) = COMPARTMENTS_V1.get(&tx.compartments, compartment.as_str())? else {
                return Ok(None);
            };
            let Some(reservation) = c.reservation else {
                return Ok(None);
            };
            Ok(RESERVATIONS_V1
                .get(&tx.reservations, reservation.as_str())?
                .map(|r| r.parcel_id))
        };
        let (parcel, revoked) = match by_code {
            Some(parcel) => (Some(parcel), false),
            None => (in_compartment()?, true),
        };
        let target = pickup.compartment.to_string();
        let Some(parcel) = parcel else {
            let why =
                format!("the locker released {target} offline, but no parcel is stored there");
            self.log(tx, Draft::new(pickup.actor, "pickup", &target, &why))?;
            return Ok(Applied::Conflict(why));
        };
        match self.pick_up(tx, &pickup.code_hash, &parcel, pickup.actor.clone(), None) {
            Ok(_) => {
                self.decided(
                    tx,
                    Decision::PickedUp {
                        station: pickup.station.clone(),
                        parcel: parcel.clone(),
                        code_hash: pickup.code_hash.clone(),
                        command: format!("offline at the locker ({})", pickup.event),
                        event: pickup.event.clone(),
                        decided_by: None,
                    },
                )?;
                if revoked {
                    let why = "picked up offline at the locker with a code no longer active here"
                        .to_string();
                    self.log(
                        tx,
                        Draft::new(pickup.actor, "pickup_conflict", parcel.as_str(), &why),
                    )?;
                    return Ok(Applied::Conflict(why));
                }
                Ok(Applied::Applied)
            }
            Err(ChangeError::Store(e)) => Err(e),
            Err(refused) => {
                let why = format!("the locker released {target} offline: {refused}");
                self.log(
                    tx,
                    Draft::new(pickup.actor, "pickup", parcel.as_str(), &why),
                )?;
                Ok(Applied::Conflict(why))
            }
        }
    }
}
