//! The device registry's record: which locker controller a station has, the certificate it
//! connects with, and where it is in its lifecycle (DESIGN.md §9). Only a device the registry
//! holds as provisioned or active, presenting the certificate it was provisioned with, may
//! connect to a node.

use crate::DeviceStatus;
use lockergrid_protocol::{LockerId, StationId, Timestamp};
use serde::{Deserialize, Serialize};

/// One locker controller in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Its id, the identity in its certificate (one controller per station, so the station's id).
    pub id: LockerId,
    /// The station it runs.
    pub station: StationId,
    /// The serial of the certificate it was provisioned with, lowercase hex: the only one it may
    /// connect with.
    pub serial: String,
    /// The SHA-256 of that certificate (DER), lowercase hex; `None` for a device taken into the
    /// registry from a CA index written before the registry existed, which kept no certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// Its hardware model; firmware images name the model they are for.
    pub model: String,
    /// The firmware it reported after its latest boot (never what an install claimed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    /// Where it is in its lifecycle; changed only through [`DeviceStatus::apply`].
    pub status: DeviceStatus,
    /// When it was provisioned (or provisioned again with a new certificate).
    pub provisioned_at: Timestamp,
    /// When it passed its acceptance test and went active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activated_at: Option<Timestamp>,
    /// When it was decommissioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decommissioned_at: Option<Timestamp>,
    /// When a node last heard from it, as last recorded (the node's own view is fresher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    /// What its latest self-test found wrong (latches or door sensors that did not answer);
    /// empty when it passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub self_test_failures: Vec<String>,
}

impl DeviceRecord {
    /// Whether a node may let it connect: provisioned (to run its acceptance test) or active.
    pub fn may_connect(&self) -> bool {
        matches!(
            self.status,
            DeviceStatus::Provisioned | DeviceStatus::Active
        )
    }
}
