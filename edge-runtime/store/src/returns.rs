//! Returns (DESIGN.md §1 flow 5, §2): a return authorisation with a drop-off code for one
//! station; the code entered at that station's locker holds the smallest free compartment the
//! parcel fits and unlocks it, and the door closing makes it `return_pending`; a carrier's
//! unlock and the door closing again make it `available`. Each step is one writer transaction.

use super::access_log::Draft;
use super::outbox::Notice;
use super::tables::{LEASES_V1, RETURN_CODES_V1, RETURNS_V1, STATION_RECORDS_V1};
use super::writer::{Tx, Writer};
use super::{ChangeError, PickupUnlock, Store, StoreError, tables};
use lockergrid_model::{About, Decision, NotificationEvent};
use lockergrid_model::{
    Actor, CommandRecord, CommandStatus, DecidedBy, LeaseRecord, ReturnEvent, ReturnRecord,
    ReturnStatus, UnlockFor,
};
use lockergrid_protocol::{
    CompartmentEvent, CompartmentId, CompartmentState, OrderId, ParcelSpec, PickupCode, ReturnId,
    Size, StationId, Timestamp,
};
use redb::ReadableDatabase;
use std::time::Duration;

/// By when the door of a drop-off opened at `opened` must have closed: the longest an unlock is
/// valid, then [`crate::DOOR_GRACE`]. A drop-off still open then is abandoned and its
/// compartment given back ([`Writer::drop_off_timed_out`]).
pub(crate) fn door_deadline(opened: Timestamp) -> Timestamp {
    opened.plus(lockergrid_protocol::command::MAX_LIFETIME + crate::DOOR_GRACE)
}

/// A return to authorise.
#[derive(Debug, Clone)]
pub struct ReturnRequest {
    /// The checkout service's order.
    pub order_id: OrderId,
    /// Where it will be dropped off.
    pub station: StationId,
    /// The parcel.
    pub spec: ParcelSpec,
    /// The smallest size it fits (checked by the caller against the parcel limits).
    pub size: Size,
    /// How long the drop-off code is valid.
    pub valid: Duration,
    /// Who asked.
    pub actor: Actor,
    /// Who hears about it.
    pub recipient: Option<lockergrid_model::NotifyRecipient>,
    /// A retry with the same key and request answers the same return, with no new code.
    pub idempotency: Option<crate::IdempotencyKey>,
}

/// A door closing on a return after its drop-off unlock.
pub(super) struct DropOff {
    pub return_id: ReturnId,
    pub code_hash: String,
    pub compartment: CompartmentId,
    pub actor: Actor,
    pub decided_by: Option<DecidedBy>,
    /// The unlock command.
    pub command: String,
    /// The door-closed event.
    pub event: String,
}

/// A return authorised, with its drop-off code (shown once, stored only as its keyed hash).
#[derive(Debug, Clone)]
pub struct AuthorizedReturn {
    /// The authorisation.
    pub record: ReturnRecord,
    /// The drop-off code, when this request authorised it (not on a replay).
    pub code: Option<PickupCode>,
}

pub(crate) fn not_found(id: &ReturnId) -> ChangeError {
    ChangeError::NotFound {
        kind: "return",
        id: id.to_string(),
    }
}

pub(crate) fn in_status(record: &ReturnRecord) -> ChangeError {
    super::conflict("return", record.id.as_str(), record.status)
}

/// The status `record` moves to on `event`; an illegal move is a conflict naming its status.
pub(crate) fn moved(
    record: &ReturnRecord,
    event: ReturnEvent,
) -> Result<ReturnStatus, ChangeError> {
    record.status.apply(event).map_err(|_| in_status(record))
}

impl Store {
    /// One return authorisation by id.
    pub fn return_record(&self, id: &ReturnId) -> Result<Option<ReturnRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(RETURNS_V1.def())?;
        RETURNS_V1.get(&table, id.as_str())
    }

    /// The returns waiting at `station` for a carrier, oldest first.
    pub fn station_returns(&self, station: &StationId) -> Result<Vec<ReturnRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let index = rx.open_table(STATION_RECORDS_V1.def())?;
        let returns = rx.open_table(RETURNS_V1.def())?;
        super::station_index::waiting_returns(&index, &returns, station)
    }

    /// The return whose unexpired drop-off code `code` is at `station`, and the compartment it
    /// would open now (the smallest free one it fits), if any.
    pub fn return_for_code(
        &self,
        station: &StationId,
        code: &crate::EnteredCode,
    ) -> Result<Option<(ReturnRecord, Option<CompartmentId>)>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let hash = self.code_hash(station, code);
        let codes = rx.open_table(RETURN_CODES_V1.def())?;
        let Some(id) = RETURN_CODES_V1.get(&codes, hash.as_str())? else {
            return Ok(None);
        };
        let returns = rx.open_table(RETURNS_V1.def())?;
        let Some(record) = RETURNS_V1
            .get(&returns, id.as_str())?
            .filter(|r| usable(r, station, self.now()))
        else {
            return Ok(None);
        };
        let compartments = rx.open_table(tables::COMPARTMENTS_V1.def())?;
        if self.inner.edge {
            let leases = rx.open_table(LEASES_V1.def())?;
            let compartment = match LEASES_V1.get(&leases, station.as_str())? {
                Some(lease) => from_lease(&lease, &compartments, record.size)?,
                None => None,
            };
            return Ok(Some((record, compartment)));
        }
        // The one a hold takes first, as the writer's index named it at the last commit.
        let compartment = self
            .snapshot()
            .station(station)
            .and_then(|view| view.first_free_fitting(record.size).cloned());
        Ok(Some((record, compartment)))
    }
}

/// The compartment of an edge node's lease that a return of `size` would be dropped off in: the
/// smallest that fits, leased, held and not opened for another drop-off.
fn from_lease(
    lease: &LeaseRecord,
    compartments: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    size: Size,
) -> Result<Option<CompartmentId>, StoreError> {
    let mut best: Option<(Size, CompartmentId)> = None;
    for id in &lease.compartments {
        if lease.used.contains_key(id) {
            continue;
        }
        let key = tables::compartment_key(id);
        let Some(c) = tables::COMPARTMENTS_V1.get(compartments, key.as_str())? else {
            continue;
        };
        if c.state == CompartmentState::Reserved
            && c.reservation.is_none()
            && c.size >= size
            && best.as_ref().is_none_or(|(s, b)| (c.size, &c.id) < (*s, b))
        {
            best = Some((c.size, c.id));
        }
    }
    Ok(best.map(|(_, id)| id))
}

/// Whether a return's drop-off code opens something at `station` now.
fn usable(r: &ReturnRecord, station: &StationId, now: lockergrid_protocol::Timestamp) -> bool {
    &r.station_id == station && r.status == ReturnStatus::Authorized && r.expires_at > now
}

impl Writer {
    /// A code that is no active pickup code may be a drop-off code: the smallest free
    /// compartment the return fits is held for it and unlocked. `None` when it is no drop-off
    /// code either.
    pub(super) fn unlock_for_drop_off(
        &mut self,
        tx: &mut Tx<'_>,
        request: &PickupUnlock,
        hash: &str,
    ) -> Result<Option<CommandRecord>, ChangeError> {
        let Some(id) = RETURN_CODES_V1.get(&tx.return_codes, hash)? else {
            return Ok(None);
        };
        let Some(mut record) = RETURNS_V1
            .get(&tx.returns, id.as_str())?
            .filter(|r| usable(r, &request.station, tx.now))
        else {
            return Ok(None);
        };
        let opened = moved(&record, ReturnEvent::Opened)?;
        // An edge node opens a compartment of its lease (already held for it); the gateway holds
        // a free one.
        let lease = match self.edge {
            true => LEASES_V1.get(&tx.leases, request.station.as_str())?,
            false => None,
        };
        let free = match &lease {
            Some(lease) => from_lease(lease, &tx.compartments, record.size)?,
            None if self.edge => None,
            None => self.index.stations.get(&request.station).and_then(|s| {
                record
                    .size
                    .and_larger()
                    .find_map(|size| s.free[size.index()].first().cloned())
            }),
        };
        let Some(compartment) = free else {
            return Err(ChangeError::Conflict {
                kind: "station",
                id: request.station.to_string(),
                status: format!(
                    "without a free compartment of size {} or larger",
                    record.size
                ),
            });
        };
        match lease {
            Some(mut lease) => {
                lease.used.insert(compartment.clone(), record.id.clone());
                LEASES_V1.put(&mut tx.leases, request.station.as_str(), &lease)?;
            }
            None => {
                self.move_compartment(tx, &compartment, CompartmentEvent::Reserve, None)?;
            }
        }
        let command = self.issue(
            tx,
            super::commands::Issue {
                station: &request.station,
                compartment: &compartment,
                unlock_for: UnlockFor::ReturnDropOff {
                    return_id: record.id.clone(),
                    code_hash: hash.to_owned(),
                },
                actor: &request.actor,
                decided_by: &request.decided_by,
                valid: request.valid,
            },
        )?;
        record.status = opened;
        record.compartment_id = Some(compartment.clone());
        record.opened_at = Some(tx.now);
        tx.put_return(&record)?;
        self.index
            .drop_off_deadlines
            .insert((door_deadline(tx.now), record.id.clone()));
        let outcome = format!("return drop-off: command {} to {compartment}", command.id);
        self.log(
            tx,
            Draft::new(
                request.actor.clone(),
                "unlock",
                record.id.as_str(),
                &outcome,
            )
            .decided_by(request.decided_by.clone()),
        )?;
        Ok(Some(command))
    }

    /// The door closed after a drop-off unlock: the return is in its compartment, which waits
    /// for a carrier (`return_pending`); the code is spent.
    pub(super) fn dropped_off(
        &mut self,
        tx: &mut Tx<'_>,
        drop: DropOff,
    ) -> Result<ReturnRecord, ChangeError> {
        let id = &drop.return_id;
        let mut record = RETURNS_V1
            .get(&tx.returns, id.as_str())?
            .ok_or_else(|| not_found(id))?;
        let dropped = moved(&record, ReturnEvent::DroppedOff)?;
        let compartment = drop.compartment;
        self.move_compartment(
            tx,
            &compartment,
            CompartmentEvent::ReturnDropOffConfirmed,
            None,
        )?;
        tx.return_codes
            .remove(drop.code_hash.as_str())
            .map_err(StoreError::from)?;
        // Out of the lease it came from, if it did.
        let mut lease_epoch = 0;
        if let Some(mut lease) = LEASES_V1.get(&tx.leases, record.station_id.as_str())?
            && (lease.compartments.contains(&compartment)
                || lease.revoking.contains_key(&compartment))
        {
            lease_epoch = lease.epoch;
            lease.compartments.remove(&compartment);
            lease.revoking.remove(&compartment);
            lease.used.remove(&compartment);
            LEASES_V1.put(&mut tx.leases, record.station_id.as_str(), &lease)?;
        }
        record.status = dropped;
        record.compartment_id = Some(compartment.clone());
        record.dropped_off_at = Some(tx.now);
        record.code_hash = None;
        tx.put_return(&record)?;
        self.announce_return(tx, &record, NotificationEvent::ReturnReceived)?;
        let outcome = format!("in {compartment}");
        self.log(
            tx,
            Draft::new(drop.actor, "return_dropoff", id.as_str(), &outcome)
                .decided_by(drop.decided_by.clone()),
        )?;
        self.decided(
            tx,
            Decision::ReturnDroppedOff {
                station: record.station_id.clone(),
                return_id: id.clone(),
                compartment,
                code_hash: drop.code_hash,
                lease_epoch,
                command: drop.command,
                event: drop.event,
                decided_by: drop.decided_by,
            },
        )?;
        Ok(record)
    }

    /// Tells the return's customer and its merchant's integration what happened to it.
    fn announce_return(
        &mut self,
        tx: &mut Tx<'_>,
        record: &ReturnRecord,
        event: NotificationEvent,
    ) -> Result<(), StoreError> {
        self.notify(
            tx,
            Notice {
                about: About::Return(record.id.clone()),
                station: &record.station_id,
                recipient: record.recipient.as_ref(),
                event,
                due_at: tx.now,
                code: None,
                after: None,
            },
        )?;
        self.tell_merchant(
            tx,
            record.merchant.as_deref(),
            About::Return(record.id.clone()),
            &record.station_id,
            event,
        )
    }

    /// The door closed after a carrier's unlock: the return is collected and the compartment
    /// free again.
    pub(super) fn collected_return(
        &mut self,
        tx: &mut Tx<'_>,
        command: &CommandRecord,
        id: &ReturnId,
    ) -> Result<ReturnRecord, ChangeError> {
        let mut record = RETURNS_V1
            .get(&tx.returns, id.as_str())?
            .ok_or_else(|| not_found(id))?;
        let collected = moved(&record, ReturnEvent::Collected)?;
        self.move_compartment(
            tx,
            &command.compartment_id,
            CompartmentEvent::CarrierCollected,
            None,
        )?;
        record.status = collected;
        record.collected_at = Some(tx.now);
        tx.put_return(&record)?;
        self.announce_return(tx, &record, NotificationEvent::ReturnCollected)?;
        self.log(
            tx,
            Draft::new(command.actor.clone(), "return_collected", id.as_str(), "ok")
                .decided_by(command.decided_by.clone()),
        )?;
        Ok(record)
    }

    /// A drop-off whose door never reported closing by its deadline (the unlock ran, the
    /// door-closed event never came): the return goes back to authorised, its code opens a
    /// compartment again, and the compartment held for it is free (or back in the edge node's
    /// lease). `false` if it was no longer waiting.
    pub(crate) fn drop_off_timed_out(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ReturnId,
    ) -> Result<bool, StoreError> {
        let Some(mut record) = RETURNS_V1.get(&tx.returns, id.as_str())? else {
            return Ok(false);
        };
        let (Ok(abandoned), Some(compartment)) = (
            record.status.apply(ReturnEvent::Abandoned),
            record.compartment_id.clone(),
        ) else {
            return Ok(false);
        };
        self.give_back_drop_off(tx, &record, &compartment)?;
        record.status = abandoned;
        record.compartment_id = None;
        tx.put_return(&record)?;
        let outcome = format!(
            "the door of {compartment} never reported closing; the code opens a compartment again"
        );
        self.log(
            tx,
            Draft::new(Actor::system(), "return_dropoff", id.as_str(), &outcome),
        )?;
        Ok(true)
    }

    /// A return whose drop-off window closed: still authorised, it expires and its code row is
    /// removed, so the code is gone from the store and from the edge nodes' mirrors. One whose
    /// door is open at that moment is looked at again once that door's deadline passed; `true`
    /// when it expired.
    pub(crate) fn return_window_closed(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ReturnId,
    ) -> Result<bool, StoreError> {
        let Some(mut record) = RETURNS_V1.get(&tx.returns, id.as_str())? else {
            return Ok(false);
        };
        if record.status == ReturnStatus::DroppingOff {
            let opened = record.opened_at.unwrap_or(record.created_at);
            let again = door_deadline(opened)
                .max(tx.now)
                .plus(std::time::Duration::from_millis(1));
            self.index.return_deadlines.insert((again, id.clone()));
            return Ok(false);
        }
        let Ok(expired) = record.status.apply(ReturnEvent::Expired) else {
            return Ok(false);
        };
        if let Some(hash) = record.code_hash.take() {
            tx.return_codes.remove(hash.as_str())?;
        }
        record.status = expired;
        tx.put_return(&record)?;
        tx.dirty.insert(record.station_id.clone());
        self.log(
            tx,
            Draft::new(
                Actor::system(),
                "return_expired",
                id.as_str(),
                "not dropped off in time; its code no longer opens anything",
            ),
        )?;
        Ok(true)
    }

    /// Frees the compartment held for `record`'s drop-off, or puts it back in the edge node's
    /// lease.
    fn give_back_drop_off(
        &mut self,
        tx: &mut Tx<'_>,
        record: &ReturnRecord,
        compartment: &CompartmentId,
    ) -> Result<(), StoreError> {
        let key = tables::compartment_key(compartment);
        let held = tables::COMPARTMENTS_V1
            .get(&tx.compartments, key.as_str())?
            .is_some_and(|c| c.state == CompartmentState::Reserved && c.reservation.is_none());
        let lease = match self.edge {
            true => LEASES_V1.get(&tx.leases, record.station_id.as_str())?,
            false => None,
        };
        if let Some(mut lease) = lease {
            // An edge node's compartment stays in its lease, ready for the next drop-off.
            lease.used.remove(compartment);
            LEASES_V1.put(&mut tx.leases, record.station_id.as_str(), &lease)?;
        } else if held {
            self.move_compartment(tx, compartment, CompartmentEvent::Cancel, None)
                .map_err(|e| match e {
                    ChangeError::Store(e) => e,
                    other => StoreError::Corrupt {
                        table: "compartments_v1",
                        detail: other.to_string(),
                    },
                })?;
        }
        Ok(())
    }

    /// A drop-off unlock that did not happen (refused, failed, expired): the compartment held
    /// for it is free again and the code opens another one next time.
    pub(super) fn drop_off_abandoned(
        &mut self,
        tx: &mut Tx<'_>,
        command: &CommandRecord,
    ) -> Result<(), StoreError> {
        let UnlockFor::ReturnDropOff { return_id, .. } = &command.unlock_for else {
            return Ok(());
        };
        if command.status == CommandStatus::Executed {
            return Ok(());
        }
        let Some(mut record) = RETURNS_V1.get(&tx.returns, return_id.as_str())? else {
            return Ok(());
        };
        // Only the drop-off this command opened, still waiting for its door, goes back.
        let Ok(abandoned) = record.status.apply(ReturnEvent::Abandoned) else {
            return Ok(());
        };
        if record.compartment_id.as_ref() != Some(&command.compartment_id) {
            return Ok(());
        }
        self.give_back_drop_off(tx, &record, &command.compartment_id)?;
        record.status = abandoned;
        record.compartment_id = None;
        tx.put_return(&record)?;
        let outcome = format!(
            "unlock {} {}; the code opens a compartment again",
            command.id,
            command.status.as_str()
        );
        self.log(
            tx,
            Draft::new(
                command.actor.clone(),
                "return_dropoff",
                return_id.as_str(),
                &outcome,
            ),
        )
    }
}
