//! A locker's door closed: what its unlock command was for completes, once.

use crate::access_log::Draft;
use crate::tables::{COMMANDS_V1, inbox_key};
use crate::writer::{Tx, Writer};
use crate::{ChangeError, DoorClosed, DoorClosedEvent, Store, StoreError};
use lockergrid_model::{Decision, UnlockFor};

impl Store {
    /// Applies a door-closed event once (see [`DoorClosed`]).
    pub async fn door_closed(&self, closed: DoorClosedEvent) -> Result<DoorClosed, StoreError> {
        self.write(move |w, tx| w.door_closed(tx, closed)).await
    }
}

impl Writer {
    /// Applies a door-closed event once: if it names an unlock command of this compartment that
    /// nothing completed yet, the command's deposit or pickup happens now.
    pub(crate) fn door_closed(
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
                // A door no command released (after a pickup the locker decided alone), closing
                // while an edge node decides: the gateway records it when it hears.
                if closed.unlocked_by.is_none() {
                    self.decided(
                        tx,
                        Decision::Recorded {
                            station: closed.station.clone(),
                            event: closed.event.clone(),
                            action: "door_closed".into(),
                            target: target.to_owned(),
                            outcome: outcome.clone(),
                            decided_by: None,
                        },
                    )?;
                }
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
                    // deposit (its code, its notifications) or a carrier's collection is the
                    // gateway's to complete; the door closing is a decision.
                    UnlockFor::Deposit { .. }
                    | UnlockFor::ReturnCollection { .. }
                    | UnlockFor::ParcelCollection { .. }
                        if self.edge =>
                    {
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
                        let drop = crate::returns::DropOff {
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
                    UnlockFor::ParcelCollection { parcel_id } => self
                        .collected_parcel(tx, parcel_id, actor, decided_by)
                        .map(DoorClosed::ParcelCollected),
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
}
