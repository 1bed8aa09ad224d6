//! Sync between the gateway and its edge nodes (DESIGN.md §7, docs/offline.md).
//!
//! The gateway keeps, per edge node, the set of records that node needs for its stations (the
//! stations, their compartments, the keyed hashes of their active pickup codes, stored parcels,
//! station code keys, the site-rules plugins bound there, the revocation list) and sends every
//! change as a numbered delta on `edges/{id}/commands`. An edge node applies a delta only on top
//! of the version it names as its base, and reports the version it holds on
//! `edges/{id}/telemetry`; that report is the acknowledgement. The gateway answers a report
//! that is behind with the deltas it still keeps after that version, or with the whole set (a
//! full resync) when the node has fallen further behind than the kept deltas reach, or holds a
//! version of another epoch (the gateway restarted and numbers from 1 again).

use crate::{Binding, DeviceRecord, Scope, World};
use crate::{
    CodeRecord, CommandRecord, CompartmentRecord, DecidedBy, LeaseRecord, Parcel, Reservation,
    ReturnRecord, StationRecord,
};
use lockergrid_protocol::message::FirmwareDownlink;
use lockergrid_protocol::topic::Channel;
use lockergrid_protocol::{
    CompartmentId, LockerId, Lockout, ParcelId, ReturnId, StationId, Timestamp,
};
use serde::{Deserialize, Serialize};

/// The layout of the sync messages this crate reads and writes.
pub const SYNC_VERSION: u16 = 1;

/// A version of an edge node's records: the gateway's epoch (new at every gateway start) and a
/// number counting deltas within it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncPosition {
    /// The gateway's epoch.
    pub epoch: String,
    /// The last delta applied.
    pub version: u64,
}

/// One record an edge node mirrors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum SyncItem {
    /// A station the edge node serves.
    Station(StationRecord),
    /// One of its compartments, with its state.
    Compartment(CompartmentRecord),
    /// An active pickup code at one of its stations, as its keyed hash (never the code).
    Code {
        /// The keyed hash, hex.
        hash: String,
        /// Which parcel it releases, where, until when.
        code: CodeRecord,
    },
    /// A parcel stored at one of its stations, which a code may release while the gateway is
    /// unreachable.
    Parcel(Parcel),
    /// The reservation of such a parcel.
    Reservation(Reservation),
    /// The key a station's codes are hashed with (hex): the edge node verifies codes of its own
    /// stations only.
    StationKey {
        /// The station.
        station: StationId,
        /// Its key, hex.
        key: String,
    },
    /// The edge node's lease at one of its stations: the compartments it may open for a
    /// return drop-off while its uplink is down.
    Lease(LeaseRecord),
    /// A return authorised at one of its stations, with its drop-off code's keyed hash.
    Return(ReturnRecord),
    /// A plugin bound at a scope that covers the edge node's stations, with its component and
    /// signature: the edge node verifies it against the keys it was enrolled with before it runs.
    Plugin(PluginRecord),
    /// The deployment CA's certificate revocation list (PEM), which the edge node's device
    /// front enforces on its lockers.
    Crl {
        /// The list.
        pem: String,
    },
    /// A station's wrong-code count at the gateway (a station without failures has none): cut
    /// off, the edge node goes on from there.
    Lockout {
        /// The station.
        station: StationId,
        /// Its count.
        lockout: Lockout,
    },
    /// The registry entry of a locker at one of its stations: the edge node's device front
    /// admits only a provisioned or active device, with the certificate it was provisioned with.
    Device(DeviceRecord),
    /// A record that no longer exists (a code spent, revoked or expired), by its key.
    Removed {
        /// The record's [`SyncItem::key`].
        key: String,
    },
}

impl SyncItem {
    /// The key the record is known by across versions: `station/{id}`, `compartment/{id}`,
    /// `code/{hash}`, `parcel/{id}`, `reservation/{id}`, `station-key/{id}`,
    /// `lease/{station}`, `return/{id}`, `lockout/{station}`, `plugin/{world}@{scope}`,
    /// `device/{id}` or `crl`.
    pub fn key(&self) -> String {
        match self {
            SyncItem::Crl { .. } => "crl".into(),
            SyncItem::Device(d) => format!("device/{}", d.id),
            SyncItem::Plugin(p) => format!("plugin/{}", p.slot()),
            SyncItem::Lease(l) => format!("lease/{}", l.station),
            SyncItem::Lockout { station, .. } => format!("lockout/{station}"),
            SyncItem::Return(r) => format!("return/{}", r.id),
            SyncItem::Parcel(p) => format!("parcel/{}", p.id),
            SyncItem::Reservation(r) => format!("reservation/{}", r.id),
            SyncItem::StationKey { station, .. } => format!("station-key/{station}"),
            SyncItem::Station(s) => format!("station/{}", s.id),
            SyncItem::Compartment(c) => format!("compartment/{}", c.id),
            SyncItem::Code { hash, .. } => format!("code/{hash}"),
            SyncItem::Removed { key } => key.clone(),
        }
    }
}

/// A plugin as the gateway binds it, with what the edge node needs to verify and run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PluginRecord {
    /// The binding in force at the gateway: world, scope, name, version, SHA-256, settings and
    /// limits.
    pub binding: Binding,
    /// The component's bytes, base64.
    pub component: String,
}

impl PluginRecord {
    /// The binding's world and scope, `{world}@{scope}`: one record per slot.
    pub fn slot(&self) -> String {
        format!("{}@{}", self.binding.world, self.binding.scope)
    }
}

/// A numbered change to an edge node's records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncBatch {
    /// The gateway's epoch.
    pub epoch: String,
    /// The version this batch applies on top of; ignored for a full batch.
    pub base: u64,
    /// The version the node holds after applying it.
    pub version: u64,
    /// The whole set: the node drops every mirrored record not in it.
    pub full: bool,
    /// What changed (or everything, when `full`).
    pub items: Vec<SyncItem>,
}

impl SyncBatch {
    /// Where the node stands after applying it.
    pub fn position(&self) -> SyncPosition {
        SyncPosition {
            epoch: self.epoch.clone(),
            version: self.version,
        }
    }

    /// Whether a node at `at` may apply it: a full batch always, a delta only on its base.
    pub fn applies_on(&self, at: Option<&SyncPosition>) -> bool {
        self.full || at.is_some_and(|p| p.epoch == self.epoch && p.version == self.base)
    }
}

/// What the gateway sends on `edges/{id}/commands`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeDownlink {
    /// [`SYNC_VERSION`].
    pub v: u16,
    /// The sequence number of the last of the edge node's decisions the gateway has applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decisions_applied: Option<u64>,
    /// Changes to apply, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync: Vec<SyncBatch>,
    /// What the gateway has for the edge node's lockers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lockers: Vec<LockerDownlink>,
    /// Bytes of a firmware image for the edge node's cache, answering its
    /// [`UplinkBody::FirmwareRequest`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareBytes>,
}

/// Bytes of a firmware image the gateway sends an edge node for its cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareBytes {
    /// The image's SHA-256.
    pub sha256: String,
    /// Where they start.
    pub offset: u64,
    /// The bytes, base64; empty at or past the image's end, and none when the gateway holds no
    /// such image.
    pub data: Option<String>,
}

/// The gateway's unlock command and event acknowledgements for one locker behind an edge node.
/// The edge node is the only issuer of signed commands to its lockers: it gives the command the
/// locker's next counter of its own, signs it with its own key and remembers it by id, so a
/// command the gateway sends again is never executed twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LockerDownlink {
    /// The locker.
    pub locker: LockerId,
    /// An unlock to issue (its counter is the gateway's and is replaced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandRecord>,
    /// Events of the locker the gateway has applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acked_events: Vec<String>,
    /// A firmware offer or its cancellation, passed on as it is (the edge node keeps the
    /// offered manifest to fill its image cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareDownlink>,
}

/// Which of a locker's channels a relayed message came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayedChannel {
    /// `lockers/{id}/events`.
    Events,
    /// `lockers/{id}/telemetry`.
    Telemetry,
    /// `lockers/{id}/acks`.
    Acks,
}

impl RelayedChannel {
    /// The locker channel it stands for.
    pub fn channel(self) -> Channel {
        match self {
            RelayedChannel::Events => Channel::Events,
            RelayedChannel::Telemetry => Channel::Telemetry,
            RelayedChannel::Acks => Channel::Acks,
        }
    }

    /// The relayed form of a locker channel the locker publishes on.
    pub fn of(channel: Channel) -> Option<RelayedChannel> {
        match channel {
            Channel::Events => Some(RelayedChannel::Events),
            Channel::Telemetry => Some(RelayedChannel::Telemetry),
            Channel::Acks => Some(RelayedChannel::Acks),
            // An edge node answers its lockers' firmware requests itself, from its cache.
            Channel::Commands | Channel::Firmware => None,
        }
    }
}

/// What an edge node sends on `edges/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeUplink {
    /// [`SYNC_VERSION`].
    pub v: u16,
    /// What it carries.
    #[serde(flatten)]
    pub body: UplinkBody,
}

/// The two things an edge node sends up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum UplinkBody {
    /// A locker's message, unchanged, with the locker and the channel it came on. The gateway
    /// treats it exactly as if the locker had sent it to its own listener, for lockers of the
    /// edge node's stations only.
    Relayed {
        /// The locker.
        locker: LockerId,
        /// Its channel.
        channel: RelayedChannel,
        /// The locker's message.
        message: serde_json::Value,
    },
    /// Decisions the edge node made while the gateway was unreachable, in sequence order.
    Decisions {
        /// From its outbox.
        decisions: Vec<EdgeDecision>,
    },
    /// Bytes of a firmware image its lockers need that its cache does not hold yet.
    FirmwareRequest {
        /// The image's SHA-256.
        sha256: String,
        /// The first byte wanted (where its cached copy ends).
        offset: u64,
        /// How many at most.
        len: u32,
    },
}

/// A decision an edge node made itself, numbered in the order it made them; its outbox keeps it
/// until the gateway confirms it applied it. The gateway applies each sequence number once, in
/// order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeDecision {
    /// The edge node's sequence number: unique per edge node, strictly increasing, surviving
    /// restarts.
    pub seq: u64,
    /// When, by the edge node's clock.
    pub at: Timestamp,
    /// What it decided.
    #[serde(flatten)]
    pub decision: Decision,
}

/// What an edge node decides on its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// A code opened a compartment and its door closed: the parcel was picked up.
    PickedUp {
        /// Where.
        station: StationId,
        /// The parcel.
        parcel: ParcelId,
        /// The keyed hash of the code that released it.
        code_hash: String,
        /// The edge node's unlock command.
        command: String,
        /// The locker's door-closed event.
        event: String,
        /// The site rules that allowed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decided_by: Option<DecidedBy>,
    },
    /// A locker event that changes nothing but the record (a door opened, a code the site rules
    /// denied), recorded here.
    Recorded {
        /// Where.
        station: StationId,
        /// The locker's event.
        event: String,
        /// The access log's action.
        action: String,
        /// Its target.
        target: String,
        /// Its outcome.
        outcome: String,
        /// The site rules that decided it, if they did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decided_by: Option<DecidedBy>,
    },
    /// A return's drop-off code opened a compartment of the edge node's lease and its door
    /// closed: the return waits there for a carrier.
    ReturnDroppedOff {
        /// Where.
        station: StationId,
        /// The return.
        return_id: ReturnId,
        /// The compartment, from the lease.
        compartment: CompartmentId,
        /// The drop-off code's keyed hash.
        code_hash: String,
        /// The lease epoch the edge node held when it opened the compartment.
        lease_epoch: u64,
        /// The edge node's unlock command.
        command: String,
        /// The locker's door-closed event.
        event: String,
        /// The site rules that allowed it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decided_by: Option<DecidedBy>,
    },
    /// The door of a deposit or a return collection the gateway had unlocked closed while the
    /// edge node was cut off: the gateway completes it (stores the parcel and issues its code, or
    /// frees the return's compartment) when it hears.
    ForwardedDoorClosed {
        /// Where.
        station: StationId,
        /// The locker's door-closed event.
        event: String,
        /// The compartment.
        compartment: CompartmentId,
        /// The gateway's unlock command.
        command: String,
    },
    /// A code entered at the keypad matched no active code (or was no code at all).
    CodeRejected {
        /// Where.
        station: StationId,
        /// The locker's event.
        event: String,
        /// The station's wrong-code count at the edge node after it, which the gateway's count
        /// takes in, so a cut uplink never gives a second budget.
        #[serde(default)]
        lockout: Lockout,
    },
}

/// What an edge node reports on `edges/{id}/telemetry`: at start, after every batch it applies,
/// and as its heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeStatus {
    /// [`SYNC_VERSION`].
    pub v: u16,
    /// When, by the edge node's clock.
    pub at: Timestamp,
    /// The version of its records, `None` before its first sync.
    pub position: Option<SyncPosition>,
    /// The stations it mirrors.
    pub stations: Vec<StationId>,
    /// Compartments it mirrors.
    pub compartments: u64,
    /// Active pickup codes it mirrors.
    pub codes: u64,
    /// Decisions in its outbox, not yet confirmed by the gateway.
    #[serde(default)]
    pub outbox: u64,
    /// The plugins it was sent, slot by slot: what serves there and what it refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<EdgePlugin>,
    /// The epoch of each lease it holds: its confirmation, which lets the gateway free the
    /// compartments taken back before that epoch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<LeaseHeld>,
}

/// A lease an edge node holds, as it reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseHeld {
    /// The station.
    pub station: StationId,
    /// The epoch it holds.
    pub epoch: u64,
}

/// One plugin slot at an edge node, as it reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgePlugin {
    /// The world.
    pub world: World,
    /// The scope.
    pub scope: Scope,
    /// What serves there now; `None` while the built-in decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving: Option<PluginVersion>,
    /// The last version the gateway sent that the edge node refused, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<RefusedPlugin>,
}

/// A plugin's name, version and digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginVersion {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of its component, hex.
    pub digest: String,
}

/// A plugin version an edge node would not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedPlugin {
    /// Which.
    pub plugin: PluginVersion,
    /// Why, e.g. its signature is by a key the edge node does not trust.
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_survives_the_wire() {
        use crate::StationKind;
        use lockergrid_protocol::GeoPoint;
        let station = SyncItem::Station(StationRecord::new(
            StationId::new("st-a").unwrap(),
            "A",
            StationKind::Urban,
            GeoPoint {
                lat: 52.0,
                lon: 4.0,
            },
        ));
        let removed = SyncItem::Removed {
            key: "code/ab".into(),
        };
        let downlink = EdgeDownlink {
            v: SYNC_VERSION,
            sync: vec![SyncBatch {
                epoch: "e".into(),
                base: 0,
                version: 1,
                full: true,
                items: vec![station, removed],
            }],
            lockers: vec![],
            firmware: None,
            decisions_applied: Some(3),
        };
        let json = serde_json::to_string(&downlink).unwrap();
        assert_eq!(
            serde_json::from_str::<EdgeDownlink>(&json).unwrap(),
            downlink,
            "{json}"
        );
    }

    #[test]
    fn a_delta_applies_only_on_its_base_and_a_full_batch_anywhere() {
        let at = |epoch: &str, version| SyncPosition {
            epoch: epoch.into(),
            version,
        };
        let delta = SyncBatch {
            epoch: "e1".into(),
            base: 4,
            version: 5,
            full: false,
            items: vec![],
        };
        assert!(delta.applies_on(Some(&at("e1", 4))));
        assert!(!delta.applies_on(Some(&at("e1", 3))));
        assert!(!delta.applies_on(Some(&at("e1", 5))));
        assert!(!delta.applies_on(Some(&at("e0", 4))));
        assert!(!delta.applies_on(None));
        let full = SyncBatch {
            full: true,
            ..delta
        };
        assert!(full.applies_on(None));
        assert!(full.applies_on(Some(&at("e0", 99))));
    }
}
