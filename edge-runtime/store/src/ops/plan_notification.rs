//! The notification router's plan for an outbox entry, with the reminders it schedules.

use crate::outbox::{message_id, save_outbox};
use crate::tables::OUTBOX_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, PlannedNotification, Store, conflict};
use lockergrid_model::{Delivery, DeliveryPlan, OutboxEntry};
use lockergrid_protocol::Timestamp;

impl Store {
    /// Records the router's plan for an outbox entry, with the reminders it schedules.
    pub async fn plan_notification(&self, planned: PlannedNotification) -> Result<(), ChangeError> {
        self.write(move |w, tx| w.plan_notification(tx, planned))
            .await
    }
}

/// When the first step of `plan` is due for a message due at `due_at`.
fn first_attempt(plan: &DeliveryPlan, due_at: Timestamp) -> Timestamp {
    let delay = plan.steps.first().map_or(0, |s| u64::from(s.delay_minutes));
    Timestamp(due_at.millis().saturating_add(delay * 60_000))
}

impl Writer {
    /// Records the router's plan for an outbox entry and schedules the reminders it asked for;
    /// a reminder already scheduled (the parcel's code was reissued) is not scheduled again.
    pub(crate) fn plan_notification(
        &mut self,
        tx: &mut Tx<'_>,
        planned: PlannedNotification,
    ) -> Result<(), ChangeError> {
        let mut entry =
            OUTBOX_V1
                .get(&tx.outbox, planned.seq)?
                .ok_or_else(|| ChangeError::NotFound {
                    kind: "notification",
                    id: planned.seq.to_string(),
                })?;
        if entry.plan.is_some() {
            return Err(conflict("notification", &entry.id, "planned"));
        }
        entry.delivery.next_at = Some(first_attempt(&planned.plan, entry.due_at));
        entry.plan = Some(planned.plan);
        entry.decided_by = Some(planned.decided_by);
        save_outbox(tx, &entry, None)?;
        for follow_up in planned.follow_ups {
            let id = message_id(
                &entry.about,
                follow_up.event,
                &entry.recipient.id,
                follow_up.due_at,
                None,
            );
            self.append_outbox(
                tx,
                OutboxEntry {
                    seq: 0,
                    id,
                    about: entry.about.clone(),
                    station_id: entry.station_id.clone(),
                    event: follow_up.event,
                    recipient: entry.recipient.clone(),
                    created_at: tx.now,
                    due_at: follow_up.due_at,
                    delivery: Delivery {
                        next_at: Some(first_attempt(&follow_up.plan, follow_up.due_at)),
                        ..Delivery::default()
                    },
                    plan: Some(follow_up.plan),
                    decided_by: Some(follow_up.decided_by),
                    secret: None,
                    expires_at: entry.expires_at,
                },
            )?;
        }
        Ok(())
    }
}
