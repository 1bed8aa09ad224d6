//! The notification router's plan for an outbox entry, with the reminders it schedules.

use crate::tables::OUTBOX_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, PlannedNotification, Store, conflict, new_id};
use lockergrid_model::OutboxEntry;

impl Store {
    /// Records the router's plan for an outbox entry, with the reminders it schedules.
    pub async fn plan_notification(&self, planned: PlannedNotification) -> Result<(), ChangeError> {
        self.write(move |w, tx| w.plan_notification(tx, planned))
            .await
    }
}

impl Writer {
    /// Records the router's plan for an outbox entry and schedules the reminders it asked for.
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
        entry.plan = Some(planned.plan);
        entry.decided_by = Some(planned.decided_by);
        OUTBOX_V1.put(&mut tx.outbox, entry.seq, &entry)?;
        for follow_up in planned.follow_ups {
            self.append_outbox(
                tx,
                OutboxEntry {
                    seq: 0,
                    id: new_id("ntf"),
                    parcel_id: entry.parcel_id.clone(),
                    station_id: entry.station_id.clone(),
                    event: follow_up.event,
                    recipient: entry.recipient.clone(),
                    created_at: tx.now,
                    due_at: follow_up.due_at,
                    plan: Some(follow_up.plan),
                    decided_by: Some(follow_up.decided_by),
                },
            )?;
        }
        Ok(())
    }
}
