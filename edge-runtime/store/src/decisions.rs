//! Decisions an edge node makes on its own: its outbox (written in the transaction that made
//! each decision, drained once the gateway confirms), and the gateway's side, which applies each
//! edge node's decisions once and in sequence order.

use super::access_log::Draft;
use super::station_index::{Kind, named, records};
use super::tables::{CODES_V1, COMMANDS_V1, EDGE_INBOX_V1, EDGE_OUTBOX_V1, LEASES_V1, PARCELS_V1};
use super::writer::{Tx, Writer};
use super::{ChangeError, DoorClosed, DoorClosedEvent, SettledEvent, Store, StoreError};
use lockergrid_model::{Actor, UnlockFor};
use lockergrid_model::{Decision, EdgeDecision};
use lockergrid_protocol::command::{CachedCode, MAX_CLOCK_SKEW};
use lockergrid_protocol::{CompartmentId, ParcelStatus, StationId};
use redb::{ReadableDatabase, ReadableTableMetadata};

/// What became of one decision at the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied now.
    Applied,
    /// Applied now, against what the gateway had decided meanwhile (a code reissued, a parcel
    /// no longer stored): the record says what happened and why it conflicts.
    Conflict(String),
    /// Applied before; nothing changed.
    Duplicate,
    /// Its sequence number is not the next one; nothing changed.
    OutOfOrder {
        /// The next one the gateway expects.
        expected: u64,
    },
}

impl Store {
    /// Up to `limit` decisions of this edge node's outbox, oldest first.
    pub fn edge_outbox(&self, limit: usize) -> Result<Vec<EdgeDecision>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(EDGE_OUTBOX_V1.def())?;
        EDGE_OUTBOX_V1.page(&table, 0, limit)
    }

    /// How many decisions wait in this edge node's outbox.
    pub fn edge_outbox_depth(&self) -> Result<u64, StoreError> {
        let rx = self.inner.db.begin_read()?;
        Ok(rx.open_table(EDGE_OUTBOX_V1.def())?.len()?)
    }

    /// On the gateway: the last sequence number applied of edge node `edge`'s decisions.
    pub fn decisions_applied(&self, edge: &str) -> Result<u64, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(EDGE_INBOX_V1.def())?;
        Ok(EDGE_INBOX_V1.get(&table, edge)?.unwrap_or(0))
    }
}

/// A pickup a locker decided on its own while no node answered (`offline_pickup` event).
#[derive(Debug, Clone)]
pub struct OfflinePickup {
    /// Where.
    pub station: StationId,
    /// The locker's event.
    pub event: String,
    /// The compartment it released.
    pub compartment: CompartmentId,
    /// The keyed hash of the code it accepted.
    pub code_hash: String,
    /// The locker.
    pub actor: Actor,
}

impl Store {
    /// The next command counter of `station`'s locker for a code cache update, recorded; `None`
    /// while a command to that locker waits for its acknowledgement. Checked and taken in one
    /// transaction, so an update never takes a counter above that of a command issued before it
    /// but not yet sent, which the locker would then refuse as a replay.
    pub async fn cache_counter(&self, station: StationId) -> Result<Option<u64>, StoreError> {
        self.write(move |_, tx| {
            if crate::commands::has_pending(tx, &station)? {
                return Ok(None);
            }
            crate::commands::next_counter(tx, &station).map(Some)
        })
        .await
    }

    /// `station`'s code key (hex) and every active code of the station with its compartment:
    /// what its locker's own cache should hold.
    pub fn locker_codes(
        &self,
        station: &StationId,
    ) -> Result<(String, Vec<CachedCode>), StoreError> {
        let rx = self.inner.db.begin_read()?;
        let key = self.inner.station_keys.hex(station).unwrap_or_else(|| {
            lockergrid_protocol::to_hex(&self.inner.code_key.station(station).to_bytes())
        });
        let index = rx.open_table(super::tables::STATION_RECORDS_V1.def())?;
        let codes = rx.open_table(CODES_V1.def())?;
        let parcels = rx.open_table(PARCELS_V1.def())?;
        let mut cached = Vec::new();
        let here = (station, Kind::Code);
        let keep = |code: &lockergrid_model::CodeRecord| &code.station_id == station;
        for (hash, code) in records(&index, &codes, &CODES_V1, here, named, keep)? {
            if let Some(parcel) = PARCELS_V1.get(&parcels, code.parcel_id.as_str())? {
                cached.push(CachedCode {
                    compartment: parcel.compartment_id,
                    hash,
                    expires_at: code.expires_at,
                });
            }
        }
        Ok((key, cached))
    }
}

impl Writer {
    pub(crate) fn apply_decision(
        &mut self,
        tx: &mut Tx<'_>,
        edge: &str,
        decision: EdgeDecision,
    ) -> Result<Applied, StoreError> {
        let last = EDGE_INBOX_V1.get(&tx.edge_inbox, edge)?.unwrap_or(0);
        if decision.seq <= last {
            return Ok(Applied::Duplicate);
        }
        if decision.seq != last + 1 {
            return Ok(Applied::OutOfOrder { expected: last + 1 });
        }
        EDGE_INBOX_V1.put(&mut tx.edge_inbox, edge, &decision.seq)?;
        let actor = Actor {
            subject: format!("edge:{edge}"),
            role: "device".into(),
        };
        // Order comes from sequence numbers, never from the edge node's clock; a decision
        // stamped in the gateway's future is applied like any other and the drift recorded.
        let ahead = decision.at.millis().saturating_sub(tx.now.millis());
        if ahead > MAX_CLOCK_SKEW.as_millis() as u64 {
            let outcome = format!(
                "decision {} stamped {} ms ahead of the gateway's clock",
                decision.seq, ahead
            );
            self.log(tx, Draft::new(actor.clone(), "edge_clock", edge, &outcome))?;
        }
        match decision.decision {
            Decision::Recorded {
                station,
                event,
                action,
                target,
                outcome,
                decided_by,
            } => {
                let settled = SettledEvent {
                    actor: Actor {
                        subject: format!("locker:{station}"),
                        role: "device".into(),
                    },
                    station,
                    event,
                    action,
                    target,
                    outcome,
                    decided_by,
                };
                self.settle_event(tx, settled)?;
                Ok(Applied::Applied)
            }
            Decision::ReturnDroppedOff {
                station,
                return_id,
                compartment,
                code_hash,
                lease_epoch,
                command,
                event,
                decided_by,
            } => {
                // Only a compartment the edge node held under that epoch: one it was leased, or
                // one taken back at a later epoch it had not heard of yet — or the one the
                // gateway itself unlocked for this return, whose door closed while the edge node
                // was cut off.
                let lease = LEASES_V1.get(&tx.leases, station.as_str())?;
                let gateways = COMMANDS_V1
                    .get(&tx.commands, command.as_str())?
                    .is_some_and(|c| {
                        c.compartment_id == compartment
                            && matches!(&c.unlock_for, UnlockFor::ReturnDropOff { return_id: r, .. } if *r == return_id)
                    });
                let held = gateways
                    || lease.as_ref().is_some_and(|l| {
                        l.edge == edge
                            && (l.compartments.contains(&compartment)
                                || l.revoking
                                    .get(&compartment)
                                    .is_some_and(|e| lease_epoch < *e))
                    });
                if !held {
                    let why = match &lease {
                        Some(l) if l.edge == edge && lease_epoch < l.acked_epoch => format!(
                            "dropped off at the edge (command {command}) in {compartment} under lease epoch {lease_epoch}, older than epoch {} it had confirmed: stale, refused",
                            l.acked_epoch
                        ),
                        _ => format!(
                            "dropped off at the edge (command {command}) in {compartment}, which is not leased to it: refused"
                        ),
                    };
                    self.log(
                        tx,
                        Draft::new(actor, "return_dropoff", return_id.as_str(), &why),
                    )?;
                    return Ok(Applied::Conflict(why));
                }
                let drop = super::returns::DropOff {
                    return_id: return_id.clone(),
                    code_hash,
                    compartment,
                    actor: actor.clone(),
                    decided_by,
                    command: command.clone(),
                    event,
                };
                match self.dropped_off(tx, drop) {
                    Ok(_) => Ok(Applied::Applied),
                    Err(ChangeError::Store(e)) => Err(e),
                    Err(refused) => {
                        let why = format!("dropped off at the edge (command {command}): {refused}");
                        self.log(
                            tx,
                            Draft::new(actor, "return_dropoff", return_id.as_str(), &why),
                        )?;
                        Ok(Applied::Conflict(why))
                    }
                }
            }
            Decision::ForwardedDoorClosed {
                station,
                event,
                compartment,
                command,
            } => {
                let closed = DoorClosedEvent {
                    actor: Actor {
                        subject: format!("locker:{station}"),
                        role: "device".into(),
                    },
                    station,
                    event,
                    compartment,
                    unlocked_by: Some(command),
                };
                Ok(match self.door_closed(tx, closed)? {
                    DoorClosed::Duplicate => Applied::Duplicate,
                    DoorClosed::Conflict(why) => Applied::Conflict(why),
                    _ => Applied::Applied,
                })
            }
            Decision::CodeRejected {
                station,
                event,
                lockout,
            } => {
                self.merge_lockout(tx, &station, &lockout)?;
                let outcome = format!("code_rejected at the edge (event {event})");
                self.log(tx, Draft::new(actor, "pickup", station.as_str(), &outcome))?;
                Ok(Applied::Applied)
            }
            Decision::PickedUp {
                parcel,
                code_hash,
                command,
                decided_by,
                ..
            } => {
                let Some(record) = PARCELS_V1.get(&tx.parcels, parcel.as_str())? else {
                    let why = format!("parcel {parcel} unknown here");
                    self.log(tx, Draft::new(actor, "pickup", parcel.as_str(), &why))?;
                    return Ok(Applied::Conflict(why));
                };
                if record.status != ParcelStatus::Stored {
                    // The parcel left the compartment by another way at the gateway meanwhile;
                    // both stay on record, and an operator sorts out which is true.
                    let why = format!(
                        "picked up at the edge (command {command}) but {:?} here",
                        record.status
                    );
                    self.log(tx, Draft::new(actor, "pickup", parcel.as_str(), &why))?;
                    return Ok(Applied::Conflict(why));
                }
                let revoked = record.code_hash.as_deref() != Some(code_hash.as_str());
                match self.pick_up(tx, &code_hash, &parcel, actor.clone(), decided_by) {
                    Ok(_) if revoked => {
                        let why = format!(
                            "picked up at the edge (command {command}) with a code the gateway had replaced meanwhile"
                        );
                        self.log(
                            tx,
                            Draft::new(actor, "pickup_conflict", parcel.as_str(), &why),
                        )?;
                        Ok(Applied::Conflict(why))
                    }
                    Ok(_) => Ok(Applied::Applied),
                    Err(ChangeError::Store(e)) => Err(e),
                    Err(refused) => {
                        let why = format!("picked up at the edge (command {command}): {refused}");
                        self.log(tx, Draft::new(actor, "pickup", parcel.as_str(), &why))?;
                        Ok(Applied::Conflict(why))
                    }
                }
            }
        }
    }
}
