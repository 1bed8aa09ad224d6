//! A carrier taking an expired parcel back to its sender: a signed unlock of its compartment,
//! and when the door closes the parcel is `returned_to_sender` and the compartment available.

use crate::access_log::Draft;
use crate::reservations::advance;
use crate::tables::PARCELS_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store, StoreError, conflict};
use lockergrid_model::UnlockFor;
use lockergrid_model::{Actor, CommandRecord, DecidedBy, NotificationEvent, Parcel};
use lockergrid_protocol::{CompartmentEvent, ParcelEvent, ParcelId, ParcelStatus, StationId};
use redb::ReadableDatabase;
use std::time::Duration;

impl Store {
    /// The expired parcels at `station` waiting for a carrier, the longest waiting first.
    pub fn parcels_to_collect(&self, station: &StationId) -> Result<Vec<Parcel>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let index = rx.open_table(crate::tables::STATION_RECORDS_V1.def())?;
        let parcels = rx.open_table(PARCELS_V1.def())?;
        crate::station_index::uncollected_parcels(&index, &parcels, station)
    }

    /// Issues a carrier's unlock for an expired parcel; it goes back to its sender when the door
    /// closes.
    pub async fn unlock_for_parcel_collection(
        &self,
        id: ParcelId,
        actor: Actor,
        decided_by: Option<DecidedBy>,
        valid: Duration,
    ) -> Result<CommandRecord, ChangeError> {
        self.write(move |w, tx| w.unlock_for_parcel_collection(tx, &id, &actor, &decided_by, valid))
            .await
    }
}

impl Writer {
    pub(crate) fn unlock_for_parcel_collection(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ParcelId,
        actor: &Actor,
        decided_by: &Option<DecidedBy>,
        valid: Duration,
    ) -> Result<CommandRecord, ChangeError> {
        let parcel = self.requested_parcel(tx, id)?;
        if parcel.status != ParcelStatus::Expired {
            return Err(conflict("parcel", id.as_str(), parcel.status));
        }
        let command = self.issue(
            tx,
            crate::commands::Issue {
                station: &parcel.station_id,
                compartment: &parcel.compartment_id,
                unlock_for: UnlockFor::ParcelCollection {
                    parcel_id: id.clone(),
                },
                actor,
                decided_by,
                valid,
            },
        )?;
        let outcome = format!(
            "return to sender: command {} to {}",
            command.id, parcel.compartment_id
        );
        self.log(
            tx,
            Draft::new(actor.clone(), "unlock", id.as_str(), &outcome)
                .decided_by(decided_by.clone()),
        )?;
        Ok(command)
    }

    /// The door of a carrier's unlock closed: the expired parcel left with the carrier.
    pub(crate) fn collected_parcel(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ParcelId,
        actor: Actor,
        decided_by: Option<DecidedBy>,
    ) -> Result<Parcel, ChangeError> {
        let mut parcel = self.requested_parcel(tx, id)?;
        let returned = advance(&parcel, ParcelEvent::CarrierCollected)?;
        self.move_compartment(
            tx,
            &parcel.compartment_id,
            CompartmentEvent::CarrierCollected,
            None,
        )?;
        parcel.status = returned;
        parcel.collected_at = Some(tx.now);
        tx.put_parcel(&parcel)?;
        self.complete_reservation(tx, &parcel.reservation_id)?;
        self.tell_parcel_merchant(tx, &parcel, NotificationEvent::ReturnedToSender)?;
        self.log(
            tx,
            Draft::new(actor, "returned_to_sender", id.as_str(), "ok").decided_by(decided_by),
        )?;
        Ok(parcel)
    }
}
