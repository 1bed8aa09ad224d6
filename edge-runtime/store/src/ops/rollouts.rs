//! Firmware rollouts (docs/fleet.md "Rollouts"): created with their lockers, moved on by the
//! gateway's rollout task one [`Plan`] at a time, paused, resumed and aborted by operators,
//! and told what each locker reported — each in one transaction with its access-log entries.
//! Every change bumps the rollout's revision, and a plan made on an older one is refused, so a
//! plan never overwrites a report or an operator's word that came in while it was made.

use crate::access_log::Draft;
use crate::tables::{ROLLOUT_TARGETS_V1, ROLLOUTS_V1};
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store, StoreError, conflict};
use lockergrid_model::{
    Actor, Plan, RolloutRecord, RolloutStatus, RolloutTarget, TargetState, reported,
};
use lockergrid_protocol::StationId;
use lockergrid_protocol::message::FirmwareOutcome;
use redb::ReadableDatabase;

/// What an operator does to a rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutOrder {
    /// Stop offering (running only).
    Pause(String),
    /// Offer again (paused only).
    Resume,
    /// End it (running or paused): downloads cancelled, lockers on trial finish.
    Abort(String),
}

/// A locker's report of a firmware step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutReport {
    /// The locker's station.
    pub station: StationId,
    /// The image.
    pub sha256: String,
    /// What became of it.
    pub outcome: FirmwareOutcome,
    /// The locker's reason code.
    pub reason: Option<String>,
}

impl Store {
    /// Every rollout, oldest first.
    pub fn rollouts(&self) -> Result<Vec<RolloutRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(ROLLOUTS_V1.def())?;
        ROLLOUTS_V1.all(&table)
    }

    /// One rollout.
    pub fn rollout(&self, id: &str) -> Result<Option<RolloutRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(ROLLOUTS_V1.def())?;
        ROLLOUTS_V1.get(&table, id)
    }

    /// The lockers of rollout `id`, by station.
    pub fn rollout_targets(&self, id: &str) -> Result<Vec<RolloutTarget>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(ROLLOUT_TARGETS_V1.def())?;
        Ok(ROLLOUT_TARGETS_V1
            .with_prefix(&table, &format!("{id}/"))?
            .into_iter()
            .map(|(_, t)| t)
            .collect())
    }

    /// Stores a new rollout with its lockers.
    pub async fn create_rollout(
        &self,
        rollout: RolloutRecord,
        targets: Vec<RolloutTarget>,
        actor: Actor,
    ) -> Result<RolloutRecord, ChangeError> {
        self.write(move |w, tx| w.create_rollout(tx, rollout, targets, actor))
            .await
    }

    /// Records what the rollout task decided, if the rollout is still at `plan`'s revision.
    pub async fn apply_rollout_plan(
        &self,
        id: String,
        revision: u64,
        plan: Plan,
        actor: Actor,
    ) -> Result<RolloutRecord, ChangeError> {
        self.write(move |w, tx| w.apply_rollout_plan(tx, &id, revision, plan, actor))
            .await
    }

    /// An operator pauses, resumes or aborts rollout `id`.
    pub async fn order_rollout(
        &self,
        id: String,
        order: RolloutOrder,
        actor: Actor,
    ) -> Result<RolloutRecord, ChangeError> {
        self.write(move |w, tx| w.order_rollout(tx, &id, order, actor))
            .await
    }

    /// A locker's report, applied to the lockers of every rollout of that image it is part
    /// of; the targets it moved.
    pub async fn rollout_report(
        &self,
        report: RolloutReport,
        actor: Actor,
    ) -> Result<Vec<RolloutTarget>, StoreError> {
        self.write(move |w, tx| w.rollout_report(tx, report, actor))
            .await
    }
}

fn not_found(id: &str) -> ChangeError {
    ChangeError::NotFound {
        kind: "rollout",
        id: id.to_owned(),
    }
}

impl Writer {
    pub(crate) fn create_rollout(
        &mut self,
        tx: &mut Tx<'_>,
        rollout: RolloutRecord,
        targets: Vec<RolloutTarget>,
        actor: Actor,
    ) -> Result<RolloutRecord, ChangeError> {
        if ROLLOUTS_V1
            .get(&tx.rollouts, rollout.id.as_str())?
            .is_some()
        {
            return Err(conflict("rollout", &rollout.id, "taken"));
        }
        ROLLOUTS_V1.put(&mut tx.rollouts, rollout.id.as_str(), &rollout)?;
        for target in &targets {
            ROLLOUT_TARGETS_V1.put(&mut tx.rollout_targets, target.key().as_str(), target)?;
        }
        let m = &rollout.manifest.manifest;
        let outcome = format!(
            "{} {} to {} lockers in {} waves",
            m.model,
            m.version,
            targets.len(),
            rollout.waves.len()
        );
        self.log(
            tx,
            Draft::new(actor, "rollout_created", &rollout.id, &outcome),
        )?;
        Ok(rollout)
    }

    pub(crate) fn apply_rollout_plan(
        &mut self,
        tx: &mut Tx<'_>,
        id: &str,
        revision: u64,
        plan: Plan,
        actor: Actor,
    ) -> Result<RolloutRecord, ChangeError> {
        let mut rollout = ROLLOUTS_V1
            .get(&tx.rollouts, id)?
            .ok_or_else(|| not_found(id))?;
        if rollout.revision != revision {
            return Err(conflict("rollout", id, "changed since the plan was made"));
        }
        if let Some(next) = plan.rollout {
            rollout = next;
        }
        rollout.revision = revision + 1;
        ROLLOUTS_V1.put(&mut tx.rollouts, id, &rollout)?;
        for target in &plan.targets {
            ROLLOUT_TARGETS_V1.put(&mut tx.rollout_targets, target.key().as_str(), target)?;
        }
        for (action, target, outcome) in plan.log {
            self.log(tx, Draft::new(actor.clone(), &action, &target, &outcome))?;
        }
        Ok(rollout)
    }

    pub(crate) fn order_rollout(
        &mut self,
        tx: &mut Tx<'_>,
        id: &str,
        order: RolloutOrder,
        actor: Actor,
    ) -> Result<RolloutRecord, ChangeError> {
        let mut rollout = ROLLOUTS_V1
            .get(&tx.rollouts, id)?
            .ok_or_else(|| not_found(id))?;
        let (allowed, next, action, reason) = match order {
            RolloutOrder::Pause(reason) => (
                rollout.status == RolloutStatus::Running,
                RolloutStatus::Paused,
                "rollout_paused",
                Some(reason),
            ),
            RolloutOrder::Resume => (
                rollout.status == RolloutStatus::Paused,
                RolloutStatus::Running,
                "rollout_resumed",
                None,
            ),
            RolloutOrder::Abort(reason) => (
                !rollout.status.is_final(),
                RolloutStatus::Aborted,
                "rollout_aborted",
                Some(reason),
            ),
        };
        if !allowed {
            return Err(conflict("rollout", id, rollout.status.as_str()));
        }
        rollout.status = next;
        rollout.reason.clone_from(&reason);
        rollout.revision += 1;
        rollout.updated_at = tx.now;
        ROLLOUTS_V1.put(&mut tx.rollouts, id, &rollout)?;
        let outcome = reason.unwrap_or_else(|| "by an operator".into());
        self.log(tx, Draft::new(actor, action, id, &outcome))?;
        Ok(rollout)
    }

    pub(crate) fn rollout_report(
        &mut self,
        tx: &mut Tx<'_>,
        report: RolloutReport,
        actor: Actor,
    ) -> Result<Vec<RolloutTarget>, StoreError> {
        let mut moved = Vec::new();
        for mut rollout in ROLLOUTS_V1.all(&tx.rollouts)? {
            if rollout.manifest.manifest.sha256 != report.sha256 {
                continue;
            }
            let key = RolloutTarget::key_of(&rollout.id, &report.station);
            let Some(mut target) = ROLLOUT_TARGETS_V1.get(&tx.rollout_targets, key.as_str())?
            else {
                continue;
            };
            let Some(next) = reported(target.state, report.outcome) else {
                continue;
            };
            target.state = next;
            target.since = tx.now;
            if next == TargetState::Failed {
                target.reason.clone_from(&report.reason);
            }
            ROLLOUT_TARGETS_V1.put(&mut tx.rollout_targets, key.as_str(), &target)?;
            rollout.revision += 1;
            rollout.updated_at = tx.now;
            ROLLOUTS_V1.put(&mut tx.rollouts, rollout.id.as_str(), &rollout)?;
            let outcome = match &report.reason {
                Some(reason) => format!("{}: {} ({reason})", rollout.id, next.as_str()),
                None => format!("{}: {}", rollout.id, next.as_str()),
            };
            self.log(
                tx,
                Draft::new(
                    actor.clone(),
                    "rollout_locker",
                    report.station.as_str(),
                    &outcome,
                ),
            )?;
            moved.push(target);
        }
        Ok(moved)
    }
}
