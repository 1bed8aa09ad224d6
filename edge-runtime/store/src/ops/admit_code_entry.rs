//! The first step of every code entry: the station's lock-out checked and the attempt counted in
//! one transaction, before the code is looked at.

use crate::access_log::Draft;
use crate::tables::inbox_key;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, CodeAttempt, SettledEvent, Store};

impl Store {
    /// Admits a code entry at its station: `Ok(true)` counts it as a failure until its code
    /// proves right (then [`Store::unlock_for_pickup`] or [`Store::give_back_attempt`] gives it
    /// back), `Ok(false)` for a keypad event applied before, and
    /// [`ChangeError::LockedOut`] (recorded, once per event) while the station must wait.
    pub async fn admit_code_entry(&self, attempt: CodeAttempt) -> Result<bool, ChangeError> {
        self.write(move |w, tx| w.admit_code_entry(tx, attempt))
            .await
    }

    /// Gives back an admitted attempt whose code was right but opened nothing (the site rules
    /// denied it, the locker is offline, the parcel is no longer there).
    pub async fn give_back_attempt(
        &self,
        station: lockergrid_protocol::StationId,
    ) -> Result<(), ChangeError> {
        self.write(move |w, tx| Ok(w.give_back_attempt(tx, &station)?))
            .await
    }
}

impl Writer {
    pub(crate) fn admit_code_entry(
        &mut self,
        tx: &mut Tx<'_>,
        attempt: CodeAttempt,
    ) -> Result<bool, ChangeError> {
        let admitted = match &attempt.event {
            Some(event) => {
                if self.is_applied(tx, &inbox_key(&attempt.station, event))? {
                    return Ok(false);
                }
                // A keypad event the locker sends again after a crash between this step and
                // the entry's outcome is counted once, not once per delivery.
                let admitted = format!("{}#admitted", inbox_key(&attempt.station, event));
                if self.is_applied(tx, &admitted)? {
                    return Ok(true);
                }
                Some(admitted)
            }
            None => None,
        };
        let Err(wait) = self.admit_attempt(tx, &attempt.station)? else {
            if let Some(admitted) = &admitted {
                self.mark_applied(tx, admitted)?;
            }
            return Ok(true);
        };
        let target = attempt.station.to_string();
        match attempt.event {
            Some(event) => {
                let settled = SettledEvent {
                    station: attempt.station,
                    event,
                    actor: attempt.actor,
                    action: "pickup".into(),
                    target,
                    outcome: "locked_out".into(),
                    decided_by: None,
                };
                self.settle_event(tx, settled)?;
            }
            None => self.log(
                tx,
                Draft::new(attempt.actor, "pickup", &target, "locked_out"),
            )?,
        }
        Err(ChangeError::LockedOut(wait))
    }
}
