//! What one delivery attempt of a message came to, and what follows from it: the next attempt,
//! the plan's next step, a dead letter, or the end. Each attempt is in the access log, without
//! the address or the code.

use crate::access_log::Draft;
use crate::outbox::save_outbox;
use crate::tables::{OUTBOX_IDS_V1, OUTBOX_PROVIDER_V1, OUTBOX_V1};
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store};
use lockergrid_model::{Actor, DeliveryEvent, DeliveryStatus, NotifyChannel, OutboxEntry};
use lockergrid_protocol::Timestamp;

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// It reached the recipient's side.
    Delivered,
    /// The provider took it under its id; a report says later whether it arrived.
    Accepted {
        /// The provider's id of the message.
        provider_id: String,
    },
    /// A transient failure: try this step again at `at`.
    Retry {
        /// Why, without addresses or codes.
        error: String,
        /// When.
        at: Timestamp,
    },
    /// This step cannot succeed (a permanent error, or its retries are used up).
    Failed {
        /// Why, without addresses or codes.
        error: String,
    },
    /// What it tells has stopped being true before it could be delivered.
    Expired,
    /// It has become pointless.
    Cancelled {
        /// Why.
        reason: String,
    },
}

/// One attempt at a message: at step `step` of its plan, over `channel`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The message's id.
    pub message: String,
    /// The plan step it made.
    pub step: u32,
    /// The step's channel.
    pub channel: NotifyChannel,
    /// What came of it.
    pub outcome: AttemptOutcome,
}

/// A provider's report about a message it took (an SMS status callback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryReport {
    /// Still under way (queued, sending, sent).
    Sent,
    /// Arrived.
    Delivered,
    /// Will not arrive.
    Failed,
}

impl Store {
    /// Records what an attempt came to; answers the message as it is now. An attempt at a step
    /// the message has moved past (a report got there first) changes nothing.
    pub async fn record_delivery(&self, attempt: Attempt) -> Result<OutboxEntry, ChangeError> {
        self.write(move |w, tx| w.record_delivery(tx, attempt))
            .await
    }

    /// Applies a provider's report about the message it knows as `provider_id`; `None` when no
    /// message has that id. Reports only move a message forward.
    pub async fn delivery_report(
        &self,
        provider_id: String,
        report: DeliveryReport,
    ) -> Result<Option<OutboxEntry>, ChangeError> {
        self.write(move |w, tx| w.delivery_report(tx, &provider_id, report))
            .await
    }

    /// Sends a dead letter through its plan again, from its first step, now.
    pub async fn requeue_notification(
        &self,
        id: String,
        actor: Actor,
    ) -> Result<OutboxEntry, ChangeError> {
        self.write(move |w, tx| w.requeue_notification(tx, &id, actor))
            .await
    }
}

fn moved(entry: &OutboxEntry, event: DeliveryEvent) -> Result<DeliveryStatus, ChangeError> {
    entry
        .delivery
        .status
        .apply(event)
        .map_err(|_| crate::conflict("notification", &entry.id, entry.delivery.status))
}

/// When step `step` of `entry`'s plan is due if it starts after `now`; `None` past the last.
fn step_due(entry: &OutboxEntry, step: u32, now: Timestamp) -> Option<Timestamp> {
    let plan = entry.plan.as_ref()?;
    let delay = plan.steps.get(step as usize)?.delay_minutes;
    Some(Timestamp(
        now.millis().saturating_add(u64::from(delay) * 60_000),
    ))
}

impl Writer {
    fn message(&self, tx: &Tx<'_>, id: &str) -> Result<OutboxEntry, ChangeError> {
        let not_found = || ChangeError::NotFound {
            kind: "notification",
            id: id.to_owned(),
        };
        let seq = OUTBOX_IDS_V1
            .get(&tx.outbox_ids, id)?
            .ok_or_else(not_found)?;
        OUTBOX_V1.get(&tx.outbox, seq)?.ok_or_else(not_found)
    }

    /// The plan's next step after the current one failed or went unanswered: it falls back,
    /// or the message is a dead letter.
    fn next_step(&self, tx: &Tx<'_>, entry: &mut OutboxEntry) -> Result<(), ChangeError> {
        entry.delivery.step += 1;
        entry.delivery.step_attempts = 0;
        match step_due(entry, entry.delivery.step, tx.now) {
            Some(at) => {
                entry.delivery.status = moved(entry, DeliveryEvent::FellBack)?;
                entry.delivery.next_at = Some(at);
            }
            None => {
                entry.delivery.status = moved(entry, DeliveryEvent::PlanUsedUp)?;
                entry.delivery.next_at = None;
            }
        }
        Ok(())
    }

    /// The message is done with: its code goes, nothing more is due.
    fn finish(entry: &mut OutboxEntry, status: DeliveryStatus, now: Timestamp) {
        entry.delivery.status = status;
        entry.delivery.next_at = None;
        entry.secret = None;
        if status == DeliveryStatus::Delivered {
            entry.delivery.delivered_at = Some(now);
        }
    }

    pub(crate) fn record_delivery(
        &mut self,
        tx: &mut Tx<'_>,
        attempt: Attempt,
    ) -> Result<OutboxEntry, ChangeError> {
        let mut entry = self.message(tx, &attempt.message)?;
        if entry.delivery.status.finished() || entry.delivery.step != attempt.step {
            return Ok(entry);
        }
        let was_due = entry.delivery.next_at;
        let channel = attempt.channel.as_str();
        let counted = !matches!(
            attempt.outcome,
            AttemptOutcome::Expired | AttemptOutcome::Cancelled { .. }
        );
        if counted {
            entry.delivery.attempts += 1;
            entry.delivery.step_attempts += 1;
        }
        let outcome = match attempt.outcome {
            AttemptOutcome::Delivered => {
                let status = moved(&entry, DeliveryEvent::Delivered)?;
                entry.delivery.channel = Some(attempt.channel);
                Self::finish(&mut entry, status, tx.now);
                format!("{channel} delivered")
            }
            AttemptOutcome::Accepted { provider_id } => {
                entry.delivery.status = moved(&entry, DeliveryEvent::Accepted)?;
                entry.delivery.channel = Some(attempt.channel);
                OUTBOX_PROVIDER_V1.put(
                    &mut tx.outbox_provider,
                    provider_id.as_str(),
                    &entry.seq,
                )?;
                entry.delivery.provider_id = Some(provider_id);
                // The next step follows unless a report says it arrived first.
                entry.delivery.step += 1;
                entry.delivery.step_attempts = 0;
                entry.delivery.next_at = step_due(&entry, entry.delivery.step, tx.now);
                format!("{channel} accepted by the provider")
            }
            AttemptOutcome::Retry { error, at } => {
                entry.delivery.next_at = Some(at);
                let outcome = format!("{channel} failed, retried at {}: {error}", at.millis());
                entry.delivery.last_error = Some(format!("{channel}: {error}"));
                outcome
            }
            AttemptOutcome::Failed { error } => {
                entry.delivery.last_error = Some(format!("{channel}: {error}"));
                self.next_step(tx, &mut entry)?;
                match entry.delivery.status {
                    DeliveryStatus::Dead => format!("{channel} failed; dead letter: {error}"),
                    _ => format!("{channel} failed; falling back: {error}"),
                }
            }
            AttemptOutcome::Expired => {
                let status = moved(&entry, DeliveryEvent::CodeExpired)?;
                Self::finish(&mut entry, status, tx.now);
                entry.delivery.last_error = Some("expired before it could be delivered".into());
                "expired before it could be delivered".to_owned()
            }
            AttemptOutcome::Cancelled { reason } => {
                let status = moved(&entry, DeliveryEvent::Cancelled)?;
                Self::finish(&mut entry, status, tx.now);
                format!("cancelled: {reason}")
            }
        };
        save_outbox(tx, &entry, was_due)?;
        self.log(
            tx,
            Draft::new(Actor::system(), "notification_attempt", &entry.id, &outcome),
        )?;
        Ok(entry)
    }

    pub(crate) fn delivery_report(
        &mut self,
        tx: &mut Tx<'_>,
        provider_id: &str,
        report: DeliveryReport,
    ) -> Result<Option<OutboxEntry>, ChangeError> {
        let Some(seq) = OUTBOX_PROVIDER_V1.get(&tx.outbox_provider, provider_id)? else {
            return Ok(None);
        };
        let Some(mut entry) = OUTBOX_V1.get(&tx.outbox, seq)? else {
            return Ok(None);
        };
        // A report about the provider's message after a later step took over (or after the
        // message was delivered) is noted but moves nothing back.
        let current = entry.delivery.provider_id.as_deref() == Some(provider_id);
        let was_due = entry.delivery.next_at;
        let outcome = match report {
            DeliveryReport::Delivered if entry.delivery.status != DeliveryStatus::Delivered => {
                let status = moved(&entry, DeliveryEvent::Delivered)?;
                Self::finish(&mut entry, status, tx.now);
                "report: delivered"
            }
            DeliveryReport::Failed if current && entry.delivery.status == DeliveryStatus::Sent => {
                entry.delivery.last_error = Some("the provider reported it undelivered".into());
                // The step after the one the provider took is the fallback, due now.
                entry.delivery.step = entry.delivery.step.saturating_sub(1);
                self.next_step(tx, &mut entry)?;
                "report: failed"
            }
            _ => "report: no change",
        };
        save_outbox(tx, &entry, was_due)?;
        self.log(
            tx,
            Draft::new(Actor::system(), "notification_report", &entry.id, outcome),
        )?;
        Ok(Some(entry))
    }

    pub(crate) fn requeue_notification(
        &mut self,
        tx: &mut Tx<'_>,
        id: &str,
        actor: Actor,
    ) -> Result<OutboxEntry, ChangeError> {
        let mut entry = self.message(tx, id)?;
        entry.delivery.status = moved(&entry, DeliveryEvent::Requeued)?;
        entry.delivery.step = 0;
        entry.delivery.step_attempts = 0;
        entry.delivery.next_at = Some(tx.now);
        save_outbox(tx, &entry, None)?;
        self.log(tx, Draft::new(actor, "notification_requeued", id, "ok"))?;
        Ok(entry)
    }
}
