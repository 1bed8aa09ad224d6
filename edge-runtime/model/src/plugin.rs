//! What the node asks the site-rules and notification-router plugins, and what they answer, in
//! the node's own types; `convert.rs` maps them to and from the WIT types.

use lockergrid_protocol::{CompartmentId, StationId, Timestamp};
use serde::{Deserialize, Serialize};

/// Who is at the locker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessRole {
    /// A customer collecting a parcel.
    Customer,
    /// A courier depositing one.
    Agent,
    /// A carrier collecting expired parcels or returns.
    Carrier,
    /// An operator.
    Operator,
}

/// How they identified themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessMethod {
    /// An 8-digit pickup code on the keypad.
    PickupCode,
    /// A QR code on the reader.
    QrCode,
    /// A token or badge.
    Credential,
}

/// Someone trying to open a compartment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessAttempt {
    /// The station.
    pub station: StationId,
    /// The compartment that would open.
    pub compartment: CompartmentId,
    /// Who.
    pub role: AccessRole,
    /// How.
    pub method: AccessMethod,
    /// When.
    pub at: Timestamp,
    /// Minutes since local midnight at the station.
    pub local_minute: u16,
    /// Whether the compartment is climate-controlled.
    pub climate_controlled: bool,
}

/// A site's answer to an access attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessDecision {
    /// Open.
    Allow,
    /// Stay shut, for this reason.
    Deny(String),
    /// The site's rules could not answer (their plugin failed or is out of service): stay shut,
    /// unless an operator's override is in force at the station.
    Unavailable(String),
}

/// A reading a locker reported.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Telemetry {
    /// Compartment temperature, °C.
    TemperatureC(f32),
    /// Battery charge.
    BatteryPercent(u8),
    /// Whether mains power is present.
    MainsPower(bool),
    /// Whether the tamper switch is tripped.
    Tamper(bool),
    /// How long a door has stood open.
    DoorOpenSeconds(u32),
}

/// A sensor reading with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The station.
    pub station: StationId,
    /// The compartment, for per-compartment sensors.
    pub compartment: Option<CompartmentId>,
    /// Whether that compartment is climate-controlled.
    pub climate_controlled: bool,
    /// When it was taken.
    pub at: Timestamp,
    /// What it says.
    pub value: Telemetry,
}

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// For the record.
    Info,
    /// Someone should look.
    Warning,
    /// Someone must act now.
    Critical,
}

impl Severity {
    /// The severity as the API, the metrics and the access log name it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Something an operator should know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// How urgent.
    pub severity: Severity,
    /// A stable code, e.g. `temperature-high`.
    pub code: String,
    /// For people.
    pub message: String,
    /// Take the station out of service until an operator clears it.
    pub lock_down: bool,
}

/// What happened to a parcel that someone should hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationEvent {
    /// The parcel is in its compartment; the pickup code goes out.
    ParcelStored,
    /// A reminder while it waits.
    Reminder,
    /// The pickup window closes soon.
    Expiring,
    /// The window closed; the parcel goes back.
    Expired,
    /// A drop-off code for a return.
    ReturnCode,
    /// The return was dropped off.
    ReturnReceived,
    /// The customer took the parcel.
    PickedUp,
    /// A carrier took the expired parcel back to its sender.
    ReturnedToSender,
    /// A carrier took the dropped-off return away.
    ReturnCollected,
    /// The station of a held reservation left service; the parcel goes to another one (the
    /// message names it).
    ReservationMoved,
    /// The station of a held reservation left service and no station near it had room: the
    /// reservation is released.
    ReservationCancelled,
}

impl NotificationEvent {
    /// Every event.
    pub const ALL: [NotificationEvent; 11] = [
        NotificationEvent::ParcelStored,
        NotificationEvent::Reminder,
        NotificationEvent::Expiring,
        NotificationEvent::Expired,
        NotificationEvent::ReturnCode,
        NotificationEvent::ReturnReceived,
        NotificationEvent::PickedUp,
        NotificationEvent::ReturnedToSender,
        NotificationEvent::ReturnCollected,
        NotificationEvent::ReservationMoved,
        NotificationEvent::ReservationCancelled,
    ];
}

/// A way to reach a recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyChannel {
    /// App push.
    Push,
    /// Text message.
    Sms,
    /// E-mail.
    Email,
    /// The merchant's webhook.
    Webhook,
}

impl NotifyChannel {
    /// Its name in the API, metrics, logs and message keys.
    pub const fn as_str(self) -> &'static str {
        match self {
            NotifyChannel::Push => "push",
            NotifyChannel::Sms => "sms",
            NotifyChannel::Email => "email",
            NotifyChannel::Webhook => "webhook",
        }
    }
}

/// A recipient and what they agreed to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// Who.
    pub id: String,
    /// The channels they accept, in their order of preference.
    pub channels: Vec<NotifyChannel>,
    /// Quiet hours, minutes since local midnight, start and end.
    pub quiet_hours: Option<(u16, u16)>,
    /// Minutes since local midnight for the recipient now.
    pub local_minute: u16,
}

/// One delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Over which channel.
    pub channel: NotifyChannel,
    /// Minutes to wait before it.
    pub delay_minutes: u32,
}

/// Attempts in order; each later one is the fallback when the one before fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryPlan {
    /// The attempts.
    pub steps: Vec<Step>,
}
