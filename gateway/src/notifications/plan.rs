//! The notification planner: walks the outbox for entries the store wrote without a plan (a
//! parcel stored, a pickup window closed), asks the notification router how each recipient hears
//! about it, and records the plan together with the reminders the router asks for. A customer's
//! message carries their code, so its plan never includes the merchant's webhook: integrators
//! hear about events in messages of their own, without codes.

use crate::api::App;
use lockergrid_model::{About, DeliveryPlan, NotifyChannel, OutboxEntry, World};
use lockergrid_model::{NotificationEvent, Recipient};
use lockergrid_protocol::Timestamp;
use lockergrid_store::{ChangeError, FollowUp, PlannedNotification};

/// Outbox entries read per pass.
const PAGE: usize = 256;

/// Plans the entries from `cursor` on that have no plan yet, moving the cursor past them. Every
/// entry before the cursor is planned; after a restart the walk starts over once.
pub(super) async fn plan_pending(app: &App, cursor: &mut u64) -> Result<(), ChangeError> {
    loop {
        let page = app.store.outbox(*cursor, PAGE)?;
        let Some(last) = page.last().map(|e| e.seq) else {
            return Ok(());
        };
        // The router is asked for each entry in turn; the plans are written together, so the
        // writer commits them in a few group commits instead of one per entry.
        let mut writes = tokio::task::JoinSet::new();
        for entry in page.into_iter().filter(|e| e.plan.is_none()) {
            let (store, planned) = (app.store.clone(), plan(app, &entry).await?);
            writes.spawn(async move { store.plan_notification(planned).await });
        }
        while let Some(write) = writes.join_next().await {
            match write {
                Ok(Ok(()) | Err(ChangeError::Conflict { .. })) => {}
                Ok(Err(e)) => return Err(e),
                Err(e) => tracing::error!(error = %e, "a plan write panicked"),
            }
        }
        *cursor = last + 1;
    }
}

fn recipient_at(app: &App, entry: &OutboxEntry, at: Timestamp) -> Recipient {
    Recipient {
        id: entry.recipient.id.clone(),
        channels: entry.recipient.channels.clone(),
        quiet_hours: entry.recipient.quiet_hours,
        local_minute: app.local_minute_at(at),
    }
}

/// The router's plan for `entry`, and for a stored parcel the reminders before its window
/// closes: all but the last are reminders, the last says the window is closing.
async fn plan(app: &App, entry: &OutboxEntry) -> Result<PlannedNotification, ChangeError> {
    let now = app.store.now();
    let routed = app
        .plugins
        .route(
            entry.event,
            &recipient_at(app, entry, entry.due_at),
            &entry.station_id,
            now,
        )
        .await;
    let mut follow_ups = Vec::new();
    if let (NotificationEvent::ParcelStored, About::Parcel(id)) = (entry.event, &entry.about)
        && let Some(expires) = app.store.parcel(id)?.and_then(|p| p.pickup_expires_at)
    {
        let hours = app.plugins.reminder_hours(&entry.station_id, now).await;
        let count = hours.answer.len();
        for (i, h) in hours.answer.into_iter().enumerate() {
            let due_at = Timestamp(expires.millis().saturating_sub(u64::from(h) * 3_600_000));
            if due_at <= now {
                continue;
            }
            let event = if i + 1 == count {
                NotificationEvent::Expiring
            } else {
                NotificationEvent::Reminder
            };
            let reminder = app
                .plugins
                .route(
                    event,
                    &recipient_at(app, entry, due_at),
                    &entry.station_id,
                    now,
                )
                .await;
            follow_ups.push(FollowUp {
                event,
                due_at,
                plan: for_the_customer(reminder.answer),
                decided_by: reminder.decider.decided_by(World::NotificationRouter),
            });
        }
    }
    Ok(PlannedNotification {
        seq: entry.seq,
        plan: for_the_customer(routed.answer),
        decided_by: routed.decider.decided_by(World::NotificationRouter),
        follow_ups,
    })
}

/// The plan without webhook steps: the merchant's endpoint is not the customer.
fn for_the_customer(mut plan: DeliveryPlan) -> DeliveryPlan {
    plan.steps.retain(|s| s.channel != NotifyChannel::Webhook);
    plan
}
