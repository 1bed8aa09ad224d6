//! How a notification in the outbox is delivered: the code it carries while undelivered (sealed),
//! where delivery stands, and the lifecycle every report moves through. Reports only move a
//! message forward: a second "delivered", or a "sent" after "delivered", changes nothing.

use crate::IllegalStatusMove;
use crate::NotifyChannel;
use lockergrid_protocol::{ParcelId, ReturnId, Timestamp};
use serde::{Deserialize, Serialize};

/// What an outbox entry tells about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum About {
    /// A parcel for the customer.
    Parcel(ParcelId),
    /// A return the customer sends back.
    Return(ReturnId),
}

impl About {
    /// The parcel's or return's id.
    pub fn as_str(&self) -> &str {
        match self {
            About::Parcel(id) => id.as_str(),
            About::Return(id) => id.as_str(),
        }
    }
}

/// A secret (a pickup or drop-off code) encrypted with AES-256-GCM under the message data key
/// `key_id`, bound to the message that carries it. Kept only until the message is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecret {
    /// Which data key sealed it.
    pub key_id: u32,
    /// The 96-bit nonce, hex.
    pub nonce: String,
    /// The sealed secret with its tag, base64.
    pub ciphertext: String,
}

/// Where a message's delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its next attempt.
    Pending,
    /// A provider took it (an SMS queued) and no delivery report has arrived yet.
    Sent,
    /// It reached the recipient's side: a report said so, a webhook answered 2xx, or the mail
    /// relay accepted it (the farthest point SMTP lets the sender see).
    Delivered,
    /// Every step of its plan failed; an operator may re-queue it.
    Dead,
    /// The code it carries stopped working before it could be delivered.
    Expired,
    /// No longer worth sending: the parcel left, or a newer code replaced the one it carries.
    Cancelled,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 6] = [
        DeliveryStatus::Pending,
        DeliveryStatus::Sent,
        DeliveryStatus::Delivered,
        DeliveryStatus::Dead,
        DeliveryStatus::Expired,
        DeliveryStatus::Cancelled,
    ];

    /// Its name in the API and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
            DeliveryStatus::Expired => "expired",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    /// Nothing more will be attempted.
    pub const fn finished(self) -> bool {
        !matches!(self, DeliveryStatus::Pending | DeliveryStatus::Sent)
    }
}

/// Something that happens to a message's delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryEvent {
    /// A provider accepted it for delivery.
    Accepted,
    /// It reached the recipient's side.
    Delivered,
    /// A step failed and a later step of the plan follows.
    FellBack,
    /// The last step failed.
    PlanUsedUp,
    /// Its code expired first.
    CodeExpired,
    /// It has become pointless.
    Cancelled,
    /// An operator sent a dead letter through its plan again.
    Requeued,
}

impl DeliveryEvent {
    /// Every event.
    pub const ALL: [DeliveryEvent; 7] = [
        DeliveryEvent::Accepted,
        DeliveryEvent::Delivered,
        DeliveryEvent::FellBack,
        DeliveryEvent::PlanUsedUp,
        DeliveryEvent::CodeExpired,
        DeliveryEvent::Cancelled,
        DeliveryEvent::Requeued,
    ];
}

impl DeliveryStatus {
    /// The status after `event`, or the typed refusal. A message that was delivered stays
    /// delivered; a late report that it was delivered moves a dead or expired one forward.
    pub fn apply(
        self,
        event: DeliveryEvent,
    ) -> Result<DeliveryStatus, IllegalStatusMove<DeliveryStatus, DeliveryEvent>> {
        use DeliveryEvent as E;
        use DeliveryStatus as S;
        match (self, event) {
            (S::Pending | S::Sent, E::Accepted) => Ok(S::Sent),
            (S::Pending | S::Sent | S::Dead | S::Expired, E::Delivered) => Ok(S::Delivered),
            (S::Pending | S::Sent, E::FellBack) => Ok(S::Pending),
            (S::Pending | S::Sent, E::PlanUsedUp) => Ok(S::Dead),
            (S::Pending | S::Sent | S::Dead, E::CodeExpired) => Ok(S::Expired),
            (S::Pending | S::Sent | S::Dead, E::Cancelled) => Ok(S::Cancelled),
            (S::Dead, E::Requeued) => Ok(S::Pending),
            (from, event) => Err(IllegalStatusMove { from, event }),
        }
    }
}

/// A message's delivery so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Where it stands.
    pub status: DeliveryStatus,
    /// The plan step being tried, from 0.
    pub step: u32,
    /// Attempts on that step so far.
    pub step_attempts: u32,
    /// Attempts on every step so far.
    pub attempts: u32,
    /// When the next attempt is due; `None` once nothing more is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<Timestamp>,
    /// The last attempt's error, without addresses or codes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The channel that took it, once one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<NotifyChannel>,
    /// The provider's id for it (an SMS message id), which its status callbacks name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<String>,
    /// When it was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<Timestamp>,
}

impl Default for Delivery {
    fn default() -> Delivery {
        Delivery {
            status: DeliveryStatus::Pending,
            step: 0,
            step_attempts: 0,
            attempts: 0,
            next_at: None,
            last_error: None,
            channel: None,
            provider_id: None,
            delivered_at: None,
        }
    }
}

/// The idempotency key of a message over one channel: the same for every attempt, so a
/// receiver recognises a retry after a crash (the e-mail's Message-ID, the webhook id).
pub fn message_key(entry_id: &str, channel: NotifyChannel) -> String {
    format!("{entry_id}.{}", channel.as_str())
}
