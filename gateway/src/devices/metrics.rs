//! The device plane's own metrics: unlock commands by outcome, commands pending, locker events
//! by kind and result. The gateway's registry exposes them beside everything else.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Labels of one command count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CommandLabels {
    /// `executed`, `refused`, `failed`, `expired`.
    pub outcome: &'static str,
}

/// Labels of device-plane events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EventLabels {
    /// `door_opened`, `door_closed`, `code_entered`, `tamper`, `offline_pickup`.
    pub event: &'static str,
    /// `applied`, or `duplicate` for an id applied before.
    pub result: &'static str,
}

/// Labels of a rollout's lockers by state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RolloutLabels {
    /// The rollout's id.
    pub rollout: String,
    /// `pending`, `offered`, `installed`, `confirmed`, `failed`, `cancelled`.
    pub state: &'static str,
}

/// The label of one rollout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RolloutIdLabel {
    /// The rollout's id.
    pub rollout: String,
}

/// Labels of alert counts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct AlertLabels {
    /// `open` or `acknowledged` (for the gauge), `raised` or `resolved` (for the counter).
    pub status: &'static str,
    /// `info`, `warning`, `critical`.
    pub severity: &'static str,
}

/// What the device task counts.
#[derive(Debug, Default)]
pub struct DeviceMetrics {
    /// Alerts not yet resolved, by status and severity, as of the latest change.
    pub alerts: Family<AlertLabels, Gauge>,
    /// Alerts raised and resolved from lockers' telemetry, by severity.
    pub alert_changes: Family<AlertLabels, Counter>,
    /// Heartbeats not put to the site rules because the assessment was behind (the next one
    /// of the station is).
    pub assess_skipped: Counter,
    /// Unlock commands by what became of them.
    pub commands: Family<CommandLabels, Counter>,
    /// Commands sent and not yet acknowledged.
    pub commands_pending: Gauge,
    /// Locker events by kind and whether they were new.
    pub events: Family<EventLabels, Counter>,
    /// Bytes of firmware images sent to lockers and edge nodes.
    pub firmware_bytes_sent: Counter,
    /// Each rollout's lockers by state.
    pub rollout_lockers: Family<RolloutLabels, Gauge>,
    /// Each rollout's current wave, from 1.
    pub rollout_wave: Family<RolloutIdLabel, Gauge>,
}

impl DeviceMetrics {
    /// Adds them to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "lockergrid_device_commands",
            "Unlock commands by outcome at the locker",
            self.commands.clone(),
        );
        registry.register(
            "lockergrid_rollout_lockers",
            "Lockers of each firmware rollout by state",
            self.rollout_lockers.clone(),
        );
        registry.register(
            "lockergrid_rollout_wave",
            "The wave each firmware rollout is at, from 1",
            self.rollout_wave.clone(),
        );
        registry.register(
            "lockergrid_firmware_bytes_sent",
            "Bytes of firmware images sent to lockers and edge nodes",
            self.firmware_bytes_sent.clone(),
        );
        registry.register(
            "lockergrid_device_commands_pending",
            "Unlock commands sent and not yet acknowledged",
            self.commands_pending.clone(),
        );
        registry.register(
            "lockergrid_device_events",
            "Locker events by kind, applied or duplicate",
            self.events.clone(),
        );
        registry.register(
            "lockergrid_alerts",
            "Alerts not yet resolved, by status and severity",
            self.alerts.clone(),
        );
        registry.register(
            "lockergrid_alert_changes",
            "Alerts raised and resolved from lockers' telemetry, by severity",
            self.alert_changes.clone(),
        );
        registry.register(
            "lockergrid_telemetry_assess_skipped",
            "Heartbeats not put to the site rules because the assessment was behind",
            self.assess_skipped.clone(),
        );
    }
}
