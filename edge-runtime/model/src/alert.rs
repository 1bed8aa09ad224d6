//! Alerts as records with a lifecycle (open → acknowledged → resolved): raised by a station's
//! site rules from its locker's telemetry, or by the node itself (a station gone silent, a latch
//! failing, a self-test that failed), one open record per station, source and code at a time.

use crate::{AlertStatus, DecidedBy, Severity};
use lockergrid_protocol::{StationId, Timestamp};
use serde::{Deserialize, Serialize};

/// One alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRecord {
    /// Its id.
    pub id: String,
    /// The station it concerns.
    pub station: StationId,
    /// What raised it: the reading it came from (`battery`, `mains`, `tamper`,
    /// `temperature:<compartment>`, `door:<compartment>`) or the node's own check (`node`).
    pub source: String,
    /// A stable code, e.g. `battery-low`.
    pub code: String,
    /// How urgent.
    pub severity: Severity,
    /// For people.
    pub message: String,
    /// Where it is in its lifecycle; changed only through [`AlertStatus::apply`].
    pub status: AlertStatus,
    /// When it was raised.
    pub opened_at: Timestamp,
    /// Who acknowledged it, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<(String, Timestamp)>,
    /// When it was resolved: its reading came back clean, or an operator resolved it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// The site rules that raised it, when they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
}

impl AlertRecord {
    /// The key of the one open record a station, source and code may have.
    pub fn open_key(station: &StationId, source: &str, code: &str) -> String {
        format!("{station}/{source}/{code}")
    }
}
