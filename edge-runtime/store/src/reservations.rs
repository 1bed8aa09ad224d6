//! Reservations and their parcels: holding a compartment, releasing it, the deposit and its
//! pickup code, the pickup, a carrier's collection after expiry, and the expiry sweep. Like every
//! writer operation, each checks everything that can refuse it before its first write, so a
//! refused operation leaves no trace but its access-log entry; after the first write only a
//! storage error can stop it, and that aborts the whole batch.

use super::access_log::Draft;
use super::index::StationIndex;
use super::tables::{
    CODES_V1, COMPARTMENTS_V1, IDEMPOTENCY_V1, PARCELS_V1, RESERVATIONS_V1, compartment_key,
};
use super::writer::{Tx, Writer};
use super::{
    ChangeError, CompartmentChange, Deposit, ExpiryReport, Pickup, ReserveError, ReserveRequest,
    Reserved, StoreError, Target, conflict, new_id,
};
use lockergrid_model::NotificationEvent;
use lockergrid_model::{
    Actor, CodeRecord, CompartmentRecord, DecidedBy, IdempotencyRecord, Parcel, Reservation,
    ReservationEvent, ReservationStatus, StationStatus,
};
use lockergrid_protocol::compartment::apply;
use lockergrid_protocol::{
    CompartmentEvent, CompartmentId, ParcelEvent, ParcelId, ParcelStatus, PickupCode,
    ReservationId, Size, StationId,
};
use std::time::Duration;

/// How long an idempotency key is remembered.
const KEY_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Most deadlines one sweep handles, so a sweep after a long outage does not make one huge
/// transaction; the next sweep continues.
const SWEEP_LIMIT: usize = 10_000;
/// Attempts at drawing a code that no active code at the station already hashes to.
const CODE_DRAWS: usize = 16;

fn missing(table: &'static str, id: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        detail: format!("{id:?} is referenced but missing"),
    }
}

impl Writer {
    pub(super) fn reserve(
        &mut self,
        tx: &mut Tx<'_>,
        request: ReserveRequest,
        size: Size,
    ) -> Result<Reserved, ReserveError> {
        if let Some(key) = &request.idempotency
            && let Some(seen) = IDEMPOTENCY_V1.get(&tx.keys, key.key.as_str())?
        {
            return if seen.fingerprint == key.fingerprint {
                Ok(Reserved {
                    reservation: seen.answer,
                    replayed: true,
                })
            } else {
                Err(ReserveError::IdempotencyMismatch)
            };
        }
        let candidates = match &request.target {
            Target::Station(id) => {
                let station = self
                    .index
                    .stations
                    .get(id)
                    .ok_or_else(|| ReserveError::UnknownStation(id.clone()))?;
                if station.record.status != StationStatus::Active {
                    return Err(ReserveError::StationInactive(id.clone()));
                }
                std::slice::from_ref(id)
            }
            Target::Ranked(ids) => ids.as_slice(),
        };
        let (station, compartment, got) = self
            .find_free(candidates, size)
            .ok_or(ReserveError::NoCapacity(size))?;
        let id = ReservationId::new(new_id("rsv")).map_err(corrupt_id)?;
        let parcel_id = ParcelId::new(new_id("pcl")).map_err(corrupt_id)?;
        self.move_compartment(
            tx,
            &compartment,
            CompartmentEvent::Reserve,
            Some(id.clone()),
        )
        .map_err(|e| ReserveError::Store(into_store(e)))?;
        let reservation = Reservation {
            id: id.clone(),
            order_id: request.order_id.clone(),
            parcel_id: parcel_id.clone(),
            station_id: station,
            compartment_id: compartment,
            size: got,
            tier: request.tier,
            created_at: tx.now,
            hold_until: tx.now.plus(request.hold),
            status: ReservationStatus::Held,
        };
        let parcel = Parcel {
            id: parcel_id,
            reservation_id: id.clone(),
            order_id: request.order_id,
            station_id: reservation.station_id.clone(),
            compartment_id: reservation.compartment_id.clone(),
            spec: request.parcel,
            tier: request.tier,
            status: ParcelStatus::Reserved,
            reserved_at: tx.now,
            stored_at: None,
            pickup_expires_at: None,
            picked_up_at: None,
            expired_at: None,
            collected_at: None,
            cancelled_at: None,
            code_hash: None,
            recipient: request.recipient,
        };
        RESERVATIONS_V1.put(&mut tx.reservations, id.as_str(), &reservation)?;
        PARCELS_V1.put(&mut tx.parcels, parcel.id.as_str(), &parcel)?;
        if let Some(key) = request.idempotency {
            let seen = IdempotencyRecord {
                fingerprint: key.fingerprint,
                answer: reservation.clone(),
                created_at: tx.now,
            };
            IDEMPOTENCY_V1.put(&mut tx.keys, key.key.as_str(), &seen)?;
            self.index.key_deadlines.insert((tx.now, key.key));
        }
        self.index
            .hold_deadlines
            .insert((reservation.hold_until, id.clone()));
        self.log(
            tx,
            Draft::new(request.actor, "reserve", id.as_str(), "ok").decided_by(request.decided_by),
        )?;
        Ok(Reserved {
            reservation,
            replayed: false,
        })
    }

    /// The first candidate station with a free compartment of `size` or the next larger size.
    fn find_free(
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

    pub(super) fn release(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ReservationId,
        actor: Actor,
    ) -> Result<Reservation, ChangeError> {
        let reservation = self.held_reservation(tx, id)?;
        self.end_hold(tx, reservation, CompartmentEvent::Cancel, actor)
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
    fn end_hold(
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
        PARCELS_V1.put(&mut tx.parcels, parcel.id.as_str(), &parcel)?;
        let action = match event {
            CompartmentEvent::HoldExpired => "hold_expired",
            _ => "release",
        };
        self.log(tx, Draft::new(actor, action, reservation.id.as_str(), "ok"))?;
        Ok(reservation)
    }

    pub(super) fn deposit(
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
        PARCELS_V1.put(&mut tx.parcels, parcel.id.as_str(), &parcel)?;
        let record = CodeRecord {
            parcel_id: parcel.id.clone(),
            station_id: reservation.station_id.clone(),
            expires_at,
        };
        CODES_V1.put(&mut tx.codes, hash.as_str(), &record)?;
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
        self.notify(tx, &parcel, NotificationEvent::ParcelStored, tx.now)?;
        Ok(Deposit { parcel, code })
    }

    /// Replaces a stored parcel's pickup code with a fresh one (the old one stops working).
    pub(super) fn reissue_code(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ParcelId,
        actor: Actor,
    ) -> Result<Deposit, ChangeError> {
        let mut parcel = self.requested_parcel(tx, id)?;
        let (Some(expires_at), ParcelStatus::Stored) = (parcel.pickup_expires_at, parcel.status)
        else {
            return Err(conflict("parcel", id.as_str(), parcel.status));
        };
        let (code, hash) = self.draw_code(tx, &parcel.station_id)?;
        if let Some(old) = &parcel.code_hash {
            tx.codes.remove(old.as_str()).map_err(StoreError::from)?;
        }
        let record = CodeRecord {
            parcel_id: parcel.id.clone(),
            station_id: parcel.station_id.clone(),
            expires_at,
        };
        CODES_V1.put(&mut tx.codes, hash.as_str(), &record)?;
        parcel.code_hash = Some(hash);
        PARCELS_V1.put(&mut tx.parcels, id.as_str(), &parcel)?;
        self.log(tx, Draft::new(actor, "code_reissued", id.as_str(), "ok"))?;
        Ok(Deposit { parcel, code })
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
        tx.codes.remove(hash).map_err(StoreError::from)?;
        if let Some(current) = parcel.code_hash.as_deref().filter(|c| *c != hash) {
            tx.codes.remove(current).map_err(StoreError::from)?;
        }
        if let Some(deadline) = parcel.pickup_expires_at {
            self.index
                .pickup_deadlines
                .remove(&(deadline, parcel.id.clone()));
        }
        parcel.status = picked;
        parcel.picked_up_at = Some(tx.now);
        parcel.code_hash = None;
        PARCELS_V1.put(&mut tx.parcels, parcel.id.as_str(), &parcel)?;
        self.complete_reservation(tx, &parcel.reservation_id)?;
        self.log(
            tx,
            Draft::new(actor, "pickup", parcel.id.as_str(), "ok").decided_by(decided_by),
        )?;
        Ok(Pickup { parcel })
    }

    pub(super) fn collect(
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

    fn complete_reservation(
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

    pub(super) fn expire_due(&mut self, tx: &mut Tx<'_>) -> Result<ExpiryReport, StoreError> {
        let mut report = ExpiryReport::default();
        while let Some((due, id)) = self.index.hold_deadlines.first().cloned() {
            if due > tx.now || report.holds_expired as usize >= SWEEP_LIMIT {
                break;
            }
            self.index.hold_deadlines.remove(&(due, id.clone()));
            match self.held_reservation(tx, &id) {
                Ok(reservation) => {
                    self.end_hold(
                        tx,
                        reservation,
                        CompartmentEvent::HoldExpired,
                        Actor::system(),
                    )
                    .map_err(into_store)?;
                    report.holds_expired += 1;
                }
                Err(ChangeError::Store(e)) => return Err(e),
                Err(_) => {}
            }
        }
        while let Some((due, id)) = self.index.pickup_deadlines.first().cloned() {
            if due > tx.now || report.parcels_expired as usize >= SWEEP_LIMIT {
                break;
            }
            self.index.pickup_deadlines.remove(&(due, id.clone()));
            self.expire_parcel(tx, &id)?;
            report.parcels_expired += 1;
        }
        while let Some((created, key)) = self.index.key_deadlines.first().cloned() {
            if created.plus(KEY_LIFETIME) > tx.now || report.keys_forgotten as usize >= SWEEP_LIMIT
            {
                break;
            }
            self.index.key_deadlines.remove(&(created, key.clone()));
            tx.keys.remove(key.as_str())?;
            report.keys_forgotten += 1;
        }
        Ok(report)
    }

    /// Closes a stored parcel's pickup window: its code stops working, and the compartment stays
    /// occupied until a carrier collects the parcel.
    fn expire_parcel(&mut self, tx: &mut Tx<'_>, id: &ParcelId) -> Result<(), StoreError> {
        let mut parcel = self.parcel(tx, id).map_err(into_store)?;
        let Ok(expired) = parcel.status.advance(ParcelEvent::WindowClosed) else {
            return Ok(());
        };
        if let Some(hash) = parcel.code_hash.take() {
            tx.codes.remove(hash.as_str())?;
        }
        parcel.status = expired;
        parcel.expired_at = Some(tx.now);
        PARCELS_V1.put(&mut tx.parcels, id.as_str(), &parcel)?;
        self.notify(tx, &parcel, NotificationEvent::Expired, tx.now)?;
        self.log(
            tx,
            Draft::new(Actor::system(), "pickup_window_closed", id.as_str(), "ok"),
        )
    }

    /// A parcel a caller named; `NotFound` if there is none.
    fn requested_parcel(&self, tx: &Tx<'_>, id: &ParcelId) -> Result<Parcel, ChangeError> {
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
        Ok(c)
    }
}

/// The status `reservation` moves to on `event`; an illegal move is a conflict.
fn moved(
    reservation: &Reservation,
    event: ReservationEvent,
) -> Result<ReservationStatus, ChangeError> {
    reservation
        .status
        .apply(event)
        .map_err(|e| conflict("reservation", reservation.id.as_str(), e.from))
}

pub(super) fn advance(parcel: &Parcel, event: ParcelEvent) -> Result<ParcelStatus, ChangeError> {
    parcel
        .status
        .advance(event)
        .map_err(|e| conflict("parcel", parcel.id.as_str(), e.from))
}

fn corrupt_id(e: lockergrid_protocol::ids::InvalidId) -> StoreError {
    StoreError::Corrupt {
        table: "ids",
        detail: e.to_string(),
    }
}

/// A refusal of a move the index said was legal means the index and the tables disagree; it is
/// treated as corruption, which fails the batch and reloads the index from the tables.
fn into_store(e: ChangeError) -> StoreError {
    match e {
        ChangeError::Store(e) => e,
        other => StoreError::Corrupt {
            table: "compartments_v1",
            detail: format!("index and tables disagree: {other}"),
        },
    }
}
