//! Conversions between the node's types and the WIT types of the plugin worlds. Answers coming
//! from a plugin are checked here or in the caller; nothing a plugin says is trusted as is.

use super::bindings::notification_router as router;
use super::bindings::site_rules as rules;
use super::bindings::types as wit;
use lockergrid_model::Candidate;
use lockergrid_model::StationKind;
use lockergrid_model::{
    AccessAttempt, AccessDecision, AccessMethod, AccessRole, Alert, DeliveryPlan,
    NotificationEvent, NotifyChannel, Reading, Recipient, Severity, Step, Telemetry,
};
use lockergrid_protocol::{ParcelSpec, Size, Tier};

impl From<Size> for wit::Size {
    fn from(s: Size) -> wit::Size {
        match s {
            Size::Small => wit::Size::Small,
            Size::Medium => wit::Size::Medium,
            Size::Large => wit::Size::Large,
            Size::Oversized => wit::Size::Oversized,
        }
    }
}

impl From<Tier> for wit::Tier {
    fn from(t: Tier) -> wit::Tier {
        match t {
            Tier::Standard => wit::Tier::Standard,
            Tier::Prime => wit::Tier::Prime,
            Tier::Business => wit::Tier::Business,
        }
    }
}

impl From<StationKind> for wit::StationKind {
    fn from(k: StationKind) -> wit::StationKind {
        match k {
            StationKind::Urban => wit::StationKind::Urban,
            StationKind::Suburban => wit::StationKind::Suburban,
            StationKind::TransitHub => wit::StationKind::TransitHub,
            StationKind::Residential => wit::StationKind::Residential,
        }
    }
}

impl From<ParcelSpec> for wit::Parcel {
    fn from(p: ParcelSpec) -> wit::Parcel {
        wit::Parcel {
            length_mm: p.length_mm,
            width_mm: p.width_mm,
            height_mm: p.height_mm,
            weight_g: p.weight_g,
        }
    }
}

/// The candidates as the plugin sees them, in columns, for the size the parcel needs.
pub fn stations(candidates: &[Candidate<'_>], size: Size) -> wit::Stations {
    let n = candidates.len();
    let mut out = wit::Stations {
        kind: Vec::with_capacity(n),
        distance_m: Vec::with_capacity(n),
        free: Vec::with_capacity(n),
        total: Vec::with_capacity(n),
        utilisation: Vec::with_capacity(n),
    };
    for c in candidates {
        let fitting = |f: fn(&lockergrid_model::SizeCount) -> u32| -> u32 {
            size.and_larger().map(|s| f(&c.station.count(s))).sum()
        };
        out.kind
            .push(wit::StationKind::from(c.station.record.kind) as u8);
        out.distance_m.push(c.distance_m);
        out.free.push(fitting(|n| n.free));
        out.total.push(fitting(|n| n.total));
        out.utilisation.push(c.station.utilisation(size));
    }
    out
}

impl From<AccessRole> for wit::AccessRole {
    fn from(r: AccessRole) -> wit::AccessRole {
        match r {
            AccessRole::Customer => wit::AccessRole::Customer,
            AccessRole::Agent => wit::AccessRole::Agent,
            AccessRole::Carrier => wit::AccessRole::Carrier,
            AccessRole::Operator => wit::AccessRole::Operator,
        }
    }
}

impl From<AccessMethod> for wit::AccessMethod {
    fn from(m: AccessMethod) -> wit::AccessMethod {
        match m {
            AccessMethod::PickupCode => wit::AccessMethod::PickupCode,
            AccessMethod::QrCode => wit::AccessMethod::QrCode,
            AccessMethod::Credential => wit::AccessMethod::Credential,
        }
    }
}

impl From<&AccessAttempt> for wit::AccessAttempt {
    fn from(a: &AccessAttempt) -> wit::AccessAttempt {
        wit::AccessAttempt {
            station_id: a.station.to_string(),
            compartment_id: a.compartment.to_string(),
            role: a.role.into(),
            method: a.method.into(),
            at_ms: a.at.millis(),
            local_minute: a.local_minute,
            climate_controlled: a.climate_controlled,
        }
    }
}

impl From<rules::Decision> for AccessDecision {
    fn from(d: rules::Decision) -> AccessDecision {
        match d {
            rules::Decision::Allow => AccessDecision::Allow,
            rules::Decision::Deny(reason) => AccessDecision::Deny(reason),
        }
    }
}

impl From<Telemetry> for wit::Telemetry {
    fn from(t: Telemetry) -> wit::Telemetry {
        match t {
            Telemetry::TemperatureC(c) => wit::Telemetry::TemperatureC(c),
            Telemetry::BatteryPercent(p) => wit::Telemetry::BatteryPercent(p),
            Telemetry::MainsPower(on) => wit::Telemetry::MainsPower(on),
            Telemetry::Tamper(on) => wit::Telemetry::Tamper(on),
            Telemetry::DoorOpenSeconds(s) => wit::Telemetry::DoorOpenSeconds(s),
        }
    }
}

impl From<&Reading> for wit::Reading {
    fn from(r: &Reading) -> wit::Reading {
        wit::Reading {
            station_id: r.station.to_string(),
            compartment_id: r.compartment.as_ref().map(ToString::to_string),
            climate_controlled: r.climate_controlled,
            at_ms: r.at.millis(),
            value: r.value.into(),
        }
    }
}

impl From<wit::Severity> for Severity {
    fn from(s: wit::Severity) -> Severity {
        match s {
            wit::Severity::Info => Severity::Info,
            wit::Severity::Warning => Severity::Warning,
            wit::Severity::Critical => Severity::Critical,
        }
    }
}

impl From<wit::Alert> for Alert {
    fn from(a: wit::Alert) -> Alert {
        Alert {
            severity: a.severity.into(),
            code: a.code,
            message: a.message,
            lock_down: a.lock_down,
        }
    }
}

impl From<NotificationEvent> for wit::NotificationEvent {
    fn from(e: NotificationEvent) -> wit::NotificationEvent {
        match e {
            NotificationEvent::ParcelStored => wit::NotificationEvent::ParcelStored,
            NotificationEvent::Reminder => wit::NotificationEvent::Reminder,
            NotificationEvent::Expiring => wit::NotificationEvent::Expiring,
            NotificationEvent::Expired => wit::NotificationEvent::Expired,
            NotificationEvent::ReturnCode => wit::NotificationEvent::ReturnCode,
            NotificationEvent::ReturnReceived => wit::NotificationEvent::ReturnReceived,
            NotificationEvent::PickedUp => wit::NotificationEvent::PickedUp,
            NotificationEvent::ReturnedToSender => wit::NotificationEvent::ReturnedToSender,
            NotificationEvent::ReturnCollected => wit::NotificationEvent::ReturnCollected,
            NotificationEvent::ReservationMoved => wit::NotificationEvent::ReservationMoved,
            NotificationEvent::ReservationCancelled => wit::NotificationEvent::ReservationCancelled,
        }
    }
}

impl From<NotifyChannel> for wit::Channel {
    fn from(c: NotifyChannel) -> wit::Channel {
        match c {
            NotifyChannel::Push => wit::Channel::Push,
            NotifyChannel::Sms => wit::Channel::Sms,
            NotifyChannel::Email => wit::Channel::Email,
            NotifyChannel::Webhook => wit::Channel::Webhook,
        }
    }
}

impl From<wit::Channel> for NotifyChannel {
    fn from(c: wit::Channel) -> NotifyChannel {
        match c {
            wit::Channel::Push => NotifyChannel::Push,
            wit::Channel::Sms => NotifyChannel::Sms,
            wit::Channel::Email => NotifyChannel::Email,
            wit::Channel::Webhook => NotifyChannel::Webhook,
        }
    }
}

impl From<&Recipient> for wit::Recipient {
    fn from(r: &Recipient) -> wit::Recipient {
        wit::Recipient {
            id: r.id.clone(),
            channels: r.channels.iter().map(|&c| c.into()).collect(),
            quiet_hours: r.quiet_hours,
            local_minute: r.local_minute,
        }
    }
}

impl From<router::Plan> for DeliveryPlan {
    fn from(p: router::Plan) -> DeliveryPlan {
        DeliveryPlan {
            steps: p
                .steps
                .into_iter()
                .map(|s| Step {
                    channel: s.channel.into(),
                    delay_minutes: s.delay_minutes,
                })
                .collect(),
        }
    }
}
