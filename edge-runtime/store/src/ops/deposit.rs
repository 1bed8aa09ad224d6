//! A deposit confirmed: the parcel of a held reservation is stored and its pickup code issued
//! (the door-closed event of a deposit unlock, or, for tests, no door at all).

use crate::access_log::Draft;
use crate::reservations::advance;
use crate::reservations::moved;
use crate::tables::RESERVATIONS_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Deposit, Store, conflict};
use lockergrid_model::{
    Actor, CodeRecord, DecidedBy, NotificationEvent, ReservationEvent, ReservationStatus,
};
use lockergrid_protocol::{CompartmentEvent, ParcelEvent, ReservationId};

impl Store {
    /// Records the parcel of a held reservation as stored and issues its pickup code, with no door
    /// involved: the gateway records deposits through [`Store::door_closed`]; this is the same
    /// step for a deposit confirmed otherwise (store tests and benchmarks stock lockers with it).
    /// `decided_by` records the site rules that allowed it.
    #[cfg(feature = "testing")]
    pub async fn deposit(
        &self,
        id: ReservationId,
        actor: Actor,
        decided_by: Option<DecidedBy>,
    ) -> Result<Deposit, ChangeError> {
        self.write(move |w, tx| w.deposit(tx, &id, actor, decided_by))
            .await
    }
}

impl Writer {
    pub(crate) fn deposit(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ReservationId,
        actor: Actor,
        decided_by: Option<DecidedBy>,
    ) -> Result<Deposit, ChangeError> {
        let mut reservation = self.held_reservation(tx, id)?;
        if reservation.hold_until <= tx.now {
            return Err(conflict(
                "reservation",
                id.as_str(),
                ReservationStatus::Expired,
            ));
        }
        let deposited = moved(&reservation, ReservationEvent::Deposited)?;
        let mut parcel = self.parcel(tx, &reservation.parcel_id)?;
        let stored = advance(&parcel, ParcelEvent::Deposited)?;
        let (code, hash) = self.draw_code(tx, &reservation.station_id)?;
        self.move_compartment(
            tx,
            &reservation.compartment_id,
            CompartmentEvent::DepositConfirmed,
            Some(id.clone()),
        )?;
        let expires_at = tx.now.plus(reservation.tier.pickup_window());
        parcel.status = stored;
        parcel.stored_at = Some(tx.now);
        parcel.pickup_expires_at = Some(expires_at);
        parcel.code_hash = Some(hash.clone());
        parcel.code_message = self.send_pickup_code(tx, &parcel, &code, expires_at)?;
        self.tell_parcel_merchant(tx, &parcel, NotificationEvent::ParcelStored)?;
        tx.put_parcel(&parcel)?;
        let record = CodeRecord {
            parcel_id: parcel.id.clone(),
            station_id: reservation.station_id.clone(),
            expires_at,
        };
        tx.put_code(hash.as_str(), &record)?;
        self.index
            .hold_deadlines
            .remove(&(reservation.hold_until, id.clone()));
        self.index
            .pickup_deadlines
            .insert((expires_at, parcel.id.clone()));
        reservation.status = deposited;
        RESERVATIONS_V1.put(&mut tx.reservations, id.as_str(), &reservation)?;
        self.log(
            tx,
            Draft::new(actor, "deposit", parcel.id.as_str(), "ok").decided_by(decided_by),
        )?;
        Ok(Deposit { parcel, code })
    }
}
