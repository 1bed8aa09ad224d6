//! A held reservation whose station left service moves to the first of the stations the
//! reservation policy ranked that has room for its parcel — compartment, reservation and parcel
//! in one transaction — or, where none has, is released; either way its customer and its
//! merchant are told in the same transaction.

use crate::access_log::Draft;
use crate::outbox::Notice;
use crate::tables::RESERVATIONS_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store};
use lockergrid_model::{About, Actor, DecidedBy, NotificationEvent, Reservation};
use lockergrid_protocol::{CompartmentEvent, ReservationId, StationId};

/// Where a held reservation should go instead.
#[derive(Debug, Clone)]
pub struct Relocation {
    /// The reservation.
    pub reservation: ReservationId,
    /// The stations to try, best first (its own station is skipped).
    pub candidates: Vec<StationId>,
    /// Why, for the access log.
    pub reason: String,
    /// Who moves it.
    pub actor: Actor,
    /// The plugin that ranked the candidates.
    pub decided_by: Option<DecidedBy>,
}

/// What became of a relocated reservation.
#[derive(Debug, Clone, PartialEq)]
pub enum Relocated {
    /// It holds a compartment at another station now.
    Moved {
        /// The reservation as it is now.
        reservation: Reservation,
        /// The station it left.
        from: StationId,
    },
    /// Nothing ranked had room: it is released.
    Released(Reservation),
}

impl Store {
    /// Moves a held reservation as `relocation` says, or releases it.
    pub async fn relocate_reservation(
        &self,
        relocation: Relocation,
    ) -> Result<Relocated, ChangeError> {
        self.write(move |w, tx| w.relocate_reservation(tx, relocation))
            .await
    }
}

impl Writer {
    pub(crate) fn relocate_reservation(
        &mut self,
        tx: &mut Tx<'_>,
        relocation: Relocation,
    ) -> Result<Relocated, ChangeError> {
        let mut reservation = self.held_reservation(tx, &relocation.reservation)?;
        let mut parcel = self.parcel(tx, &reservation.parcel_id)?;
        let from = reservation.station_id.clone();
        let size = parcel.spec.smallest_size().unwrap_or(reservation.size);
        let candidates: Vec<StationId> = relocation
            .candidates
            .into_iter()
            .filter(|s| *s != from)
            .collect();
        let Some((station, compartment, got)) = self.find_free(&candidates, size) else {
            let released = self.end_hold(
                tx,
                reservation,
                CompartmentEvent::Cancel,
                relocation.actor.clone(),
            )?;
            let outcome = format!("released: {}; no station near had room", relocation.reason);
            let entry = Draft::new(
                relocation.actor,
                "reservation_cancelled",
                released.id.as_str(),
                &outcome,
            )
            .decided_by(relocation.decided_by);
            self.log(tx, entry)?;
            let parcel = self.parcel(tx, &released.parcel_id)?;
            self.tell_customer(tx, &parcel, NotificationEvent::ReservationCancelled)?;
            return Ok(Relocated::Released(released));
        };
        self.move_compartment(
            tx,
            &reservation.compartment_id,
            CompartmentEvent::Cancel,
            None,
        )?;
        self.move_compartment(
            tx,
            &compartment,
            CompartmentEvent::Reserve,
            Some(reservation.id.clone()),
        )?;
        reservation.station_id = station.clone();
        reservation.compartment_id = compartment.clone();
        reservation.size = got;
        RESERVATIONS_V1.put(&mut tx.reservations, reservation.id.as_str(), &reservation)?;
        parcel.station_id = station.clone();
        parcel.compartment_id = compartment;
        tx.put_parcel(&parcel)?;
        let outcome = format!("{from} -> {station}: {}", relocation.reason);
        let entry = Draft::new(
            relocation.actor,
            "reservation_moved",
            reservation.id.as_str(),
            &outcome,
        )
        .decided_by(relocation.decided_by);
        self.log(tx, entry)?;
        self.tell_customer(tx, &parcel, NotificationEvent::ReservationMoved)?;
        Ok(Relocated::Moved { reservation, from })
    }

    /// Tells `parcel`'s customer and merchant that `event` happened to it, naming its station
    /// as it is now.
    fn tell_customer(
        &mut self,
        tx: &mut Tx<'_>,
        parcel: &lockergrid_model::Parcel,
        event: NotificationEvent,
    ) -> Result<(), ChangeError> {
        let notice = Notice {
            about: About::Parcel(parcel.id.clone()),
            station: &parcel.station_id,
            recipient: parcel.recipient.as_ref(),
            event,
            due_at: tx.now,
            code: None,
            after: None,
        };
        self.notify(tx, notice)?;
        self.tell_parcel_merchant(tx, parcel, event)?;
        Ok(())
    }
}
