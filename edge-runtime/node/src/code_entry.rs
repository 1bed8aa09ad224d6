//! A code entered at a station — on its locker's keypad (an event) or on the station's screen
//! through the gateway's API — checked the same way at every node: the station's lock-out after
//! repeated wrong codes, the code itself, then the site's rules; an accepted pickup code becomes
//! an unlock command for its parcel's compartment, an accepted drop-off code one for the free
//! compartment its return fits, and the code is spent when the door closes again.

use crate::{Denied, Node, UNLOCK_VALID};
use lockergrid_model::{AccessAttempt, AccessMethod, AccessRole};
use lockergrid_model::{Actor, CommandRecord, DecidedBy};
use lockergrid_protocol::{CompartmentId, PickupCode, StationId};
use lockergrid_store::{
    ChangeError, CodeAttempt, EnteredCode, PickupUnlock, SettledEvent, StoreError,
};
use std::time::Duration;

/// A code typed at a station.
#[derive(Debug, Clone)]
pub struct CodeEntry {
    /// Where.
    pub station: StationId,
    /// What was typed, or its hash.
    pub code: Entered,
    /// The locker event that carried it (applied once), or `None` for the station's screen.
    pub event: Option<String>,
    /// Who typed it: the locker, or the station's screen.
    pub actor: Actor,
    /// Whether the station's locker is connected: an unlock sent now can be expected to arrive.
    pub locker_online: bool,
}

/// A code as a node receives it.
#[derive(Debug, Clone)]
pub enum Entered {
    /// As typed or read from a QR code (the station's screen, a locker without a code key).
    Typed(String),
    /// Hashed by the locker with its station's code key (hex); the code never left the keypad.
    Hashed(String),
}

impl Entered {
    /// The code to look up, if it is one: eight digits, or 64 hex digits of a keyed hash.
    fn parse(&self) -> Option<EnteredCode> {
        match self {
            Entered::Typed(text) => PickupCode::parse(text).ok().map(EnteredCode::Typed),
            Entered::Hashed(hex) => lockergrid_protocol::from_hex::<32>(hex)
                .map(|bytes| EnteredCode::Hashed(lockergrid_protocol::to_hex(&bytes))),
        }
    }
}

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

impl Node {
    /// Checks `entry` and, if its code opens something, issues the unlock command for the caller
    /// to send. `Ok(None)` when the keypad event that carried it was applied before. Every
    /// refusal but [`CodeRefused::Failed`] is in the access log (once per locker event).
    pub async fn enter_code(&self, entry: CodeEntry) -> Result<Option<CommandRecord>, CodeRefused> {
        let station = &entry.station;
        let attempt = CodeAttempt {
            station: station.clone(),
            event: entry.event.clone(),
            actor: entry.actor.clone(),
        };
        // Checked and counted before the code is even parsed, in one write: however many
        // entries are in flight, no more are looked at than the station's budget allows.
        match self.store.admit_code_entry(attempt.clone()).await {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(ChangeError::LockedOut(wait)) => return Err(CodeRefused::Locked(wait)),
            Err(e) => return Err(CodeRefused::Failed(e)),
        }
        let Some(code) = entry.code.parse() else {
            let recorded = self.store.reject_code(attempt).await;
            recorded.map_err(|e| CodeRefused::Failed(e.into()))?;
            return Err(self.rejected(station));
        };
        let decided_by = match self.opens(station, &code)? {
            Some((target, compartment)) => {
                Some(self.site_rules(&entry, &target, compartment).await?)
            }
            None => None,
        };
        if decided_by.is_some() && !entry.locker_online {
            self.give_back(station).await?;
            self.note(&entry, station.as_str(), "locker_offline", None)
                .await?;
            return Err(CodeRefused::LockerOffline);
        }
        let request = PickupUnlock {
            station: station.clone(),
            code,
            event: entry.event.clone(),
            actor: entry.actor.clone(),
            decided_by,
            valid: UNLOCK_VALID,
        };
        match self.store.unlock_for_pickup(request).await {
            Ok(command) => Ok(command),
            Err(ChangeError::CodeRejected) => Err(self.rejected(station)),
            Err(e @ ChangeError::Store(_)) => Err(CodeRefused::Failed(e)),
            Err(refused) => {
                self.give_back(station).await?;
                let outcome = refused.to_string();
                self.note(&entry, station.as_str(), &outcome, None).await?;
                Err(CodeRefused::Conflict(outcome))
            }
        }
    }

    /// What a recorded wrong code at `station` answers: how many attempts are left before the
    /// next one has to wait.
    fn rejected(&self, station: &StationId) -> CodeRefused {
        match self.store.lockout(station) {
            Ok(lockout) => CodeRefused::Rejected {
                attempts_left: lockout.attempts_left(self.store.now()) as usize,
            },
            Err(e) => CodeRefused::Failed(e.into()),
        }
    }

    /// Gives back the admitted attempt of a right code that opened nothing.
    async fn give_back(&self, station: &StationId) -> Result<(), CodeRefused> {
        self.store
            .give_back_attempt(station.clone())
            .await
            .map_err(CodeRefused::Failed)
    }

    /// What a valid code at `station` would open: its parcel's compartment, or the free
    /// compartment its return would be dropped off in; with the parcel or return it is for.
    /// Site rules are asked only about such a code.
    fn opens(
        &self,
        station: &StationId,
        code: &EnteredCode,
    ) -> Result<Option<(String, CompartmentId)>, CodeRefused> {
        let failed = |e: StoreError| CodeRefused::Failed(e.into());
        if let Some(parcel) = self.store.parcel_for_code(station, code).map_err(failed)? {
            return Ok(Some((parcel.id.to_string(), parcel.compartment_id)));
        }
        let drop_off = self.store.return_for_code(station, code).map_err(failed)?;
        Ok(drop_off.and_then(|(r, compartment)| Some((r.id.to_string(), compartment?))))
    }

    /// Asks the station's site rules about a code that opens `compartment` for `target`: who
    /// allowed it, or the recorded denial.
    async fn site_rules(
        &self,
        entry: &CodeEntry,
        target: &str,
        compartment: CompartmentId,
    ) -> Result<DecidedBy, CodeRefused> {
        let at = self.store.now();
        let attempt = AccessAttempt {
            station: entry.station.clone(),
            climate_controlled: self.climate_controlled(&entry.station, &compartment),
            compartment,
            role: AccessRole::Customer,
            method: AccessMethod::PickupCode,
            at,
            local_minute: self.local_minute_at(at),
        };
        match self.check_access(&attempt).await {
            Ok(decided_by) => Ok(decided_by),
            Err(Denied { reason, decided_by }) => {
                tracing::info!(station = %entry.station, %reason, "code denied by site rules");
                self.give_back(&entry.station).await?;
                let outcome = format!("denied by site rules: {reason}");
                self.note(entry, target, &outcome, Some(decided_by)).await?;
                Err(CodeRefused::Denied(reason))
            }
        }
    }

    /// Writes what an entry that opened nothing did to the access log: once per locker event
    /// (through the inbox), or as a plain entry for the station's screen.
    async fn note(
        &self,
        entry: &CodeEntry,
        target: &str,
        outcome: &str,
        decided_by: Option<DecidedBy>,
    ) -> Result<(), CodeRefused> {
        let written = match &entry.event {
            Some(event) => {
                let settled = SettledEvent {
                    station: entry.station.clone(),
                    event: event.clone(),
                    actor: entry.actor.clone(),
                    action: "pickup".into(),
                    target: target.into(),
                    outcome: outcome.into(),
                    decided_by,
                };
                self.store.settle_event(settled).await.map(drop)
            }
            None => {
                self.store
                    .record(entry.actor.clone(), "pickup", target, outcome, decided_by)
                    .await
            }
        };
        written.map_err(|e| CodeRefused::Failed(e.into()))
    }
}
