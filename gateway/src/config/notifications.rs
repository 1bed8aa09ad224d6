//! `[notifications]` in the deployment file: the channels messages leave through, and how
//! delivery retries. Paths to secret files are resolved here; the files are read when the
//! channels start, so no secret sits in the deployment file itself.

use super::ConfigError;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotifications {
    #[serde(default)]
    retry_base: Option<String>,
    #[serde(default)]
    retry_max: Option<String>,
    #[serde(default)]
    attempts_per_step: Option<u32>,
    #[serde(default)]
    timeout: Option<String>,
    #[serde(default)]
    email: Option<RawEmail>,
    #[serde(default)]
    sms: Option<RawSms>,
    #[serde(default)]
    push: Option<RawPush>,
    #[serde(default, rename = "webhook")]
    webhooks: Vec<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEmail {
    host: String,
    port: u16,
    tls: EmailTls,
    #[serde(default)]
    ca_file: Option<PathBuf>,
    from: String,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSms {
    base_url: String,
    account_sid: String,
    auth_token_file: PathBuf,
    from: String,
    #[serde(default)]
    status_callback: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPush {
    secret_file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    merchant: String,
    url: String,
    secret_file: PathBuf,
}

/// How the gateway talks TLS to the mail relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmailTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS: allowed only to a relay on loopback (a local development mailbox).
    None,
}

/// The mail relay.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailConfig {
    /// Its host name (checked against its certificate).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// How TLS starts.
    pub tls: EmailTls,
    /// An extra root certificate (PEM) to trust besides the system's, for a private relay.
    pub ca_file: Option<PathBuf>,
    /// The sender, `Name <address>`.
    pub from: String,
    /// SMTP AUTH user and the file holding the password.
    pub credentials: Option<(String, PathBuf)>,
}

/// The SMS provider, spoken to in Twilio's Messages API shape.
#[derive(Debug, Clone, PartialEq)]
pub struct SmsConfig {
    /// Its API's base URL (`https://api.twilio.com`).
    pub base_url: String,
    /// The account id.
    pub account_sid: String,
    /// The file holding the auth token.
    pub auth_token_file: PathBuf,
    /// The sending number or sender id.
    pub from: String,
    /// Where the provider posts status callbacks: this gateway's `/v1/callbacks/sms`, as the
    /// provider reaches it.
    pub status_callback: Option<String>,
}

/// The customer app: messages to each recipient's `app_url`, signed as Standard Webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct PushConfig {
    /// The file holding the signing secrets, one `whsec_…` per line, the newest first.
    pub secret_file: PathBuf,
}

/// A merchant's integration endpoint: it hears about the merchant's parcels and returns (never
/// with a code).
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    /// The merchant (a checkout token's subject).
    pub merchant: String,
    /// Where.
    pub url: String,
    /// The file holding its signing secrets, one `whsec_…` per line, the newest first.
    pub secret_file: PathBuf,
}

/// How failed attempts are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The first wait; each later one doubles, drawn with full jitter.
    pub base: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Attempts on one step of a plan before it falls back to the next.
    pub attempts_per_step: u32,
}

/// The resolved `[notifications]`.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationConfig {
    /// Retries.
    pub retry: RetryPolicy,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// E-mail, if configured.
    pub email: Option<EmailConfig>,
    /// SMS, if configured.
    pub sms: Option<SmsConfig>,
    /// The customer app, if configured.
    pub push: Option<PushConfig>,
    /// Merchants' integration endpoints, one per merchant.
    pub webhooks: Vec<WebhookConfig>,
}

fn duration(field: &str, raw: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    match raw {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text)
            .map_err(|e| ConfigError::Invalid(format!("notifications.{field} {text:?}: {e}"))),
    }
}

fn http_url(field: &str, url: &str) -> Result<(), ConfigError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| ConfigError::Invalid(format!("notifications.{field} {url:?}: {e}")))?;
    let loopback = parsed.host_str().is_some_and(is_loopback);
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(ConfigError::Invalid(format!(
            "notifications.{field} {url:?} must be https (plain http on loopback only)"
        ))),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl RawNotifications {
    pub(super) fn resolve(self, base: &Path) -> Result<NotificationConfig, ConfigError> {
        let retry = RetryPolicy {
            base: duration(
                "retry_base",
                self.retry_base.as_deref(),
                Duration::from_secs(2),
            )?,
            max: duration(
                "retry_max",
                self.retry_max.as_deref(),
                Duration::from_secs(600),
            )?,
            attempts_per_step: self.attempts_per_step.unwrap_or(5),
        };
        if !(1..=20).contains(&retry.attempts_per_step) {
            return Err(ConfigError::Invalid(format!(
                "notifications.attempts_per_step {} is outside 1..=20",
                retry.attempts_per_step
            )));
        }
        let timeout = duration("timeout", self.timeout.as_deref(), Duration::from_secs(10))?;
        let email = self.email.map(|e| resolve_email(e, base)).transpose()?;
        let sms = match self.sms {
            Some(s) => {
                http_url("sms.base_url", &s.base_url)?;
                if let Some(callback) = &s.status_callback {
                    http_url("sms.status_callback", callback)?;
                }
                Some(SmsConfig {
                    base_url: s.base_url.trim_end_matches('/').to_owned(),
                    account_sid: s.account_sid,
                    auth_token_file: base.join(s.auth_token_file),
                    from: s.from,
                    status_callback: s.status_callback,
                })
            }
            None => None,
        };
        let mut merchants = std::collections::BTreeSet::new();
        let webhooks = self
            .webhooks
            .into_iter()
            .map(|w| {
                http_url("webhook.url", &w.url)?;
                if !merchants.insert(w.merchant.clone()) {
                    return Err(ConfigError::Invalid(format!(
                        "notifications.webhook: merchant {:?} is listed twice",
                        w.merchant
                    )));
                }
                Ok(WebhookConfig {
                    merchant: w.merchant,
                    url: w.url,
                    secret_file: base.join(w.secret_file),
                })
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        Ok(NotificationConfig {
            retry,
            timeout,
            email,
            sms,
            push: self.push.map(|p| PushConfig {
                secret_file: base.join(p.secret_file),
            }),
            webhooks,
        })
    }
}

fn resolve_email(raw: RawEmail, base: &Path) -> Result<EmailConfig, ConfigError> {
    if raw.tls == EmailTls::None && !is_loopback(&raw.host) {
        return Err(ConfigError::Invalid(format!(
            "notifications.email.tls = \"none\" is allowed for a relay on loopback only, not {:?}",
            raw.host
        )));
    }
    if raw.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(ConfigError::Invalid(format!(
            "notifications.email.from {:?} is not a mailbox (`Name <address>`)",
            raw.from
        )));
    }
    let credentials = match (raw.username, raw.password_file) {
        (Some(user), Some(file)) => Some((user, base.join(file))),
        (None, None) => None,
        _ => {
            return Err(ConfigError::Invalid(
                "notifications.email needs both username and password_file, or neither".into(),
            ));
        }
    };
    Ok(EmailConfig {
        host: raw.host,
        port: raw.port,
        tls: raw.tls,
        ca_file: raw.ca_file.map(|f| base.join(f)),
        from: raw.from,
        credentials,
    })
}
