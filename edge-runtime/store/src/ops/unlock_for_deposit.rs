//! The unlock command that lets an agent deposit the parcel of a held reservation.

use crate::DOOR_GRACE;
use crate::access_log::Draft;
use crate::commands::Issue;
use crate::tables::RESERVATIONS_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store, conflict};
use lockergrid_model::{Actor, CommandRecord, DecidedBy, ReservationStatus, UnlockFor};
use lockergrid_protocol::ReservationId;
use std::time::Duration;

impl Store {
    /// Issues the unlock command that lets an agent deposit the parcel of a held reservation; the
    /// deposit happens when the locker reports the door closed again.
    pub async fn unlock_for_deposit(
        &self,
        id: ReservationId,
        actor: Actor,
        decided_by: Option<DecidedBy>,
        valid: Duration,
    ) -> Result<CommandRecord, ChangeError> {
        self.write(move |w, tx| w.unlock_for_deposit(tx, &id, &actor, &decided_by, valid))
            .await
    }
}

impl Writer {
    /// Issues the unlock that lets an agent deposit the parcel of a held reservation, and keeps
    /// the hold for at least [`DOOR_GRACE`] past the command's expiry.
    pub(crate) fn unlock_for_deposit(
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
}
