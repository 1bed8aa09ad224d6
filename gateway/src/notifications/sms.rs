//! SMS through an HTTP provider, in the shape of Twilio's Messages API: `POST
//! {base}/2010-04-01/Accounts/{sid}/Messages.json` with HTTP Basic auth and a form (`To`, `From`,
//! `Body`, `StatusCallback`), answered 201 with the message's `sid`. The provider then posts
//! status callbacks (`MessageSid`, `MessageStatus`) signed with `X-Twilio-Signature`:
//! base64 HMAC-SHA1, keyed with the auth token, of the callback URL followed by every form
//! field's name and value sorted by name. The API has no idempotency key, so the callback URL
//! carries the message's (`?message=<key>`): a message sent twice after a crash is recognisable.

use super::webhook::{http_status, retry_after, transport_error};
use super::{SendError, Sent};
use crate::config::SmsConfig;
use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use lockergrid_store::DeliveryReport;
use serde::Deserialize;
use sha1::Sha1;
use std::time::Duration;

/// The configured SMS provider.
pub struct Sms {
    http: reqwest::Client,
    messages_url: String,
    account_sid: String,
    auth_token: String,
    from: String,
    status_callback: Option<String>,
}

#[derive(Deserialize)]
struct Created {
    sid: String,
}

impl Sms {
    /// A client for the provider `config` names; reads the auth token now.
    pub fn new(config: &SmsConfig, timeout: Duration) -> anyhow::Result<Sms> {
        let token = std::fs::read_to_string(&config.auth_token_file).with_context(|| {
            format!(
                "cannot read the SMS auth token {:?}",
                config.auth_token_file
            )
        })?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the SMS client")?;
        Ok(Sms {
            http,
            messages_url: format!(
                "{}/2010-04-01/Accounts/{}/Messages.json",
                config.base_url, config.account_sid
            ),
            account_sid: config.account_sid.clone(),
            auth_token: token.trim().to_owned(),
            from: config.from.clone(),
            status_callback: config.status_callback.clone(),
        })
    }

    /// Sends `text` to `to` as message `key`; answers the provider's id of it.
    pub async fn send(&self, key: &str, to: &str, text: &str) -> Result<Sent, SendError> {
        let mut form = vec![("To", to.to_owned()), ("From", self.from.clone())];
        form.push(("Body", text.to_owned()));
        if let Some(callback) = &self.status_callback {
            form.push(("StatusCallback", format!("{callback}?message={key}")));
        }
        let answer = self
            .http
            .post(&self.messages_url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(e) => return Err(transport_error(&e)),
        };
        let status = response.status();
        if !status.is_success() {
            return Err(http_status(status, retry_after(&response)));
        }
        match response.json::<Created>().await {
            Ok(created) => Ok(Sent::Accepted(created.sid)),
            Err(_) => Err(SendError::Transient {
                error: "the provider's answer has no message sid".into(),
                after: None,
            }),
        }
    }

    /// Where the provider posts status callbacks, if anywhere.
    pub fn status_callback(&self) -> Option<&str> {
        self.status_callback.as_deref()
    }

    /// Whether `signature` is the provider's for a callback to `url` with `fields`.
    pub fn verify_callback(&self, url: &str, fields: &[(String, String)], signature: &str) -> bool {
        let mut sorted: Vec<&(String, String)> = fields.iter().collect();
        sorted.sort();
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(self.auth_token.as_bytes())
            .expect("HMAC accepts a key of any length");
        mac.update(url.as_bytes());
        for (name, value) in sorted {
            mac.update(name.as_bytes());
            mac.update(value.as_bytes());
        }
        let Ok(given) = STANDARD.decode(signature.trim()) else {
            return false;
        };
        mac.verify_slice(&given).is_ok()
    }
}

/// What a `MessageStatus` says; `None` for a status this gateway does not know.
pub fn report(status: &str) -> Option<DeliveryReport> {
    match status {
        "accepted" | "scheduled" | "queued" | "sending" | "sent" => Some(DeliveryReport::Sent),
        "delivered" | "read" => Some(DeliveryReport::Delivered),
        "undelivered" | "failed" | "canceled" => Some(DeliveryReport::Failed),
        _ => None,
    }
}
