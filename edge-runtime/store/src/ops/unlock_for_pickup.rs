//! A code typed at a station: the unlock command for the parcel or return it opens, or its
//! refusal, applied once per locker event.

use crate::access_log::Draft;
use crate::commands::Issue;
use crate::reservations::advance;
use crate::tables::inbox_key;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, CodeAttempt, PickupUnlock, Store};
use lockergrid_model::{CommandRecord, UnlockFor};
use lockergrid_protocol::ParcelEvent;

impl Store {
    /// Checks a pickup code and issues the unlock command for its parcel's compartment; the code
    /// is spent when the locker reports the door closed again. `None` when the keypad event was
    /// applied before.
    pub async fn unlock_for_pickup(
        &self,
        request: PickupUnlock,
    ) -> Result<Option<CommandRecord>, ChangeError> {
        self.write(move |w, tx| w.unlock_for_pickup(tx, request))
            .await
    }
}

impl Writer {
    /// Checks an admitted pickup code and issues the unlock of its parcel's compartment (or the
    /// free compartment of its return), giving the attempt back; the code is spent when the door
    /// closes. `None` when the keypad event was applied before.
    pub(crate) fn unlock_for_pickup(
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
        let hash = self.entered_hash(&request.station, &request.code);
        let Some(code) = self.active_code(tx, &request.station, &hash)? else {
            // The caller records a refusal, as for a pickup that cannot happen.
            if let Some(command) = self.unlock_for_drop_off(tx, &request, &hash)? {
                if let Some(key) = &key {
                    self.mark_applied(tx, key)?;
                }
                self.give_back_attempt(tx, &request.station)?;
                return Ok(Some(command));
            }
            let attempt = CodeAttempt {
                station: request.station,
                event: request.event,
                actor: request.actor,
            };
            self.reject_code(tx, attempt)?;
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
        self.give_back_attempt(tx, &request.station)?;
        let outcome = format!("pickup: command {} to {}", record.id, record.compartment_id);
        self.log(
            tx,
            Draft::new(request.actor, "unlock", parcel.id.as_str(), &outcome)
                .decided_by(request.decided_by),
        )?;
        Ok(Some(record))
    }
}
