//! What the store does for lockers: unlock commands for a deposit or a pickup code, the gateway's
//! commands an edge node relays, door and other events, acknowledgements. An unlock command is issued with the locker's
//! next counter and kept in the command outbox until the locker acknowledges it or it expires; a
//! locker's event is applied once (the inbox records its id in the same transaction as its
//! effect), and the door-closed event that names an unlock command completes what the command
//! was for: the deposit of a reservation or the pickup of a parcel.

use super::access_log::Draft;
use super::commands::{Issue, next_counter};
use super::conflict;
use super::reservations::advance;
use super::tables::{COMMANDS_V1, RESERVATIONS_V1, inbox_key};
use super::writer::{Tx, Writer};
use super::{ChangeError, DoorClosed, DoorClosedEvent, PickupUnlock, SettledEvent, StoreError};
use lockergrid_model::{
    Actor, CommandRecord, CommandStatus, DecidedBy, ReservationStatus, UnlockFor,
};
use lockergrid_model::{CommandEvent, Decision};
use lockergrid_protocol::{ParcelEvent, ReservationId};
use std::time::Duration;

/// How long after a deposit unlock's expiry the reservation is held at least: the agent's time
/// to put the parcel in and close the door.
pub const DOOR_GRACE: Duration = Duration::from_secs(15 * 60);

impl Writer {
    /// An edge node takes on the gateway's command for one of its lockers: the first time with
    /// the locker's next counter of its own, pending; again, as it was recorded (settled, if the
    /// locker has answered since).
    pub(super) fn relay_command(
        &mut self,
        tx: &mut Tx<'_>,
        command: CommandRecord,
    ) -> Result<CommandRecord, StoreError> {
        if let Some(known) = COMMANDS_V1.get(&tx.commands, command.id.as_str())? {
            return Ok(known);
        }
        let record = CommandRecord {
            counter: next_counter(tx, &command.station_id)?,
            status: CommandStatus::Pending,
            detail: None,
            closed_by: None,
            relayed: true,
            ..command
        };
        self.keep_pending(tx, &record)?;
        Ok(record)
    }

    /// Issues the unlock that lets an agent deposit the parcel of a held reservation, and keeps
    /// the hold for at least [`DOOR_GRACE`] past the command's expiry.
    pub(super) fn unlock_for_deposit(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ReservationId,
        actor: &Actor,
        decided_by: &Option<DecidedBy>,
        valid: Duration,
    ) -> Result<CommandRecord, ChangeError> {
        let mut reservation = self.held_reservation(tx, id)?;
        if reservation.hold_until <= tx.now {
            return Err(conflict(
                "reservation",
                id.as_str(),
                ReservationStatus::Expired,
            ));
        }
        let until = tx.now.plus(valid + DOOR_GRACE);
        if reservation.hold_until < until {
            self.index
                .hold_deadlines
                .remove(&(reservation.hold_until, id.clone()));
            self.index.hold_deadlines.insert((until, id.clone()));
            reservation.hold_until = until;
            RESERVATIONS_V1.put(&mut tx.reservations, id.as_str(), &reservation)?;
        }
        let record = self.issue(
            tx,
            Issue {
                station: &reservation.station_id,
                compartment: &reservation.compartment_id,
                unlock_for: UnlockFor::Deposit {
                    reservation_id: id.clone(),
                },
                actor,
                decided_by,
                valid,
            },
        )?;
        let outcome = format!(
            "deposit: command {} to {}",
            record.id, record.compartment_id
        );
        self.log(
            tx,
            Draft::new(actor.clone(), "unlock", id.as_str(), &outcome)
                .decided_by(decided_by.clone()),
        )?;
        Ok(record)
    }

    /// Checks a pickup code and issues the unlock of its parcel's compartment; the code is spent
    /// when the door closes. `None` when the keypad event was applied before.
    pub(super) fn unlock_for_pickup(
        &mut self,
        tx: &mut Tx<'_>,
        request: PickupUnlock,
    ) -> Result<Option<CommandRecord>, ChangeError> {
        let key = request
            .event
            .as_deref()
            .map(|event| inbox_key(&request.station, event));
        if let Some(key) = &key
            && self.is_applied(tx, key)?
        {
            return Ok(None);
        }
        let hash = self.hash_code(&request.station, &request.code).to_hex();
        let Some(code) = self.active_code(tx, &request.station, &hash)? else {
            match self.unlock_for_drop_off(tx, &request, &hash) {
                Ok(None) => {}
                Ok(Some(command)) => {
                    if let Some(key) = &key {
                        self.mark_applied(tx, key)?;
                    }
                    return Ok(Some(command));
                }
                // The caller records a refusal, as for a pickup that cannot happen.
                Err(refused) => return Err(refused),
            }
            if let Some(key) = &key {
                self.mark_applied(tx, key)?;
            }
            if let Some(event) = &request.event {
                self.decided(
                    tx,
                    Decision::CodeRejected {
                        station: request.station.clone(),
                        event: event.clone(),
                    },
                )?;
            }
            let entry = Draft::new(
                request.actor,
                "pickup",
                request.station.as_str(),
                "code_rejected",
            );
            self.log(tx, entry)?;
            return Err(ChangeError::CodeRejected);
        };
        let parcel = self.parcel(tx, &code.parcel_id)?;
        advance(&parcel, ParcelEvent::PickedUp)?;
        let record = self.issue(
            tx,
            Issue {
                station: &request.station,
                compartment: &parcel.compartment_id,
                unlock_for: UnlockFor::Pickup {
                    parcel_id: parcel.id.clone(),
                    code_hash: hash,
                },
                actor: &request.actor,
                decided_by: &request.decided_by,
                valid: request.valid,
            },
        )?;
        if let Some(key) = &key {
            self.mark_applied(tx, key)?;
        }
        let outcome = format!("pickup: command {} to {}", record.id, record.compartment_id);
        self.log(
            tx,
            Draft::new(request.actor, "unlock", parcel.id.as_str(), &outcome)
                .decided_by(request.decided_by),
        )?;
        Ok(Some(record))
    }

    /// Applies a door-closed event once: if it names an unlock command of this compartment that
    /// nothing completed yet, the command's deposit or pickup happens now.
    pub(super) fn door_closed(
        &mut self,
        tx: &mut Tx<'_>,
        closed: DoorClosedEvent,
    ) -> Result<DoorClosed, StoreError> {
        let key = inbox_key(&closed.station, &closed.event);
        if self.is_applied(tx, &key)? {
            return Ok(DoorClosed::Duplicate);
        }
        let command = match &closed.unlocked_by {
            Some(id) => COMMANDS_V1.get(&tx.commands, id.as_str())?,
            None => None,
        }
        .filter(|c| {
            c.station_id == closed.station
                && c.compartment_id == closed.compartment
                && c.closed_by.is_none()
        });
        let target = closed.compartment.as_str();
        let outcome = match command {
            None => {
                let outcome = match &closed.unlocked_by {
                    None => "closed".to_string(),
                    Some(id) => format!("closed; command {id} unknown here or already completed"),
                };
                self.log(
                    tx,
                    Draft::new(closed.actor, "door_closed", target, &outcome),
                )?;
                DoorClosed::Recorded
            }
            Some(mut command) => {
                let actor = command.actor.clone();
                let decided_by = command.decided_by.clone();
                let done = match &command.unlock_for {
                    // An edge node holds neither held reservations nor dropped-off returns: a
                    // deposit (its code, its notifications) or a collection is the gateway's to
                    // complete; the door closing is a decision.
                    UnlockFor::Deposit { .. } | UnlockFor::ReturnCollection { .. } if self.edge => {
                        self.decided(
                            tx,
                            Decision::ForwardedDoorClosed {
                                station: closed.station.clone(),
                                event: closed.event.clone(),
                                compartment: closed.compartment.clone(),
                                command: command.id.clone(),
                            },
                        )?;
                        let outcome = format!(
                            "closed after command {}; the gateway completes it",
                            command.id
                        );
                        self.log(
                            tx,
                            Draft::new(closed.actor.clone(), "door_closed", target, &outcome),
                        )?;
                        Ok(DoorClosed::Recorded)
                    }
                    UnlockFor::Deposit { reservation_id } => self
                        .deposit(tx, reservation_id, actor, decided_by)
                        .map(DoorClosed::Deposited),
                    UnlockFor::Pickup {
                        parcel_id,
                        code_hash,
                    } => self
                        .pick_up(tx, code_hash, parcel_id, actor, decided_by)
                        .map(DoorClosed::PickedUp),
                    UnlockFor::ReturnDropOff {
                        return_id,
                        code_hash,
                    } => {
                        let drop = super::returns::DropOff {
                            return_id: return_id.clone(),
                            code_hash: code_hash.clone(),
                            compartment: command.compartment_id.clone(),
                            actor,
                            decided_by,
                            command: command.id.clone(),
                            event: closed.event.clone(),
                        };
                        self.dropped_off(tx, drop).map(DoorClosed::ReturnDroppedOff)
                    }
                    UnlockFor::ReturnCollection { return_id } => self
                        .collected_return(tx, &command, return_id)
                        .map(DoorClosed::ReturnCollected),
                };
                match done {
                    Ok(done) => {
                        command.closed_by = Some(closed.event.clone());
                        COMMANDS_V1.put(&mut tx.commands, command.id.as_str(), &command)?;
                        if let (
                            DoorClosed::PickedUp(_),
                            UnlockFor::Pickup {
                                parcel_id,
                                code_hash,
                            },
                        ) = (&done, &command.unlock_for)
                        {
                            self.decided(
                                tx,
                                Decision::PickedUp {
                                    station: closed.station.clone(),
                                    parcel: parcel_id.clone(),
                                    code_hash: code_hash.clone(),
                                    command: command.id.clone(),
                                    event: closed.event.clone(),
                                    decided_by: command.decided_by.clone(),
                                },
                            )?;
                        }
                        done
                    }
                    Err(ChangeError::Store(e)) => return Err(e),
                    Err(refused) => {
                        let outcome = format!("command {}: {refused}", command.id);
                        self.log(
                            tx,
                            Draft::new(closed.actor, "door_closed", target, &outcome),
                        )?;
                        DoorClosed::Conflict(refused.to_string())
                    }
                }
            }
        };
        self.mark_applied(tx, &key)?;
        Ok(outcome)
    }

    /// Applies an event that changes nothing but the access log, once; `false` for a duplicate.
    pub(super) fn settle_event(
        &mut self,
        tx: &mut Tx<'_>,
        settled: SettledEvent,
    ) -> Result<bool, StoreError> {
        let key = inbox_key(&settled.station, &settled.event);
        if self.is_applied(tx, &key)? {
            return Ok(false);
        }
        self.mark_applied(tx, &key)?;
        self.decided(
            tx,
            Decision::Recorded {
                station: settled.station.clone(),
                event: settled.event.clone(),
                action: settled.action.clone(),
                target: settled.target.clone(),
                outcome: settled.outcome.clone(),
                decided_by: settled.decided_by.clone(),
            },
        )?;
        let entry = Draft::new(
            settled.actor,
            &settled.action,
            &settled.target,
            &settled.outcome,
        )
        .decided_by(settled.decided_by);
        self.log(tx, entry)?;
        Ok(true)
    }

    /// Takes a command out of the outbox with what became of it; `None` if it was not pending.
    pub(super) fn settle_command(
        &mut self,
        tx: &mut Tx<'_>,
        id: &str,
        event: CommandEvent,
        detail: Option<String>,
        actor: Actor,
    ) -> Result<Option<CommandRecord>, StoreError> {
        if tx.pending_commands.remove(id)?.is_none() {
            return Ok(None);
        }
        let Some(mut command) = COMMANDS_V1.get(&tx.commands, id)? else {
            return Ok(None);
        };
        // A command in the outbox is pending; anything else means the tables disagree.
        command.status = command
            .status
            .apply(event)
            .map_err(|e| StoreError::Corrupt {
                table: "commands_v1",
                detail: format!("{id}: {e}"),
            })?;
        let status = command.status;
        command.detail = detail;
        COMMANDS_V1.put(&mut tx.commands, id, &command)?;
        self.drop_off_abandoned(tx, &command)?;
        let outcome = match &command.detail {
            Some(detail) => format!("{}: {detail}", status.as_str()),
            None => status.as_str().to_owned(),
        };
        self.log(tx, Draft::new(actor, "command", id, &outcome))?;
        Ok(Some(command))
    }
}
