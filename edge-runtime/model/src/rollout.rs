//! Firmware rollouts (docs/fleet.md "Rollouts"): one signed image over a selection of lockers
//! in waves, each with a soak time, an advance threshold (the confirmed share), an error
//! threshold that pauses or aborts (the failed share, once enough lockers are done), a
//! per-locker timeout that counts as a failure, a cap on lockers updating at once and one on
//! lockers starting in any minute. The
//! lockers of a wave are fixed when the rollout is created.
//!
//! [`plan`] is what a rollout does next, from its record, its targets and which lockers can take
//! an offer now; it decides, the gateway's rollout task carries it out and the store records it.

use lockergrid_protocol::firmware::SignedManifest;
use lockergrid_protocol::{StationId, Timestamp};
use serde::{Deserialize, Serialize};

/// How often an offer goes again to a locker that has not answered (a resend, after a broken
/// link or a restart of either side).
pub const OFFER_AGAIN_MS: u64 = 30_000;

/// What a wave does when its error threshold is crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Stop offering until an operator resumes.
    Pause,
    /// End the rollout.
    Abort,
}

/// One wave of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wave {
    /// The share of the selection updated once this wave is done, percent (cumulative: 1, 10,
    /// 50, 100).
    pub percent: u8,
    /// How long the wave's lockers run the image before the next wave starts, seconds.
    pub soak_s: u64,
    /// The share of the wave's lockers that must confirm before it counts as done, percent.
    pub advance_percent: u8,
    /// The share of failures among the wave's lockers done that crosses the error threshold,
    /// percent (0: any failure).
    pub error_percent: u8,
    /// How many lockers of the wave must be done (confirmed or failed) before the error
    /// threshold can fire (all of them in a smaller wave).
    pub min_done: u32,
    /// What crossing it does.
    pub on_error: OnError,
}

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    /// Offering to its current wave.
    Running,
    /// No new offers; lockers already updating finish.
    Paused,
    /// Ended early: no new offers, downloads cancelled, lockers on trial finish by themselves.
    Aborted,
    /// Every wave done and every locker answered.
    Completed,
}

impl RolloutStatus {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            RolloutStatus::Running => "running",
            RolloutStatus::Paused => "paused",
            RolloutStatus::Aborted => "aborted",
            RolloutStatus::Completed => "completed",
        }
    }

    /// Whether it can change no more.
    pub fn is_final(self) -> bool {
        matches!(self, RolloutStatus::Aborted | RolloutStatus::Completed)
    }
}

/// A rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutRecord {
    /// Its id.
    pub id: String,
    /// Bumped by every change; a change made on an older revision is refused.
    pub revision: u64,
    /// The image.
    pub manifest: SignedManifest,
    /// Its waves, in order.
    pub waves: Vec<Wave>,
    /// How long a locker has from its offer to confirm, seconds; longer is a failure.
    pub timeout_s: u64,
    /// At most this many lockers fetch or install at once.
    pub max_parallel: u32,
    /// At most this many lockers get their first offer in any minute (none: no such limit).
    #[serde(default)]
    pub per_minute: Option<u32>,
    /// Where it stands.
    pub status: RolloutStatus,
    /// The wave being offered (index into `waves`).
    pub wave: usize,
    /// When the current wave reached its advance threshold: its soak started.
    pub soak_since: Option<Timestamp>,
    /// Why it was paused or aborted.
    pub reason: Option<String>,
    /// When it was created.
    pub created_at: Timestamp,
    /// Who created it.
    pub created_by: String,
    /// Its last change.
    pub updated_at: Timestamp,
}

/// Where one locker of a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetState {
    /// Not offered yet.
    Pending,
    /// Offered; fetching.
    Offered,
    /// Installed and rebooted into it; on trial.
    Installed,
    /// Runs it, confirmed by its health check.
    Confirmed,
    /// Refused it, rolled back, or timed out.
    Failed,
    /// Never installed: the rollout was aborted first.
    Cancelled,
}

impl TargetState {
    /// Its name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Pending => "pending",
            TargetState::Offered => "offered",
            TargetState::Installed => "installed",
            TargetState::Confirmed => "confirmed",
            TargetState::Failed => "failed",
            TargetState::Cancelled => "cancelled",
        }
    }

    /// Every state.
    pub const ALL: [TargetState; 6] = [
        TargetState::Pending,
        TargetState::Offered,
        TargetState::Installed,
        TargetState::Confirmed,
        TargetState::Failed,
        TargetState::Cancelled,
    ];

    /// Whether the locker has answered for good.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TargetState::Confirmed | TargetState::Failed | TargetState::Cancelled
        )
    }

    /// Whether the locker is fetching or installing (counted against `max_parallel`).
    pub fn in_flight(self) -> bool {
        matches!(self, TargetState::Offered | TargetState::Installed)
    }
}

/// One locker of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutTarget {
    /// The rollout.
    pub rollout: String,
    /// The locker's station.
    pub station: StationId,
    /// Its wave.
    pub wave: usize,
    /// Where it stands.
    pub state: TargetState,
    /// Since when.
    pub since: Timestamp,
    /// When the offer last went out.
    pub offered_at: Option<Timestamp>,
    /// When the first offer went out.
    #[serde(default)]
    pub first_offered_at: Option<Timestamp>,
    /// The locker's reason code of a failure (`timeout` for one that did not answer in time).
    pub reason: Option<String>,
}

impl RolloutTarget {
    /// Its key in the store: rollout, then station.
    pub fn key(&self) -> String {
        RolloutTarget::key_of(&self.rollout, &self.station)
    }

    /// The key of `station` in `rollout`.
    pub fn key_of(rollout: &str, station: &StationId) -> String {
        format!("{rollout}/{station}")
    }
}

/// Splits `stations` into waves: the first `ceil(n × percent / 100)` lockers (cumulative) in
/// an order that is fixed by their ids but not alphabetical (so a canary is not always the
/// first station of a site).
pub fn assign_waves(waves: &[Wave], stations: &[StationId]) -> Vec<(StationId, usize)> {
    let mut order: Vec<&StationId> = stations.iter().collect();
    order.sort_by_key(|s| (fnv(s.as_str()), s.as_str().to_owned()));
    let n = order.len();
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    for (i, wave) in waves.iter().enumerate() {
        let end = if i + 1 == waves.len() {
            n
        } else {
            (n * usize::from(wave.percent.min(100)))
                .div_ceil(100)
                .max(start)
                .min(n)
        };
        for station in &order[start..end] {
            out.push(((*station).clone(), i));
        }
        start = end;
    }
    out
}

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Why a rollout definition is refused.
pub fn check_waves(waves: &[Wave]) -> Result<(), String> {
    if waves.is_empty() || waves.len() > 10 {
        return Err("a rollout has 1 to 10 waves".into());
    }
    let mut last = 0;
    for (i, wave) in waves.iter().enumerate() {
        if wave.percent == 0 || wave.percent > 100 || wave.percent < last {
            return Err(format!(
                "wave {} covers {} %: waves grow from 1 to 100 %",
                i + 1,
                wave.percent
            ));
        }
        if wave.advance_percent == 0 || wave.advance_percent > 100 || wave.error_percent > 100 {
            return Err(format!("wave {}: percentages are 0-100", i + 1));
        }
        last = wave.percent;
    }
    if last != 100 {
        return Err("the last wave covers 100 %".into());
    }
    Ok(())
}

/// How one wave's lockers stand.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveCount {
    /// Lockers in it.
    pub lockers: u32,
    /// Not offered yet.
    pub pending: u32,
    /// Fetching or installing.
    pub in_flight: u32,
    /// Confirmed.
    pub confirmed: u32,
    /// Failed.
    pub failed: u32,
    /// Cancelled.
    pub cancelled: u32,
}

/// The counts of every wave.
pub fn count_waves(waves: usize, targets: &[RolloutTarget]) -> Vec<WaveCount> {
    let mut counts = vec![WaveCount::default(); waves];
    for t in targets {
        let Some(c) = counts.get_mut(t.wave) else {
            continue;
        };
        c.lockers += 1;
        match t.state {
            TargetState::Pending => c.pending += 1,
            TargetState::Offered | TargetState::Installed => c.in_flight += 1,
            TargetState::Confirmed => c.confirmed += 1,
            TargetState::Failed => c.failed += 1,
            TargetState::Cancelled => c.cancelled += 1,
        }
    }
    counts
}

/// What the rollout task does next.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// The rollout as it is to be stored (none: unchanged).
    pub rollout: Option<RolloutRecord>,
    /// Targets whose state changes, as they are to be stored.
    pub targets: Vec<RolloutTarget>,
    /// Lockers to send the offer to now.
    pub offer: Vec<StationId>,
    /// Lockers whose download is cancelled.
    pub cancel: Vec<StationId>,
    /// For the access log: (action, target, outcome).
    pub log: Vec<(String, String, String)>,
}

impl Plan {
    /// Whether it changes nothing and sends nothing.
    pub fn is_empty(&self) -> bool {
        self.rollout.is_none()
            && self.targets.is_empty()
            && self.offer.is_empty()
            && self.cancel.is_empty()
    }
}

/// What rollout `record` with `targets` does at `now`; `ready` says whether a station's locker
/// can take an offer now (connected, no door open, no command pending, inside its update
/// hours).
pub fn plan(
    record: &RolloutRecord,
    targets: &[RolloutTarget],
    now: Timestamp,
    ready: &dyn Fn(&StationId) -> bool,
) -> Plan {
    let mut plan = Plan::default();
    let mut rollout = record.clone();
    let mut targets: Vec<RolloutTarget> = targets.to_vec();
    let mut changed = vec![false; targets.len()];
    let elapsed = |since: Timestamp| now.millis().saturating_sub(since.millis());
    if !record.status.is_final() {
        // Lockers that did not confirm in time count as failed.
        for (i, t) in targets.iter_mut().enumerate() {
            if t.state.in_flight() && elapsed(t.since) > record.timeout_s * 1000 {
                t.state = TargetState::Failed;
                t.reason = Some("timeout".into());
                t.since = now;
                changed[i] = true;
                plan.log.push((
                    "rollout_locker_failed".into(),
                    t.station.to_string(),
                    format!("{}: timeout", record.id),
                ));
            }
        }
    }
    if record.status == RolloutStatus::Running {
        judge(&mut rollout, &targets, now, &mut plan);
    }
    if rollout.status == RolloutStatus::Aborted {
        // An abort cancels what has not installed yet; an installed image finishes its trial
        // (the locker confirms or rolls back by itself): nothing reboots by surprise.
        for (i, t) in targets.iter_mut().enumerate() {
            if matches!(t.state, TargetState::Pending | TargetState::Offered) {
                if t.state == TargetState::Offered {
                    plan.cancel.push(t.station.clone());
                }
                t.state = TargetState::Cancelled;
                t.since = now;
                changed[i] = true;
            }
        }
    }
    if rollout.status == RolloutStatus::Running {
        // Offers: to the pending lockers of the waves started so far, within the cap, and
        // again to those that have not answered for a while.
        let mut flying = targets.iter().filter(|t| t.state.in_flight()).count() as u64;
        let mut this_minute = targets
            .iter()
            .filter(|t| t.first_offered_at.is_some_and(|at| elapsed(at) < 60_000))
            .count() as u64;
        let per_minute = rollout.per_minute.map_or(u64::MAX, u64::from);
        for (i, t) in targets.iter_mut().enumerate() {
            if t.wave > rollout.wave {
                continue;
            }
            let again = t.state == TargetState::Offered
                && t.offered_at.is_none_or(|at| elapsed(at) >= OFFER_AGAIN_MS);
            let first = t.state == TargetState::Pending
                && flying < u64::from(rollout.max_parallel)
                && this_minute < per_minute;
            if (again || first) && ready(&t.station) {
                if first {
                    flying += 1;
                    this_minute += 1;
                    t.state = TargetState::Offered;
                    t.since = now;
                    t.first_offered_at = Some(now);
                }
                t.offered_at = Some(now);
                changed[i] = true;
                plan.offer.push(t.station.clone());
            }
        }
    }
    if rollout.status == RolloutStatus::Running
        && rollout.wave + 1 >= rollout.waves.len()
        && targets.iter().all(|t| t.state.is_final())
        && wave_done(&rollout, &targets)
    {
        rollout.status = RolloutStatus::Completed;
        plan.log.push((
            "rollout_completed".into(),
            rollout.id.clone(),
            format!(
                "{} {}",
                rollout.manifest.manifest.model, rollout.manifest.manifest.version
            ),
        ));
    }
    if rollout != *record {
        rollout.updated_at = now;
        plan.rollout = Some(rollout);
    }
    plan.targets = targets
        .into_iter()
        .zip(changed)
        .filter_map(|(t, c)| c.then_some(t))
        .collect();
    plan
}

fn wave_done(rollout: &RolloutRecord, targets: &[RolloutTarget]) -> bool {
    let counts = count_waves(rollout.waves.len(), targets);
    let (Some(count), Some(wave)) = (counts.get(rollout.wave), rollout.waves.get(rollout.wave))
    else {
        return true;
    };
    u64::from(count.confirmed) * 100 >= u64::from(wave.advance_percent) * u64::from(count.lockers)
}

/// The current wave's thresholds: an error threshold crossed pauses or aborts; a wave that
/// reached its advance threshold soaks, then the next starts.
fn judge(rollout: &mut RolloutRecord, targets: &[RolloutTarget], now: Timestamp, plan: &mut Plan) {
    let counts = count_waves(rollout.waves.len(), targets);
    let (Some(count), Some(wave)) = (
        counts.get(rollout.wave),
        rollout.waves.get(rollout.wave).cloned(),
    ) else {
        return;
    };
    let done = count.confirmed + count.failed;
    if count.failed > 0
        && done >= wave.min_done.min(count.lockers).max(1)
        && u64::from(count.failed) * 100 > u64::from(wave.error_percent) * u64::from(done)
    {
        let reason = format!(
            "wave {}: {} of {} lockers done failed (threshold {} %)",
            rollout.wave + 1,
            count.failed,
            done,
            wave.error_percent
        );
        rollout.status = match wave.on_error {
            OnError::Pause => RolloutStatus::Paused,
            OnError::Abort => RolloutStatus::Aborted,
        };
        plan.log.push((
            format!("rollout_{}", rollout.status.as_str()),
            rollout.id.clone(),
            reason.clone(),
        ));
        rollout.reason = Some(reason);
        return;
    }
    if !wave_done(rollout, targets) {
        return;
    }
    let Some(since) = rollout.soak_since else {
        rollout.soak_since = Some(now);
        return;
    };
    if rollout.wave + 1 < rollout.waves.len()
        && now.millis().saturating_sub(since.millis()) >= wave.soak_s * 1000
    {
        rollout.wave += 1;
        rollout.soak_since = None;
        plan.log.push((
            "rollout_wave_started".into(),
            rollout.id.clone(),
            format!("wave {} of {}", rollout.wave + 1, rollout.waves.len()),
        ));
    }
}

/// What a locker's report does to its target: the state it moves to, if it moves.
pub fn reported(
    state: TargetState,
    outcome: lockergrid_protocol::message::FirmwareOutcome,
) -> Option<TargetState> {
    use lockergrid_protocol::message::FirmwareOutcome;
    let next = match outcome {
        FirmwareOutcome::Installed => TargetState::Installed,
        FirmwareOutcome::Confirmed => TargetState::Confirmed,
        FirmwareOutcome::Refused | FirmwareOutcome::RolledBack => TargetState::Failed,
    };
    // A locker that never got an offer (pending, cancelled) reporting is an offer that crossed
    // an abort: what it did is still recorded. Confirmed and failed lockers are done.
    let moves = match state {
        TargetState::Confirmed | TargetState::Failed => false,
        TargetState::Installed => next != TargetState::Installed,
        TargetState::Pending | TargetState::Offered | TargetState::Cancelled => true,
    };
    moves.then_some(next)
}

#[cfg(test)]
mod tests;
