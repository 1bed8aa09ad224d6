//! A compartment out of service and back (DESIGN.md §2). An empty one goes to maintenance at
//! once; one held for a reservation hands the hold to another free compartment of its station
//! that fits; one with a parcel or a return inside goes only with a named destination at the
//! same station that the technician moves it into, its records following it. A latch that
//! failed [`LATCH_FAILURES`] unlocks in a row takes its compartment to maintenance by itself as
//! soon as it is empty.

use crate::access_log::Draft;
use crate::tables::compartment_key;
use crate::tables::{COMPARTMENTS_V1, LATCH_FAULTS_V1, RESERVATIONS_V1};
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store, StoreError, conflict};
use lockergrid_model::{Actor, CommandRecord, CompartmentRecord, LatchFaults};
use lockergrid_protocol::{CompartmentEvent, CompartmentId, CompartmentState, Size};

/// Unlocks in a row whose latch failed before its compartment goes to maintenance.
pub const LATCH_FAILURES: u32 = 3;

/// An operator's order to take a compartment out of service.
#[derive(Debug, Clone)]
pub struct ServiceOrder {
    /// The compartment.
    pub compartment: CompartmentId,
    /// Where the parcel or return inside goes: an available compartment of the same station
    /// it fits. Required when one is inside, refused otherwise.
    pub destination: Option<CompartmentId>,
    /// Who orders it.
    pub actor: Actor,
    /// Why, for the access log.
    pub reason: String,
}

/// What taking a compartment out of service did.
#[derive(Debug, Clone, PartialEq)]
pub struct OutOfService {
    /// The compartment as it is now.
    pub compartment: CompartmentRecord,
    /// Where its hold, parcel or return went, if it had one.
    pub moved_to: Option<CompartmentId>,
}

impl Store {
    /// Takes a compartment out of service as `order` says.
    pub async fn take_out_of_service(
        &self,
        order: ServiceOrder,
    ) -> Result<OutOfService, ChangeError> {
        self.write(move |w, tx| w.take_out_of_service(tx, order))
            .await
    }

    /// Puts a compartment in maintenance back in service; its latch's failures are forgotten.
    pub async fn back_in_service(
        &self,
        compartment: CompartmentId,
        actor: Actor,
        reason: String,
    ) -> Result<CompartmentRecord, ChangeError> {
        self.write(move |w, tx| w.back_in_service(tx, &compartment, actor, &reason))
            .await
    }

    /// The latch failures on record for `compartment`, if any.
    pub fn latch_faults(
        &self,
        compartment: &CompartmentId,
    ) -> Result<Option<LatchFaults>, StoreError> {
        use redb::ReadableDatabase;
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(LATCH_FAULTS_V1.def())?;
        LATCH_FAULTS_V1.get(&table, compartment_key(compartment).as_str())
    }
}

impl Writer {
    pub(crate) fn take_out_of_service(
        &mut self,
        tx: &mut Tx<'_>,
        order: ServiceOrder,
    ) -> Result<OutOfService, ChangeError> {
        let c = self.compartment_record(tx, &order.compartment)?;
        let id = order.compartment.as_str();
        if order.destination.is_some()
            && !matches!(
                c.state,
                CompartmentState::Occupied | CompartmentState::ReturnPending
            )
        {
            return Err(ChangeError::Invalid(format!(
                "compartment {id:?} is {}: nothing inside to move",
                c.state
            )));
        }
        let moved_to = match c.state {
            CompartmentState::Available => None,
            CompartmentState::Reserved => Some(self.move_hold(tx, &c)?),
            CompartmentState::Occupied | CompartmentState::ReturnPending => {
                let Some(to) = &order.destination else {
                    return Err(ChangeError::Invalid(format!(
                        "compartment {id:?} is {}: name the compartment its contents go to",
                        c.state
                    )));
                };
                self.move_contents(tx, &c, to)?;
                Some(to.clone())
            }
            CompartmentState::Maintenance => {
                return Err(conflict("compartment", id, c.state));
            }
        };
        let event = match c.state {
            CompartmentState::Occupied | CompartmentState::ReturnPending => {
                CompartmentEvent::ContentsMovedOut
            }
            _ => CompartmentEvent::TakeOutOfService,
        };
        let compartment = self.move_compartment(tx, &order.compartment, event, None)?;
        let outcome = match &moved_to {
            Some(to) => format!("{}; moved to {to}", order.reason),
            None => order.reason.clone(),
        };
        let entry = Draft::new(order.actor, "compartment_out_of_service", id, &outcome);
        self.log(tx, entry)?;
        Ok(OutOfService {
            compartment,
            moved_to,
        })
    }

    pub(crate) fn back_in_service(
        &mut self,
        tx: &mut Tx<'_>,
        id: &CompartmentId,
        actor: Actor,
        reason: &str,
    ) -> Result<CompartmentRecord, ChangeError> {
        tx.latch_faults
            .remove(compartment_key(id).as_str())
            .map_err(StoreError::from)?;
        let c = self.move_compartment(tx, id, CompartmentEvent::BackInService, None)?;
        let entry = Draft::new(actor, "compartment_in_service", id.as_str(), reason);
        self.log(tx, entry)?;
        Ok(c)
    }

    fn compartment_record(
        &self,
        tx: &Tx<'_>,
        id: &CompartmentId,
    ) -> Result<CompartmentRecord, ChangeError> {
        COMPARTMENTS_V1
            .get(&tx.compartments, compartment_key(id).as_str())?
            .ok_or_else(|| ChangeError::NotFound {
                kind: "compartment",
                id: id.to_string(),
            })
    }

    /// Hands the reservation holding `c` to the smallest free compartment of its station that
    /// fits its parcel; where it went.
    fn move_hold(
        &mut self,
        tx: &mut Tx<'_>,
        c: &CompartmentRecord,
    ) -> Result<CompartmentId, ChangeError> {
        let Some(held) = &c.reservation else {
            return Err(ChangeError::Conflict {
                kind: "compartment",
                id: c.id.to_string(),
                status: "held for a drop-off or leased to an edge node".into(),
            });
        };
        let mut reservation = self.held_reservation(tx, held)?;
        let mut parcel = self.parcel(tx, &reservation.parcel_id)?;
        let size = parcel.spec.smallest_size().unwrap_or(reservation.size);
        let (_, to, got) = self
            .find_free(std::slice::from_ref(&c.station), size)
            .ok_or_else(|| ChangeError::Conflict {
                kind: "compartment",
                id: c.id.to_string(),
                status: "held, and no other compartment of its station is free for the hold".into(),
            })?;
        self.move_compartment(tx, &to, CompartmentEvent::Reserve, Some(held.clone()))?;
        reservation.compartment_id = to.clone();
        reservation.size = got;
        RESERVATIONS_V1.put(&mut tx.reservations, reservation.id.as_str(), &reservation)?;
        parcel.compartment_id = to.clone();
        tx.put_parcel(&parcel)?;
        Ok(to)
    }

    /// Moves the parcel or return inside `c` to `to`: an available compartment of the same
    /// station it fits; the records follow it.
    fn move_contents(
        &mut self,
        tx: &mut Tx<'_>,
        c: &CompartmentRecord,
        to: &CompartmentId,
    ) -> Result<(), ChangeError> {
        let target = self.compartment_record(tx, to)?;
        if target.station != c.station || target.state != CompartmentState::Available {
            return Err(ChangeError::Invalid(format!(
                "the destination must be an available compartment of station {}; {to} is {} at {}",
                c.station, target.state, target.station
            )));
        }
        if c.state == CompartmentState::Occupied {
            let Some(held) = &c.reservation else {
                return Err(crate::StoreError::Corrupt {
                    table: "compartments_v1",
                    detail: format!("{} is occupied by no reservation", c.id),
                }
                .into());
            };
            let mut reservation = RESERVATIONS_V1
                .get(&tx.reservations, held.as_str())?
                .ok_or_else(|| ChangeError::NotFound {
                    kind: "reservation",
                    id: held.to_string(),
                })?;
            let mut parcel = self.parcel(tx, &reservation.parcel_id)?;
            fits(
                parcel.spec.smallest_size().unwrap_or(reservation.size),
                target.size,
                to,
            )?;
            self.move_compartment(tx, to, CompartmentEvent::ParcelMovedIn, Some(held.clone()))?;
            reservation.compartment_id = to.clone();
            RESERVATIONS_V1.put(&mut tx.reservations, reservation.id.as_str(), &reservation)?;
            parcel.compartment_id = to.clone();
            tx.put_parcel(&parcel)?;
            return Ok(());
        }
        let mut record =
            crate::station_index::waiting_returns(&tx.station_records, &tx.returns, &c.station)?
                .into_iter()
                .find(|r| r.compartment_id.as_ref() == Some(&c.id))
                .ok_or_else(|| crate::StoreError::Corrupt {
                    table: "returns_v1",
                    detail: format!("no dropped-off return is in {}", c.id),
                })?;
        fits(record.size, target.size, to)?;
        self.move_compartment(tx, to, CompartmentEvent::ReturnMovedIn, None)?;
        record.compartment_id = Some(to.clone());
        tx.put_return(&record)?;
        Ok(())
    }

    /// Counts a settled unlock against its compartment's latch: a failure adds one, an executed
    /// unlock clears the record. At [`LATCH_FAILURES`] the compartment is due for maintenance,
    /// and goes there now if it is empty.
    pub(crate) fn count_latch(
        &mut self,
        tx: &mut Tx<'_>,
        command: &CommandRecord,
        failed: bool,
    ) -> Result<(), StoreError> {
        let key = compartment_key(&command.compartment_id);
        if !failed {
            tx.latch_faults.remove(key.as_str())?;
            return Ok(());
        }
        let mut faults = LATCH_FAULTS_V1
            .get(&tx.latch_faults, key.as_str())?
            .unwrap_or_default();
        faults.consecutive += 1;
        faults.last_reason = command.detail.clone();
        let newly_due = !faults.maintenance_due && faults.consecutive >= LATCH_FAILURES;
        faults.maintenance_due |= newly_due;
        LATCH_FAULTS_V1.put(&mut tx.latch_faults, key.as_str(), &faults)?;
        if newly_due {
            let outcome = format!(
                "{} unlocks in a row failed ({}); maintenance due",
                faults.consecutive,
                faults.last_reason.as_deref().unwrap_or("no reason given")
            );
            let entry = Draft::new(
                command.actor.clone(),
                "latch_failing",
                command.compartment_id.as_str(),
                &outcome,
            );
            self.log(tx, entry)?;
            self.maintain_if_empty(tx, &command.compartment_id)
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

    /// Takes a compartment whose latch is due for maintenance out of service if it is empty;
    /// the compartment as it is then, when it moved.
    pub(crate) fn maintain_if_empty(
        &mut self,
        tx: &mut Tx<'_>,
        id: &CompartmentId,
    ) -> Result<Option<CompartmentRecord>, ChangeError> {
        let key = compartment_key(id);
        let due = LATCH_FAULTS_V1
            .get(&tx.latch_faults, key.as_str())?
            .is_some_and(|f| f.maintenance_due);
        let empty = COMPARTMENTS_V1
            .get(&tx.compartments, key.as_str())?
            .is_some_and(|c| c.state == CompartmentState::Available);
        if !(due && empty) {
            return Ok(None);
        }
        let c = self.move_compartment(tx, id, CompartmentEvent::TakeOutOfService, None)?;
        let entry = Draft::new(
            crate::devices::registry_actor(),
            "compartment_out_of_service",
            id.as_str(),
            "its latch failed to release; maintenance due",
        );
        self.log(tx, entry)?;
        Ok(Some(c))
    }
}

/// Whether contents needing `need` fit a compartment of size `size`.
fn fits(need: Size, size: Size, to: &CompartmentId) -> Result<(), ChangeError> {
    if size.index() < need.index() {
        return Err(ChangeError::Invalid(format!(
            "the contents need a {need} compartment; {to} is {size}"
        )));
    }
    Ok(())
}
