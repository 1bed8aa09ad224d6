//! A locker's events, applied once through the node's inbox: a code typed on its keypad, a door
//! opening and closing, a pickup or a refusal it decided alone, its tamper switch, its self-test, its firmware updates. What the node then does
//! outside the store (alerts, answering a courier who waits for the door) is the caller's, from
//! the [`Effect`] it is handed.

use crate::{Authority, CodeEntry, CodeRefused, Entered, Node, locker_actor};
use lockergrid_model::{Actor, CommandRecord, Reading, Severity, StationStatus, Telemetry, World};
use lockergrid_protocol::StationId;
use lockergrid_protocol::firmware::FirmwareVersion;
use lockergrid_protocol::message::{DeviceEvent, EventMessage, FirmwareOutcome};
use lockergrid_store::{
    AlertDraft, Applied, ChangeError, DOOR_OPENED_UNRELEASED, DoorClosed, DoorClosedEvent,
    LockdownChange, OfflinePickup, OfflineRejection, RolloutReport, SelfTest, SelfTested,
    SettledEvent, StatusChange,
};

/// The source of the alerts a locker's firmware reports raise.
const FIRMWARE_SOURCE: &str = "firmware";

/// What became of a locker's event at this node.
#[derive(Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "one per locker event, moved once to its caller"
)]
pub enum Handled {
    /// It was applied before (its acknowledgement was lost): acknowledge it again.
    Duplicate,
    /// It is applied and recorded now: acknowledge it, then see to the effect.
    Applied(Effect),
    /// This node may not decide it now (see [`crate::Authority`]); whoever may, will.
    NotOurs,
    /// Nothing was recorded (the store failed); the locker keeps it and sends it again.
    Failed(ChangeError),
}

/// What an applied event leaves for the node to do beyond the store.
#[derive(Debug)]
pub enum Effect {
    /// Nothing.
    None,
    /// A code opened a compartment: the unlock command to send.
    Unlock(CommandRecord),
    /// A door closed after the unlock `command` (if the locker named one).
    DoorClosed {
        /// The unlock that had released it.
        command: Option<String>,
        /// What its closing completed.
        closed: DoorClosed,
    },
    /// A pickup the locker decided alone disagrees with what the node knew (recorded).
    OfflineConflict(String),
    /// The tamper switch tripped (the station is out of service now) or was reset.
    Tamper {
        /// Tripped or reset.
        tripped: bool,
    },
    /// The locker's self-test was recorded.
    SelfTest(SelfTested),
    /// The locker reported a step of a firmware update (recorded in the access log).
    Firmware {
        /// The image's version.
        version: FirmwareVersion,
        /// The image's SHA-256.
        sha256: String,
        /// What became of it.
        outcome: FirmwareOutcome,
        /// The locker's reason code, for a refusal or a roll-back.
        reason: Option<String>,
    },
}

impl Node {
    /// A locker that refused or rolled back an image raises a `firmware-failed` alert; one that
    /// confirms an image resolves it.
    async fn firmware_alert(
        &self,
        station: &StationId,
        version: FirmwareVersion,
        outcome: FirmwareOutcome,
        reason: Option<&str>,
        actor: Actor,
    ) -> Result<(), ChangeError> {
        let open: Vec<String> = self
            .store
            .open_alerts_at(station)?
            .into_iter()
            .filter(|a| a.source == FIRMWARE_SOURCE)
            .map(|a| a.id)
            .collect();
        let (raise, resolve) = match outcome {
            FirmwareOutcome::Refused | FirmwareOutcome::RolledBack if open.is_empty() => {
                let draft = AlertDraft {
                    station: station.clone(),
                    source: FIRMWARE_SOURCE.into(),
                    code: "firmware-failed".into(),
                    severity: Severity::Warning,
                    message: format!(
                        "firmware {version} {}: {}",
                        outcome.as_str(),
                        reason.unwrap_or("no reason given")
                    ),
                    decided_by: None,
                };
                (vec![draft], Vec::new())
            }
            FirmwareOutcome::Confirmed if !open.is_empty() => (Vec::new(), open),
            _ => return Ok(()),
        };
        self.store.record_alerts(raise, resolve, actor).await?;
        Ok(())
    }

    /// Applies `event` of `station`'s locker once, if this node decides it now.
    pub async fn on_event(&self, station: &StationId, event: EventMessage) -> Handled {
        match self.store.event_applied(station, &event.id) {
            Ok(true) => return Handled::Duplicate,
            Ok(false) => {}
            Err(e) => return Handled::Failed(e.into()),
        }
        // Only an edge node's authority turns on the command a door names; the gateway decides
        // every door without reading it here.
        let unlocked = match &event.event {
            DeviceEvent::DoorClosed {
                unlocked_by: Some(command),
                ..
            } if matches!(self.authority, Authority::Edge(_)) => {
                match self.store.command(command) {
                    Ok(record) => record,
                    Err(e) => return Handled::Failed(e.into()),
                }
            }
            _ => None,
        };
        if !self.authority.decides(&event.event, unlocked.as_ref()) {
            return Handled::NotOurs;
        }
        match self.apply(station, event).await {
            Ok(effect) => Handled::Applied(effect),
            Err(e) => Handled::Failed(e),
        }
    }

    async fn apply(&self, station: &StationId, event: EventMessage) -> Result<Effect, ChangeError> {
        let actor = locker_actor(station.as_str());
        let settled = |action: &str, target: &str, outcome: &str| SettledEvent {
            station: station.clone(),
            event: event.id.clone(),
            actor: actor.clone(),
            action: action.into(),
            target: target.into(),
            outcome: outcome.into(),
            decided_by: None,
        };
        match &event.event {
            DeviceEvent::CodeEntered { code } => {
                let code = Entered::Typed(code.clone());
                self.keypad(station, &event.id, actor, code).await
            }
            DeviceEvent::CodeHashed { code_hash } => {
                let code = Entered::Hashed(code_hash.clone());
                self.keypad(station, &event.id, actor, code).await
            }
            DeviceEvent::DoorClosed {
                compartment,
                unlocked_by,
            } => {
                let closed = DoorClosedEvent {
                    station: station.clone(),
                    event: event.id.clone(),
                    compartment: compartment.clone(),
                    unlocked_by: unlocked_by.clone(),
                    actor: actor.clone(),
                };
                let closed = self.store.door_closed(closed).await?;
                Ok(Effect::DoorClosed {
                    command: unlocked_by.clone(),
                    closed,
                })
            }
            DeviceEvent::DoorOpened {
                compartment,
                unreleased,
            } => {
                // An unreleased door counts towards the station's day (a flapping sensor).
                let outcome = if *unreleased {
                    DOOR_OPENED_UNRELEASED
                } else {
                    "opened"
                };
                let opened = settled("door_opened", compartment.as_str(), outcome);
                self.store.settle_event(opened).await?;
                Ok(Effect::None)
            }
            DeviceEvent::OfflinePickup {
                compartment,
                code_hash,
            } => {
                let pickup = OfflinePickup {
                    station: station.clone(),
                    event: event.id.clone(),
                    compartment: compartment.clone(),
                    code_hash: code_hash.clone(),
                    actor: actor.clone(),
                };
                Ok(match self.store.offline_pickup(pickup).await? {
                    Applied::Conflict(why) => Effect::OfflineConflict(why),
                    Applied::Applied | Applied::Duplicate | Applied::OutOfOrder { .. } => {
                        Effect::None
                    }
                })
            }
            DeviceEvent::CodeRejectedOffline {
                lockout,
                locked_out,
            } => {
                let rejection = OfflineRejection {
                    station: station.clone(),
                    event: event.id.clone(),
                    actor: actor.clone(),
                    lockout: *lockout,
                    locked_out: *locked_out,
                };
                self.store.offline_rejection(rejection).await?;
                Ok(Effect::None)
            }
            DeviceEvent::Tamper { tripped } => {
                if *tripped {
                    self.out_of_service(station, &event.id, actor.clone())
                        .await?;
                    self.lock_down_if_told(station, event.at, actor.clone())
                        .await?;
                }
                let outcome = if *tripped { "tripped" } else { "reset" };
                self.store
                    .settle_event(settled("tamper", station.as_str(), outcome))
                    .await?;
                Ok(Effect::Tamper { tripped: *tripped })
            }
            DeviceEvent::SelfTest { failures } => {
                let test = SelfTest {
                    station: station.clone(),
                    event: event.id.clone(),
                    failures: failures.clone(),
                    actor,
                };
                Ok(Effect::SelfTest(self.store.device_self_test(test).await?))
            }
            DeviceEvent::Firmware {
                version,
                sha256,
                outcome,
                reason,
                detail: _,
            } => {
                let said = match reason {
                    Some(reason) => format!("{}: {reason}", outcome.as_str()),
                    None => outcome.as_str().to_owned(),
                };
                let target = format!("firmware {version}");
                self.store
                    .settle_event(settled("firmware", &target, &said))
                    .await?;
                // The rollouts of that image hear what became of it at this locker.
                let report = RolloutReport {
                    station: station.clone(),
                    sha256: sha256.clone(),
                    outcome: *outcome,
                    reason: reason.clone(),
                };
                self.store.rollout_report(report, actor.clone()).await?;
                self.firmware_alert(
                    station,
                    *version,
                    *outcome,
                    reason.as_deref(),
                    actor.clone(),
                )
                .await?;
                Ok(Effect::Firmware {
                    version: *version,
                    sha256: sha256.clone(),
                    outcome: *outcome,
                    reason: reason.clone(),
                })
            }
        }
    }

    /// A code from a locker's keypad, carried by its event `event`.
    async fn keypad(
        &self,
        station: &StationId,
        event: &str,
        actor: Actor,
        code: Entered,
    ) -> Result<Effect, ChangeError> {
        let entry = CodeEntry {
            station: station.clone(),
            code,
            event: Some(event.to_owned()),
            actor,
            // It just spoke.
            locker_online: true,
        };
        match self.enter_code(entry).await {
            Ok(Some(command)) => Ok(Effect::Unlock(command)),
            Ok(None) => Ok(Effect::None),
            Err(CodeRefused::Failed(e)) => Err(e),
            Err(refused) => {
                tracing::info!(%station, ?refused, "code entry opened nothing");
                Ok(Effect::None)
            }
        }
    }

    /// Puts a tripped tamper switch to the station's site rules and locks the station down if
    /// they say so (built in, and when they fail: they do), before the alarm is recorded as
    /// applied.
    async fn lock_down_if_told(
        &self,
        station: &StationId,
        at: lockergrid_protocol::Timestamp,
        actor: Actor,
    ) -> Result<(), ChangeError> {
        let reading = Reading {
            station: station.clone(),
            compartment: None,
            climate_controlled: false,
            at,
            value: Telemetry::Tamper(true),
        };
        let assessed = self.plugins.assess(&reading).await;
        let decided_by = assessed.decider.decided_by(World::SiteRules);
        if let Some(alert) = assessed.answer.into_iter().find(|a| a.lock_down) {
            let change = LockdownChange::Begin {
                reason: format!("{}: {}", alert.code, alert.message),
                decided_by: Some(decided_by),
            };
            self.store
                .change_lockdown(station.clone(), change, actor)
                .await?;
        }
        Ok(())
    }

    /// Takes a station out of service after a tamper alarm, before the alarm is recorded as
    /// applied: a crash in between only means doing it again when the locker resends it.
    async fn out_of_service(
        &self,
        station: &StationId,
        event: &str,
        actor: Actor,
    ) -> Result<(), ChangeError> {
        let change = StatusChange {
            station: station.clone(),
            from: vec![StationStatus::Active, StationStatus::Offline],
            to: StationStatus::OutOfService,
            actor,
            reason: format!("tamper alarm, event {event}"),
        };
        self.store.set_station_status(change).await?;
        Ok(())
    }
}
