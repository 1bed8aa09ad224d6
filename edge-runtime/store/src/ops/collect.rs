//! A carrier collecting an expired parcel: its compartment is available again.

use crate::access_log::Draft;
use crate::tables::PARCELS_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store, conflict};
use lockergrid_model::{Actor, Parcel};
use lockergrid_protocol::{CompartmentEvent, ParcelId, ParcelStatus};

impl Store {
    /// A carrier took an expired parcel away; its compartment becomes available.
    pub async fn collect(&self, id: ParcelId, actor: Actor) -> Result<Parcel, ChangeError> {
        self.write(move |w, tx| w.collect(tx, &id, actor)).await
    }
}

impl Writer {
    pub(crate) fn collect(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ParcelId,
        actor: Actor,
    ) -> Result<Parcel, ChangeError> {
        let mut parcel = self.requested_parcel(tx, id)?;
        if parcel.status != ParcelStatus::Expired || parcel.collected_at.is_some() {
            return Err(match parcel.collected_at {
                Some(_) => conflict("parcel", id.as_str(), "collected"),
                None => conflict("parcel", id.as_str(), parcel.status),
            });
        }
        self.move_compartment(
            tx,
            &parcel.compartment_id,
            CompartmentEvent::CarrierCollected,
            None,
        )?;
        parcel.collected_at = Some(tx.now);
        PARCELS_V1.put(&mut tx.parcels, id.as_str(), &parcel)?;
        self.complete_reservation(tx, &parcel.reservation_id)?;
        self.log(tx, Draft::new(actor, "collect", id.as_str(), "ok"))?;
        Ok(parcel)
    }
}
