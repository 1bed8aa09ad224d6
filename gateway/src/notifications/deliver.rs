//! One pass of the sender: every message due now gets one attempt over its plan's current step,
//! and what came of it goes to the store, which schedules what follows. A message whose code
//! expired fails visibly instead of arriving late; one that became pointless (the parcel was
//! picked up, a newer code replaced the one it carries) is cancelled.

use super::message::Message;
use super::{Channels, SendError, Sent};
use crate::api::App;
use crate::config::StationInfo;
use crate::contacts::{self, Contact};
use crate::metrics::NotificationLabels;
use lockergrid_model::{About, NotificationEvent, NotifyChannel, OutboxEntry, ReturnStatus};
use lockergrid_model::{DeliveryStatus, message_key};
use lockergrid_protocol::{OrderId, ParcelStatus, Timestamp};
use lockergrid_store::{Attempt, AttemptOutcome, ChangeError, MERCHANT, StoreError};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::task::JoinSet;

/// Messages attempted at once.
const BATCH: usize = 64;

/// Attempts every message due now, `BATCH` at a time.
pub(super) async fn deliver_due(
    app: &Arc<App>,
    channels: &Arc<Channels>,
) -> Result<(), StoreError> {
    loop {
        let due = app.store.due_notifications(app.store.now(), BATCH)?;
        let count = due.len();
        let mut attempts = JoinSet::new();
        for entry in due {
            let (app, channels) = (app.clone(), channels.clone());
            attempts.spawn(async move { attempt(&app, &channels, entry).await });
        }
        let mut failed = None;
        while let Some(done) = attempts.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed = Some(e),
                Err(e) => tracing::error!(error = %e, "a notification attempt panicked"),
            }
        }
        if let Some(e) = failed {
            tracing::error!(error = %e, "recording a notification attempt failed");
            return Ok(());
        }
        if count < BATCH {
            return Ok(());
        }
    }
}

/// What the message is about, as far as sending it needs: the order its contact is sealed for,
/// and why it is no longer worth sending, if it is not.
struct Subject {
    order: OrderId,
    pointless: Option<&'static str>,
}

fn subject(app: &App, entry: &OutboxEntry) -> Result<Option<Subject>, StoreError> {
    let carries_code = entry.secret.is_some();
    // A merchant hears about every change, even one a later change overtook.
    let for_merchant = entry.recipient.id.starts_with(MERCHANT);
    Ok(match &entry.about {
        About::Parcel(id) => app.store.parcel(id)?.map(|p| {
            let waiting = p.status == ParcelStatus::Stored;
            let pointless = match entry.event {
                NotificationEvent::ParcelStored
                    if carries_code && p.code_message.as_deref() != Some(entry.id.as_str()) =>
                {
                    Some("a newer code replaced the one it carries")
                }
                NotificationEvent::ParcelStored
                | NotificationEvent::Reminder
                | NotificationEvent::Expiring
                    if !waiting =>
                {
                    Some("the parcel no longer waits in its compartment")
                }
                _ => None,
            };
            Subject {
                order: p.order_id,
                pointless: pointless.filter(|_| !for_merchant),
            }
        }),
        About::Return(id) => app.store.return_record(id)?.map(|r| {
            let open = matches!(
                r.status,
                ReturnStatus::Authorized | ReturnStatus::DroppingOff
            );
            let pointless = (entry.event == NotificationEvent::ReturnCode && !open)
                .then_some("the return no longer waits for its drop-off");
            Subject {
                order: r.order_id,
                pointless: pointless.filter(|_| !for_merchant),
            }
        }),
    })
}

/// One attempt at `entry`, recorded.
async fn attempt(app: &App, channels: &Channels, entry: OutboxEntry) -> Result<(), ChangeError> {
    let now = app.store.now();
    let step = entry.delivery.step;
    let planned = entry
        .plan
        .as_ref()
        .and_then(|p| p.steps.get(step as usize))
        .map(|s| s.channel);
    let subject = subject(app, &entry)?;
    let outcome = match (&subject, planned) {
        _ if entry.expires_at.is_some_and(|at| at <= now) => AttemptOutcome::Expired,
        (None, _) => AttemptOutcome::Cancelled {
            reason: "what it is about is gone".into(),
        },
        (
            Some(Subject {
                pointless: Some(reason),
                ..
            }),
            _,
        ) => AttemptOutcome::Cancelled {
            reason: (*reason).into(),
        },
        (Some(_), None) => AttemptOutcome::Failed {
            error: "the plan has no step left".into(),
        },
        (Some(subject), Some(channel)) => {
            let sent = send(app, channels, &entry, &subject.order, channel, now).await;
            outcome_of(channels, &entry, sent, now)
        }
    };
    let channel = planned.unwrap_or(NotifyChannel::Email);
    app.metrics
        .notifications
        .get_or_create(&NotificationLabels {
            channel: channel.as_str(),
            outcome: outcome_label(&outcome),
        })
        .inc();
    let recorded = app
        .store
        .record_delivery(Attempt {
            message: entry.id.clone(),
            step,
            channel,
            outcome,
        })
        .await?;
    if recorded.delivery.status == DeliveryStatus::Dead {
        tracing::warn!(
            message = %recorded.id,
            attempts = recorded.delivery.attempts,
            error = recorded.delivery.last_error.as_deref().unwrap_or(""),
            "notification is a dead letter"
        );
    }
    Ok(())
}

fn outcome_label(outcome: &AttemptOutcome) -> &'static str {
    match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Accepted { .. } => "accepted",
        AttemptOutcome::Retry { .. } => "retried",
        AttemptOutcome::Failed { .. } => "failed",
        AttemptOutcome::Expired => "expired",
        AttemptOutcome::Cancelled { .. } => "cancelled",
    }
}

/// What a channel's answer means for the plan: a transient failure is retried with backoff
/// and full jitter (or after the receiver's Retry-After) until the step's attempts are used up.
fn outcome_of(
    channels: &Channels,
    entry: &OutboxEntry,
    sent: Result<Sent, SendError>,
    now: Timestamp,
) -> AttemptOutcome {
    match sent {
        Ok(Sent::Delivered) => AttemptOutcome::Delivered,
        Ok(Sent::Accepted(provider_id)) => AttemptOutcome::Accepted { provider_id },
        Err(SendError::Permanent(error)) => AttemptOutcome::Failed { error },
        Err(SendError::Transient { error, after }) => {
            let made = entry.delivery.step_attempts + 1;
            if made >= channels.retry.attempts_per_step {
                return AttemptOutcome::Failed {
                    error: format!("{error} ({made} attempts)"),
                };
            }
            let wait = after
                .map(|a| a.min(channels.retry.max))
                .unwrap_or_else(|| backoff(channels, made));
            AttemptOutcome::Retry {
                error,
                at: now.plus(wait),
            }
        }
    }
}

/// The wait before attempt `made + 1`: up to `base × 2^(made-1)`, capped, drawn uniformly
/// from its upper half so retries of many messages spread out without coming too soon.
fn backoff(channels: &Channels, made: u32) -> Duration {
    let ceiling = channels
        .retry
        .base
        .saturating_mul(1 << made.saturating_sub(1).min(20))
        .min(channels.retry.max);
    let half = ceiling / 2;
    half + ceiling.saturating_sub(half).mul_f64(rand::random::<f64>())
}

async fn send(
    app: &App,
    channels: &Channels,
    entry: &OutboxEntry,
    order: &OrderId,
    channel: NotifyChannel,
    now: Timestamp,
) -> Result<Sent, SendError> {
    let contact = open_contact(app, entry, order)?;
    let code = match &entry.secret {
        Some(sealed) => Some(
            app.contacts
                .open_secret(sealed, &entry.id)
                .map_err(|e| SendError::Permanent(e.to_string()))?,
        ),
        None => None,
    };
    let message = Message {
        id: entry.id.clone(),
        event: entry.event,
        about: entry.about.clone(),
        station: channels
            .stations
            .get(&entry.station_id)
            .cloned()
            .unwrap_or_else(|| StationInfo {
                name: entry.station_id.to_string(),
                address: None,
                opening_hours: None,
            }),
        code,
        expires_at: entry.expires_at,
        utc_offset_minutes: channels.utc_offset_minutes,
    };
    let key = message_key(&entry.id, channel);
    let missing = |what: &str| SendError::Permanent(format!("the recipient has no {what}"));
    let unconfigured =
        |what: &str| SendError::Permanent(format!("no {what} channel is configured"));
    match channel {
        NotifyChannel::Email => {
            let email = channels
                .email
                .as_ref()
                .ok_or_else(|| unconfigured("e-mail"))?;
            let to = contact
                .email
                .as_deref()
                .ok_or_else(|| missing("e-mail address"))?;
            email.send(&message, &key, to).await
        }
        NotifyChannel::Sms => {
            let sms = channels.sms.as_ref().ok_or_else(|| unconfigured("SMS"))?;
            let to = contact
                .phone
                .as_deref()
                .ok_or_else(|| missing("phone number"))?;
            sms.send(&key, to, &message.sms()).await
        }
        NotifyChannel::Push => {
            let secrets = channels.push.as_ref().ok_or_else(|| unconfigured("app"))?;
            let url = contact
                .app_url
                .as_deref()
                .ok_or_else(|| missing("app endpoint"))?;
            let body = serde_json::to_vec(&message.app_payload(now)).unwrap_or_default();
            channels
                .webhooks
                .send(url, secrets, (&key, wall_clock()), body)
                .await
        }
        NotifyChannel::Webhook => {
            let merchant = entry.recipient.id.strip_prefix(MERCHANT).ok_or_else(|| {
                SendError::Permanent(
                    "a customer's message never goes to the merchant's webhook".into(),
                )
            })?;
            let (url, secrets) = channels
                .integrators
                .get(merchant)
                .ok_or_else(|| unconfigured("webhook for this merchant"))?;
            let body = json!({
                "type": super::message::event_type(entry.event),
                "timestamp": super::message::rfc3339(now),
                "data": message.integrator_data(),
            });
            let body = serde_json::to_vec(&body).unwrap_or_default();
            channels
                .webhooks
                .send(url, secrets, (&key, wall_clock()), body)
                .await
        }
    }
}

/// Seconds since the epoch on the wall clock: receivers check a webhook's timestamp against
/// their own clock, whatever clock the store runs on.
fn wall_clock() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn open_contact(app: &App, entry: &OutboxEntry, order: &OrderId) -> Result<Contact, SendError> {
    let Some(sealed) = &entry.recipient.contact else {
        return Ok(Contact::default());
    };
    app.contacts
        .open(
            sealed,
            &contacts::binding(order.as_str(), &entry.recipient.id),
        )
        .map_err(|e| SendError::Permanent(e.to_string()))
}
