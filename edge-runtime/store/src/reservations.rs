//! Reservations and their parcels: holding a compartment, releasing it, the deposit and its
//! pickup code, the pickup, a carrier's collection after expiry, and the expiry sweep. Like every
//! writer operation, each checks everything that can refuse it before its first write, so a
//! refused operation leaves no trace but its access-log entry; after the first write only a
//! storage error can stop it, and that aborts the whole batch.

use super::access_log::Draft;
use super::index::StationIndex;
use super::outbox::Notice;
use super::tables::{CODES_V1, COMPARTMENTS_V1, PARCELS_V1, RESERVATIONS_V1, compartment_key};
use super::writer::{Tx, Writer};
use super::{ChangeError, CompartmentChange, Pickup, StoreError, conflict};
use lockergrid_model::{About, NotificationEvent};
use lockergrid_model::{
    Actor, CodeRecord, CompartmentRecord, DecidedBy, Parcel, Reservation, ReservationEvent,
    ReservationStatus, StationStatus,
};
use lockergrid_protocol::compartment::apply;
use lockergrid_protocol::{
    CompartmentEvent, CompartmentId, CompartmentState, ParcelEvent, ParcelId, ParcelStatus,
    PickupCode, ReservationId, Size, StationId,
};
use std::time::Duration;

/// How long an idempotency key is remembered.
pub(crate) const KEY_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Most deadlines one sweep handles, so a sweep after a long outage does not make one huge
/// transaction; the next sweep continues.
pub(crate) const SWEEP_LIMIT: usize = 10_000;
/// Attempts at drawing a code that no active code at the station already hashes to.
const CODE_DRAWS: usize = 16;

fn missing(table: &'static str, id: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: format!("{id:?} is referenced but missing"),
    }
}

impl Writer {
    /// The first candidate station with a free compartment of `size` or the next larger size.
    pub(crate) fn find_free(
        &self,
        candidates: &[StationId],
        size: Size,
    ) -> Option<(StationId, CompartmentId, Size)> {
        candidates.iter().find_map(|id| {
            let station: &StationIndex = self.index.stations.get(id)?;
            if station.record.status != StationStatus::Active {
                return None;
            }
            size.and_larger().find_map(|s| {
                let free = station.free[s.index()].first()?;
                Some((id.clone(), free.clone(), s))
            })
        })
    }

    pub(super) fn held_reservation(
        &self,
        tx: &Tx<'_>,
        id: &ReservationId,
    ) -> Result<Reservation, ChangeError> {
        let reservation = RESERVATIONS_V1
            .get(&tx.reservations, id.as_str())?
            .ok_or_else(|| ChangeError::NotFound {
                kind: "reservation",
                id: id.to_string(),
            })?;
        match reservation.status {
            ReservationStatus::Held => Ok(reservation),
            other => Err(conflict("reservation", id.as_str(), other)),
        }
    }

    /// Ends a held reservation without a deposit (`Cancel` or `HoldExpired`).
    pub(crate) fn end_hold(
        &mut self,
        tx: &mut Tx<'_>,
        mut reservation: Reservation,
        event: CompartmentEvent,
        actor: Actor,
    ) -> Result<Reservation, ChangeError> {
        let ended = match event {
            CompartmentEvent::HoldExpired => ReservationEvent::HoldExpired,
            _ => ReservationEvent::Released,
        };
        let ended = moved(&reservation, ended)?;
        self.move_compartment(tx, &reservation.compartment_id, event, None)?;
        self.index
            .hold_deadlines
            .remove(&(reservation.hold_until, reservation.id.clone()));
        reservation.status = ended;
        RESERVATIONS_V1.put(&mut tx.reservations, reservation.id.as_str(), &reservation)?;
        let mut parcel = self.parcel(tx, &reservation.parcel_id)?;
        parcel.status = advance(&parcel, ParcelEvent::HoldEnded)?;
        parcel.cancelled_at = Some(tx.now);
        tx.put_parcel(&parcel)?;
        let action = match event {
            CompartmentEvent::HoldExpired => "hold_expired",
            _ => "release",
        };
        self.log(tx, Draft::new(actor, action, reservation.id.as_str(), "ok"))?;
        Ok(reservation)
    }

    /// A fresh code whose hash no active code at `station` has.
    pub(super) fn draw_code(
        &self,
        tx: &Tx<'_>,
        station: &StationId,
    ) -> Result<(PickupCode, String), ChangeError> {
        for _ in 0..CODE_DRAWS {
            let code = PickupCode::generate();
            let hash = self.hash_code(station, &code).to_hex();
            // A pickup code and a drop-off code never share a hash: one code, one meaning.
            if CODES_V1.get(&tx.codes, hash.as_str())?.is_none()
                && super::tables::RETURN_CODES_V1
                    .get(&tx.return_codes, hash.as_str())?
                    .is_none()
            {
                return Ok((code, hash));
            }
        }
        Err(conflict("station", station.as_str(), "out of codes"))
    }

    /// The active code at `station` with this keyed hash, if it has not expired.
    pub(super) fn active_code(
        &self,
        tx: &Tx<'_>,
        station: &StationId,
        hash: &str,
    ) -> Result<Option<CodeRecord>, StoreError> {
        Ok(CODES_V1
            .get(&tx.codes, hash)?
            .filter(|c| &c.station_id == station && c.expires_at > tx.now))
    }

    /// Spends the code with keyed hash `hash`: its parcel is picked up and its compartment
    /// becomes available.
    pub(super) fn pick_up(
        &mut self,
        tx: &mut Tx<'_>,
        hash: &str,
        parcel_id: &ParcelId,
        actor: Actor,
        decided_by: Option<DecidedBy>,
    ) -> Result<Pickup, ChangeError> {
        let mut parcel = self.parcel(tx, parcel_id)?;
        let picked = advance(&parcel, ParcelEvent::PickedUp)?;
        self.move_compartment(
            tx,
            &parcel.compartment_id,
            CompartmentEvent::PickupConfirmed,
            None,
        )?;
        tx.remove_code(hash)?;
        if let Some(current) = parcel.code_hash.as_deref().filter(|c| *c != hash) {
            tx.remove_code(current)?;
        }
        if let Some(deadline) = parcel.pickup_expires_at {
            self.index
                .pickup_deadlines
                .remove(&(deadline, parcel.id.clone()));
        }
        parcel.status = picked;
        parcel.picked_up_at = Some(tx.now);
        parcel.code_hash = None;
        tx.put_parcel(&parcel)?;
        self.tell_parcel_merchant(tx, &parcel, NotificationEvent::PickedUp)?;
        self.complete_reservation(tx, &parcel.reservation_id)?;
        self.log(
            tx,
            Draft::new(actor, "pickup", parcel.id.as_str(), "ok").decided_by(decided_by),
        )?;
        Ok(Pickup { parcel })
    }

    pub(crate) fn complete_reservation(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ReservationId,
    ) -> Result<(), StoreError> {
        let mut reservation = RESERVATIONS_V1
            .get(&tx.reservations, id.as_str())?
            .ok_or_else(|| missing("reservations_v1", id.as_str()))?;
        // A parcel leaving its compartment has a deposited reservation; anything else means the
        // tables disagree.
        reservation.status = reservation
            .status
            .apply(ReservationEvent::Completed)
            .map_err(|e| StoreError::Corrupt {
                table: "reservations_v1",
                detail: format!("{id}: {e}"),
            })?;
        RESERVATIONS_V1.put(&mut tx.reservations, id.as_str(), &reservation)
    }

    /// Closes a stored parcel's pickup window: its code stops working, and the compartment stays
    /// occupied until a carrier collects the parcel.
    pub(crate) fn expire_parcel(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ParcelId,
    ) -> Result<(), StoreError> {
        let mut parcel = self.parcel(tx, id).map_err(into_store)?;
        let Ok(expired) = parcel.status.advance(ParcelEvent::WindowClosed) else {
            return Ok(());
        };
        if let Some(hash) = parcel.code_hash.take() {
            tx.remove_code(hash.as_str())?;
        }
        parcel.status = expired;
        parcel.expired_at = Some(tx.now);
        tx.put_parcel(&parcel)?;
        self.notify(
            tx,
            Notice {
                about: About::Parcel(parcel.id.clone()),
                station: &parcel.station_id,
                recipient: parcel.recipient.as_ref(),
                event: NotificationEvent::Expired,
                due_at: tx.now,
                code: None,
                after: None,
            },
        )?;
        self.tell_parcel_merchant(tx, &parcel, NotificationEvent::Expired)?;
        self.log(
            tx,
            Draft::new(Actor::system(), "pickup_window_closed", id.as_str(), "ok"),
        )
    }

    /// A parcel a caller named; `NotFound` if there is none.
    pub(crate) fn requested_parcel(
        &self,
        tx: &Tx<'_>,
        id: &ParcelId,
    ) -> Result<Parcel, ChangeError> {
        PARCELS_V1
            .get(&tx.parcels, id.as_str())?
            .ok_or_else(|| ChangeError::NotFound {
                kind: "parcel",
                id: id.to_string(),
            })
    }

    pub(super) fn parcel(&self, tx: &Tx<'_>, id: &ParcelId) -> Result<Parcel, ChangeError> {
        Ok(PARCELS_V1
            .get(&tx.parcels, id.as_str())?
            .ok_or_else(|| missing("parcels_v1", id.as_str()))?)
    }

    /// Moves one compartment through the state machine, writes it, and keeps the index, the
    /// dirty set and the commit report in step.
    pub(super) fn move_compartment(
        &mut self,
        tx: &mut Tx<'_>,
        id: &CompartmentId,
        event: CompartmentEvent,
        holder: Option<ReservationId>,
    ) -> Result<CompartmentRecord, ChangeError> {
        let key = compartment_key(id);
        let mut c = COMPARTMENTS_V1
            .get(&tx.compartments, key.as_str())?
            .ok_or_else(|| missing("compartments_v1", id.as_str()))?;
        let from = c.state;
        c.state = apply(from, event).map_err(|e| conflict("compartment", id.as_str(), e.from))?;
        c.version += 1;
        c.reservation = holder;
        COMPARTMENTS_V1.put(&mut tx.compartments, key.as_str(), &c)?;
        if let Some(station) = self.index.stations.get_mut(&c.station) {
            station.track(&c, Some(from));
        }
        tx.dirty.insert(c.station.clone());
        tx.changes.push(CompartmentChange {
            compartment: c.id.clone(),
            from,
            to: c.state,
            reservation: c.reservation.clone(),
        });
        // A compartment whose latch is due for maintenance goes there the moment it is empty.
        if c.state == CompartmentState::Available
            && event != CompartmentEvent::BackInService
            && let Some(maintained) = self.maintain_if_empty(tx, id)?
        {
            return Ok(maintained);
        }
        Ok(c)
    }
}

/// The status `reservation` moves to on `event`; an illegal move is a conflict.
pub(crate) fn moved(
    reservation: &Reservation,
    event: ReservationEvent,
) -> Result<ReservationStatus, ChangeError> {
    reservation
        .status
        .apply(event)
        .map_err(|e| conflict("reservation", reservation.id.as_str(), e.from))
}

pub(crate) fn advance(parcel: &Parcel, event: ParcelEvent) -> Result<ParcelStatus, ChangeError> {
    parcel
        .status
        .advance(event)
        .map_err(|e| conflict("parcel", parcel.id.as_str(), e.from))
}

pub(crate) fn corrupt_id(e: lockergrid_protocol::ids::InvalidId) -> StoreError {
    StoreError::Corrupt {
        table: "ids",
        detail: e.to_string(),
    }
}

/// A refusal of a move the index said was legal means the index and the tables disagree; it is
/// treated as corruption, which fails the batch and reloads the index from the tables.
pub(crate) fn into_store(e: ChangeError) -> StoreError {
    match e {
        ChangeError::Store(e) => e,
        other => StoreError::Corrupt {
            table: "compartments_v1",
            detail: format!("index and tables disagree: {other}"),
        },
    }
}
