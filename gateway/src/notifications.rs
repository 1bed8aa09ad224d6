//! Notifications: the planner asks the notification router how each message goes
//! ([`plan`]), and the sender delivers what is due over the configured channels — e-mail over
//! SMTP, SMS through a provider's HTTP API, the customer app and integrators through signed
//! webhooks. Each outbox entry is one message, delivered at least once under a stable
//! idempotency key; what each attempt came to is recorded in the store, which decides the next
//! attempt, the fallback to the plan's next step, or a dead letter (see docs/notifications.md).

mod deliver;
mod email;
pub mod message;
mod plan;
mod sms;
pub mod webhook;

use crate::api::App;
use crate::config::{DeployConfig, RetryPolicy, StationInfo};
use lockergrid_protocol::StationId;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub use sms::report as sms_report;

/// What a channel made of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// It reached the recipient's side.
    Delivered,
    /// The provider took it under this id; its report follows.
    Accepted(String),
}

/// Why a channel did not take a message. Errors never hold an address or a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth another try: a timeout, 408, 429, 5xx, an SMTP 4xx, a connection that failed.
    Transient {
        /// What happened.
        error: String,
        /// How long the receiver asked to wait (Retry-After).
        after: Option<Duration>,
    },
    /// This channel will not deliver it: a bad address, another 4xx, an SMTP 5xx.
    Permanent(String),
}

/// The configured channels and what messages say about stations.
pub struct Channels {
    email: Option<email::Email>,
    sms: Option<sms::Sms>,
    push: Option<webhook::Secrets>,
    integrators: BTreeMap<String, (String, webhook::Secrets)>,
    webhooks: webhook::Webhooks,
    retry: RetryPolicy,
    stations: BTreeMap<StationId, StationInfo>,
    utc_offset_minutes: i32,
}

impl Channels {
    /// The channels `deployment` configures; reads their secret files now.
    pub fn new(deployment: &DeployConfig) -> anyhow::Result<Channels> {
        let config = &deployment.notifications;
        let integrators = config
            .webhooks
            .iter()
            .map(|w| {
                let secrets = webhook::Secrets::load(&w.secret_file)?;
                Ok((w.merchant.clone(), (w.url.clone(), secrets)))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Channels {
            email: config
                .email
                .as_ref()
                .map(|e| email::Email::new(e, config.timeout))
                .transpose()?,
            sms: config
                .sms
                .as_ref()
                .map(|s| sms::Sms::new(s, config.timeout))
                .transpose()?,
            push: config
                .push
                .as_ref()
                .map(|p| webhook::Secrets::load_or_create(&p.secret_file))
                .transpose()?,
            integrators,
            webhooks: webhook::Webhooks::new(config.timeout)?,
            retry: config.retry,
            stations: deployment.station_info.clone(),
            utc_offset_minutes: deployment.utc_offset_minutes,
        })
    }

    /// The URL the SMS provider posted a status callback to, given the query it carried: the
    /// configured callback URL, which is what the provider signs.
    pub fn sms_callback_url(&self, query: Option<&str>) -> Option<String> {
        let base = self.sms.as_ref()?.status_callback()?;
        Some(match query {
            Some(q) => format!("{base}?{q}"),
            None => base.to_owned(),
        })
    }

    /// Whether `signature` is the SMS provider's for a status callback to `url` with `fields`;
    /// `false` when no SMS provider is configured.
    pub fn verify_sms_callback(
        &self,
        url: &str,
        fields: &[(String, String)],
        signature: &str,
    ) -> bool {
        self.sms
            .as_ref()
            .is_some_and(|sms| sms.verify_callback(url, fields, signature))
    }
}

/// Plans new outbox entries and delivers due messages every `every`, and at once when the
/// outbox grows, until `shutdown`.
pub async fn run(
    app: Arc<App>,
    channels: Arc<Channels>,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut cursor = 1;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
            _ = app.store.outbox_grew() => {}
        }
        if let Err(e) = plan::plan_pending(&app, &mut cursor).await {
            tracing::error!(error = %e, "planning notifications failed; retrying");
        }
        if let Err(e) = deliver::deliver_due(&app, &channels).await {
            tracing::error!(error = %e, "delivering notifications failed; retrying");
        }
    }
}
