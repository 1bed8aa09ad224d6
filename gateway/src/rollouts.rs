//! Firmware rollouts at the gateway (docs/fleet.md "Rollouts"): created over the registry's
//! active lockers of the image's model (all of the region, or the stations named), then moved
//! on once a second by [`lockergrid_model::plan`] — offers to lockers that are connected, idle
//! and inside their site's update hours, waves advanced after their soak, thresholds judged —
//! with every step recorded in the store before an offer leaves. Everything lives in the
//! store, so a gateway killed mid-rollout carries on from where it was.

use crate::devices::Devices;
use crate::firmware::{FirmwareError, FirmwareStore};
use lockergrid_model::{
    Actor, DeviceStatus, OnError, RolloutRecord, RolloutStatus, RolloutTarget, TargetState, Wave,
    assign_waves, check_waves, plan,
};
use lockergrid_plugin_host::{PluginHost, UpdateWhen};
use lockergrid_protocol::firmware::{FirmwareVersion, SignedManifest};
use lockergrid_protocol::message::{FirmwareDownlink, FirmwareOutcome};
use lockergrid_protocol::{StationId, Timestamp};
use lockergrid_store::{ChangeError, RolloutReport, Store, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the rollouts move on.
const STEP: Duration = Duration::from_secs(1);

/// Why a rollout was not created.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
    /// No such image.
    #[error("no firmware image {model} {version} is held; upload it first")]
    NoImage {
        /// Its model.
        model: String,
        /// Its version.
        version: FirmwareVersion,
    },
    /// The firmware store failed.
    #[error(transparent)]
    Firmware(#[from] FirmwareError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] ChangeError),
}

impl From<StoreError> for RolloutError {
    fn from(e: StoreError) -> RolloutError {
        RolloutError::Store(e.into())
    }
}

/// What an operator asks for.
#[derive(Debug, Clone)]
pub struct RolloutRequest {
    /// The image's model.
    pub model: String,
    /// Its version.
    pub version: FirmwareVersion,
    /// The stations to update (none: every station of the region).
    pub stations: Option<Vec<StationId>>,
    /// The waves.
    pub waves: Vec<Wave>,
    /// Per-locker timeout, seconds.
    pub timeout_s: u64,
    /// Lockers updating at once.
    pub max_parallel: u32,
    /// Lockers starting in any minute (none: no such limit).
    pub per_minute: Option<u32>,
}

/// The waves a rollout gets unless its request names them: a 1 % canary that aborts on any
/// failure, then 10 %, 50 % and the rest, each pausing when more than 5 % of at least 5 done
/// failed; 10 minutes' soak each.
pub fn default_waves() -> Vec<Wave> {
    let wave = |percent, error_percent, min_done, on_error| Wave {
        percent,
        soak_s: 600,
        advance_percent: 100,
        error_percent,
        min_done,
        on_error,
    };
    vec![
        wave(1, 0, 1, OnError::Abort),
        wave(10, 5, 5, OnError::Pause),
        wave(50, 5, 5, OnError::Pause),
        wave(100, 5, 5, OnError::Pause),
    ]
}

/// The gateway's rollouts.
pub struct Rollouts {
    store: Store,
    devices: Arc<Devices>,
    firmware: Arc<FirmwareStore>,
    plugins: Arc<PluginHost>,
    utc_offset_minutes: i32,
    /// Stations whose site rules deferred their update, until when.
    deferred: Mutex<HashMap<StationId, Timestamp>>,
}

fn gateway_actor() -> Actor {
    Actor {
        subject: "gateway".into(),
        role: "rollout".into(),
    }
}

impl Rollouts {
    /// Rollouts over `store`, sending through `devices`.
    pub fn new(
        store: Store,
        devices: Arc<Devices>,
        firmware: Arc<FirmwareStore>,
        plugins: Arc<PluginHost>,
        utc_offset_minutes: i32,
    ) -> Rollouts {
        Rollouts {
            store,
            devices,
            firmware,
            plugins,
            utc_offset_minutes,
            deferred: Mutex::new(HashMap::new()),
        }
    }

    /// Creates a rollout of a held image over the registry's active lockers of its model.
    pub async fn create(
        &self,
        request: RolloutRequest,
        actor: Actor,
    ) -> Result<RolloutRecord, RolloutError> {
        check_waves(&request.waves).map_err(RolloutError::Invalid)?;
        if request.max_parallel == 0 || request.timeout_s == 0 || request.per_minute == Some(0) {
            return Err(RolloutError::Invalid(
                "max_parallel, max_per_minute and timeout_s must be at least 1".into(),
            ));
        }
        let manifest: SignedManifest = self
            .firmware
            .find(&request.model, request.version)?
            .ok_or_else(|| RolloutError::NoImage {
                model: request.model.clone(),
                version: request.version,
            })?;
        let wanted: Option<HashSet<&StationId>> =
            request.stations.as_ref().map(|s| s.iter().collect());
        let devices = self.store.devices()?;
        if let Some(wanted) = &wanted {
            for station in wanted {
                let known = devices.iter().any(|d| d.station == **station);
                if !known {
                    return Err(RolloutError::Invalid(format!(
                        "station {station} has no device in the registry"
                    )));
                }
            }
        }
        let stations: Vec<StationId> = devices
            .iter()
            .filter(|d| d.status == DeviceStatus::Active && d.model == manifest.manifest.model)
            .filter(|d| wanted.as_ref().is_none_or(|w| w.contains(&d.station)))
            .map(|d| d.station.clone())
            .collect();
        if stations.is_empty() {
            return Err(RolloutError::Invalid(format!(
                "no active locker of model {} in the selection",
                manifest.manifest.model
            )));
        }
        let now = self.store.now();
        let id = format!("ro_{}", uuid::Uuid::now_v7().simple());
        let record = RolloutRecord {
            id: id.clone(),
            revision: 0,
            manifest,
            waves: request.waves.clone(),
            timeout_s: request.timeout_s,
            max_parallel: request.max_parallel,
            per_minute: request.per_minute,
            status: RolloutStatus::Running,
            wave: 0,
            soak_since: None,
            reason: None,
            created_at: now,
            created_by: actor.subject.clone(),
            updated_at: now,
        };
        let targets = assign_waves(&request.waves, &stations)
            .into_iter()
            .map(|(station, wave)| RolloutTarget {
                rollout: id.clone(),
                station,
                wave,
                state: TargetState::Pending,
                since: now,
                offered_at: None,
                first_offered_at: None,
                reason: None,
            })
            .collect();
        Ok(self.store.create_rollout(record, targets, actor).await?)
    }

    /// Moves every rollout on once a second until `shutdown`.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(STEP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if let Err(e) = self.step().await {
                        tracing::error!(error = %e, "rollouts not moved on");
                    }
                }
            }
        }
    }

    /// One round: each rollout that has something left to do is planned and recorded, then
    /// its offers and cancellations go out.
    pub async fn step(&self) -> Result<(), StoreError> {
        let rollouts = self.store.rollouts()?;
        let busy: HashSet<StationId> = self
            .store
            .pending_commands()?
            .into_iter()
            .map(|c| c.station_id)
            .collect();
        let now = self.store.now();
        for rollout in rollouts {
            let targets = self.store.rollout_targets(&rollout.id)?;
            self.count(&rollout, &targets);
            let open = targets
                .iter()
                .any(|t| matches!(t.state, TargetState::Pending | TargetState::Offered));
            if rollout.status == RolloutStatus::Completed || (rollout.status.is_final() && !open) {
                continue;
            }
            if self.confirm_by_heartbeat(&rollout, &targets).await? {
                // The revision moved; the plan is made next round on what is stored now.
                continue;
            }
            let ready = self.ready(&rollout, &targets, &busy, now).await;
            let ready = |station: &StationId| ready.contains(station);
            let planned = plan(&rollout, &targets, now, &ready);
            if planned.is_empty() {
                continue;
            }
            let offers = planned.offer.clone();
            let cancels = planned.cancel.clone();
            match self
                .store
                .apply_rollout_plan(
                    rollout.id.clone(),
                    rollout.revision,
                    planned,
                    gateway_actor(),
                )
                .await
            {
                Ok(_) => {}
                Err(ChangeError::Conflict { .. }) => continue,
                Err(ChangeError::Store(e)) => return Err(e),
                Err(e) => {
                    tracing::error!(rollout = %rollout.id, error = %e, "rollout step refused");
                    continue;
                }
            }
            for station in offers {
                self.devices.send_firmware(
                    station,
                    FirmwareDownlink::Offer {
                        manifest: rollout.manifest.clone(),
                    },
                );
            }
            for station in cancels {
                self.devices.send_firmware(
                    station,
                    FirmwareDownlink::Cancel {
                        sha256: rollout.manifest.manifest.sha256.clone(),
                    },
                );
            }
        }
        Ok(())
    }

    /// A locker not yet confirmed whose heartbeat names the image's version, confirmed (not on
    /// trial), runs it already (an offer whose answer was lost, or one it had installed
    /// before): confirmed. `true` when one was.
    async fn confirm_by_heartbeat(
        &self,
        rollout: &RolloutRecord,
        targets: &[RolloutTarget],
    ) -> Result<bool, StoreError> {
        let version = rollout.manifest.manifest.version.to_string();
        let mut moved = false;
        for t in targets {
            if !matches!(t.state, TargetState::Pending | TargetState::Offered) {
                continue;
            }
            let runs = self
                .devices
                .health(&t.station)
                .telemetry
                .is_some_and(|h| h.firmware == version && !h.on_trial);
            if runs {
                let report = RolloutReport {
                    station: t.station.clone(),
                    sha256: rollout.manifest.manifest.sha256.clone(),
                    outcome: FirmwareOutcome::Confirmed,
                    reason: None,
                };
                moved |= !self
                    .store
                    .rollout_report(report, gateway_actor())
                    .await?
                    .is_empty();
            }
        }
        Ok(moved)
    }

    /// The lockers of `rollout` that can take an offer now: connected, no door open, no
    /// command waiting for them, and their site rules allow an update at this hour (asked only
    /// for as many as may start, and not again before a deferral ends).
    async fn ready(
        &self,
        rollout: &RolloutRecord,
        targets: &[RolloutTarget],
        busy: &HashSet<StationId>,
        now: Timestamp,
    ) -> HashSet<StationId> {
        let mut ready = HashSet::new();
        if rollout.status != RolloutStatus::Running {
            return ready;
        }
        let flying = targets.iter().filter(|t| t.state.in_flight()).count();
        let mut room = (rollout.max_parallel as usize).saturating_sub(flying);
        for t in targets {
            let wanted = match t.state {
                TargetState::Pending => room > 0,
                TargetState::Offered => true,
                _ => false,
            };
            if !wanted || t.wave > rollout.wave || !self.idle(&t.station, busy, now) {
                continue;
            }
            if !self.site_allows(&t.station, now).await {
                continue;
            }
            if t.state == TargetState::Pending {
                room -= 1;
            }
            ready.insert(t.station.clone());
        }
        ready
    }

    /// Connected, no door open, no command waiting.
    fn idle(&self, station: &StationId, busy: &HashSet<StationId>, now: Timestamp) -> bool {
        let health = self.devices.health(station);
        health.online(now)
            && !busy.contains(station)
            && health
                .telemetry
                .as_ref()
                .is_some_and(|t| t.doors_open.is_empty())
    }

    /// Whether `station`'s site rules let its locker install now; a deferral is remembered.
    async fn site_allows(&self, station: &StationId, now: Timestamp) -> bool {
        let until = self
            .deferred
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(station)
            .copied();
        if until.is_some_and(|u| now < u) {
            return false;
        }
        let minute = (now.millis() / 60_000) as i64 + i64::from(self.utc_offset_minutes);
        let local_minute = u16::try_from(minute.rem_euclid(24 * 60)).unwrap_or(0);
        let decided = self.plugins.may_update(station, now, local_minute).await;
        let mut deferred = self
            .deferred
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match decided.answer {
            UpdateWhen::Now => {
                deferred.remove(station);
                true
            }
            UpdateWhen::Defer(minutes) => {
                tracing::debug!(%station, minutes, "site rules defer the update");
                deferred.insert(
                    station.clone(),
                    Timestamp(now.millis() + u64::from(minutes) * 60_000),
                );
                false
            }
        }
    }

    /// Publishes a rollout's counts to the metrics.
    fn count(&self, rollout: &RolloutRecord, targets: &[RolloutTarget]) {
        let metrics = self.devices.metrics();
        for state in TargetState::ALL {
            let n = targets.iter().filter(|t| t.state == state).count();
            metrics
                .rollout_lockers
                .get_or_create(&crate::devices::RolloutLabels {
                    rollout: rollout.id.clone(),
                    state: state.as_str(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        metrics
            .rollout_wave
            .get_or_create(&crate::devices::RolloutIdLabel {
                rollout: rollout.id.clone(),
            })
            .set(i64::try_from(rollout.wave + 1).unwrap_or(i64::MAX));
    }
}
