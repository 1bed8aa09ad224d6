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

/// What the device task counts.
#[derive(Debug, Default)]
pub struct DeviceMetrics {
    /// Unlock commands by what became of them.
    pub commands: Family<CommandLabels, Counter>,
    /// Commands sent and not yet acknowledged.
    pub commands_pending: Gauge,
    /// Locker events by kind and whether they were new.
    pub events: Family<EventLabels, Counter>,
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
            "lockergrid_device_commands_pending",
            "Unlock commands sent and not yet acknowledged",
            self.commands_pending.clone(),
        );
        registry.register(
            "lockergrid_device_events",
            "Locker events by kind, applied or duplicate",
            self.events.clone(),
        );
    }
}
