//! A code entered at a station — on its locker's keypad (an event) or through the API on the
//! station's screen — checked the same way: the station's lock-out after repeated wrong codes,
//! the code itself, then the site's rules; an accepted pickup code becomes an unlock command for
//! its parcel's compartment, an accepted drop-off code one for the free compartment its return
//! fits, and the code is spent when the door closes again.

use super::UNLOCK_VALID;
use crate::api::App;
use lockergrid_model::World;
use lockergrid_model::{AccessAttempt, AccessDecision, AccessMethod, AccessRole};
use lockergrid_model::{Actor, CommandRecord, DecidedBy};
use lockergrid_protocol::{PickupCode, StationId};
use lockergrid_store::{ChangeError, PickupUnlock, SettledEvent, StoreError};
use std::time::Duration;

/// Why a code opened nothing.
#[derive(Debug)]
pub enum CodeRefused {
    /// The station is locked after repeated wrong codes, for this long.
    Locked(Duration),
    /// Wrong, spent or expired; this many attempts are left before the lock.
    Rejected {
        /// Attempts left.
        attempts_left: usize,
    },
    /// The site's rules do not allow it now, for this reason.
    Denied(String),
    /// The code is valid but the station's locker is not connected: nothing would open, and the
    /// code stays unspent.
    LockerOffline,
    /// The code is valid but its parcel cannot be picked up (recorded).
    Conflict(String),
    /// The store failed; nothing was recorded.
    Failed(ChangeError),
}

/// What is written to the access log about an entry that opened nothing: once per locker event
/// (through the inbox), or as a plain entry for the API.
struct Note<'a> {
    app: &'a App,
    station: &'a StationId,
    event: Option<&'a str>,
    actor: &'a Actor,
}

impl Note<'_> {
    async fn write(
        &self,
        action: &str,
        target: &str,
        outcome: &str,
        decided_by: Option<DecidedBy>,
    ) -> Result<(), ChangeError> {
        match self.event {
            Some(event) => {
                let settled = SettledEvent {
                    station: self.station.clone(),
                    event: event.to_owned(),
                    actor: self.actor.clone(),
                    action: action.into(),
                    target: target.into(),
                    outcome: outcome.into(),
                    decided_by,
                };
                self.app.store.settle_event(settled).await?;
            }
            None => {
                self.app
                    .store
                    .record(self.actor.clone(), action, target, outcome, decided_by)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Checks `code` at `station` and, if it opens something, issues the unlock command and hands it
/// to the node. `Ok(None)` when the keypad event `event` was applied before.
pub async fn enter_code(
    app: &App,
    station: &StationId,
    code: &str,
    event: Option<String>,
    actor: Actor,
) -> Result<Option<CommandRecord>, CodeRefused> {
    let now = app.store.now();
    let note = Note {
        app,
        station,
        event: event.as_deref(),
        actor: &actor,
    };
    if let Some(wait) = app.code_attempts.locked(station, now) {
        note.write("pickup", station.as_str(), "locked_out", None)
            .await
            .map_err(CodeRefused::Failed)?;
        return Err(CodeRefused::Locked(wait));
    }
    let Ok(code) = PickupCode::parse(code) else {
        note.write("pickup", station.as_str(), "code_rejected", None)
            .await
            .map_err(CodeRefused::Failed)?;
        return Err(CodeRefused::Rejected {
            attempts_left: app.code_attempts.fail(station, now),
        });
    };
    // Site rules are asked only about a code that would open something: a parcel's
    // compartment, or the free compartment a return would be dropped off in.
    let failed = |e: StoreError| CodeRefused::Failed(e.into());
    let opens = match app.store.parcel_for_code(station, &code).map_err(failed)? {
        Some(parcel) => Some((parcel.id.to_string(), parcel.compartment_id)),
        None => app
            .store
            .return_for_code(station, &code)
            .map_err(failed)?
            .and_then(|(r, compartment)| Some((r.id.to_string(), compartment?))),
    };
    let decided_by = match opens {
        Some((target, compartment)) => {
            let attempt = AccessAttempt {
                station: station.clone(),
                compartment,
                role: AccessRole::Customer,
                method: AccessMethod::PickupCode,
                at: now,
                local_minute: app.local_minute(),
                climate_controlled: false,
            };
            let checked = app.plugins.check_access(&attempt).await;
            let decided_by = checked.decider.decided_by(World::SiteRules);
            if let AccessDecision::Deny(reason) = checked.answer {
                let outcome = format!("denied by site rules: {reason}");
                note.write("pickup", &target, &outcome, Some(decided_by))
                    .await
                    .map_err(CodeRefused::Failed)?;
                return Err(CodeRefused::Denied(reason));
            }
            Some(decided_by)
        }
        None => None,
    };
    if decided_by.is_some() && !app.devices.online(station, now) {
        note.write("pickup", station.as_str(), "locker_offline", None)
            .await
            .map_err(CodeRefused::Failed)?;
        return Err(CodeRefused::LockerOffline);
    }
    let request = PickupUnlock {
        station: station.clone(),
        code,
        event: event.clone(),
        actor: actor.clone(),
        decided_by,
        valid: UNLOCK_VALID,
    };
    match app.store.unlock_for_pickup(request).await {
        Ok(Some(command)) => {
            app.devices.send(command.clone());
            Ok(Some(command))
        }
        Ok(None) => Ok(None),
        Err(ChangeError::CodeRejected) => Err(CodeRefused::Rejected {
            attempts_left: app.code_attempts.fail(station, now),
        }),
        Err(e @ ChangeError::Store(_)) => Err(CodeRefused::Failed(e)),
        Err(refused) => {
            let outcome = refused.to_string();
            note.write("pickup", station.as_str(), &outcome, None)
                .await
                .map_err(CodeRefused::Failed)?;
            Err(CodeRefused::Conflict(outcome))
        }
    }
}
