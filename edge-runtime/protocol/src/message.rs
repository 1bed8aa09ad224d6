//! The JSON messages of the device plane besides commands (see docs/protocol.md): events and
//! telemetry from a locker, acknowledgements both ways. Every message carries the layout version
//! [`MESSAGE_VERSION`]; a receiver refuses a version it does not know.

use crate::command::SignedCommand;
use crate::firmware::{FirmwareVersion, SignedManifest};
use crate::ids::{CompartmentId, LockerId};
use crate::lockout::Lockout;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The message layout this crate reads and writes.
pub const MESSAGE_VERSION: u16 = 1;

/// Something that happened at a locker, on `lockers/{id}/events`. It must not be lost: the locker
/// keeps it in its retry queue until the node acknowledges its id, and the node applies an id once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventMessage {
    /// [`MESSAGE_VERSION`].
    pub v: u16,
    /// Unique id (the locker's id, a boot-independent sequence number).
    pub id: String,
    /// Per-locker sequence number, strictly increasing, surviving restarts.
    pub seq: u64,
    /// The locker.
    pub locker: LockerId,
    /// When it happened, by the locker's clock.
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub event: DeviceEvent,
}

/// What a locker reports as an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum DeviceEvent {
    /// A door opened.
    DoorOpened {
        /// Which.
        compartment: CompartmentId,
        /// No latch release came before it (neither a command nor a code the locker checked
        /// itself): a door sensor that flaps, or a door forced. Absent means false.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        unreleased: bool,
    },
    /// A door closed and its latch engaged. `unlocked_by` names the command that released it,
    /// which is how the node knows a deposit or a pickup is complete.
    DoorClosed {
        /// Which.
        compartment: CompartmentId,
        /// The unlock command that opened it, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unlocked_by: Option<String>,
    },
    /// A code was entered on the keypad (or read from a QR code). It travels over TLS only and is
    /// hashed at the node.
    CodeEntered {
        /// The code as entered.
        code: String,
    },
    /// While no node answered, the locker checked a code against its own cache, released the
    /// compartment's latch and spent the code: the pickup the nodes apply when this arrives.
    OfflinePickup {
        /// The compartment it released.
        compartment: CompartmentId,
        /// The keyed hash of the code (the code itself never leaves the keypad).
        code_hash: String,
    },
    /// A code entered at the keypad (or read from a QR code), hashed by the locker with its
    /// station's code key: the node decides it as it would the code, which never leaves the
    /// keypad nor reaches the locker's disk. A locker that has no code key yet sends
    /// `CodeEntered` instead.
    CodeHashed {
        /// The keyed hash, hex.
        code_hash: String,
    },
    /// While no node answered, a code entered at the keypad opened nothing: it matched no code
    /// in the locker's cache, or the station had to wait after wrong codes and it was not
    /// checked. The code itself never leaves the keypad; the locker's count does, for the
    /// node's count to take in.
    CodeRejectedOffline {
        /// The locker's wrong-code count after it.
        lockout: Lockout,
        /// Refused unchecked: the station had to wait.
        locked_out: bool,
    },
    /// The tamper switch changed.
    Tamper {
        /// Tripped when true.
        tripped: bool,
    },
    /// The locker's self-test after it connected (every boot): each latch and door sensor was
    /// asked to answer. A provisioned locker whose test passes goes active; a failure raises an
    /// alert.
    SelfTest {
        /// What did not answer, e.g. `latch of "ams-zuid:S001" did not answer`; empty when it
        /// passed.
        failures: Vec<String>,
    },
    /// What became of a firmware image offered to the locker (docs/protocol.md "Firmware"):
    /// refused with a reason code, installed in the inactive slot and booting on trial,
    /// confirmed after its health check, or rolled back by the locker itself with a reason code.
    /// The version a locker runs is the one its heartbeat names after boot, never this report.
    Firmware {
        /// The image's version.
        version: FirmwareVersion,
        /// The image's SHA-256, hex.
        sha256: String,
        /// What became of it.
        outcome: FirmwareOutcome,
        /// The reason code of a refusal or a roll-back (see [`crate::firmware::FirmwareRefusal::code`]
        /// and docs/protocol.md).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// For people: what exactly went wrong.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

/// The steps of a firmware update a locker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirmwareOutcome {
    /// Not installed; nothing was written to the inactive slot.
    Refused,
    /// Verified and written to the inactive slot; the locker reboots into it on trial.
    Installed,
    /// It passed its health check and is the locker's firmware now.
    Confirmed,
    /// It failed (boot attempts used up, health check failed, image corrupt): the locker went
    /// back to the slot it ran before.
    RolledBack,
}

impl FirmwareOutcome {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            FirmwareOutcome::Refused => "refused",
            FirmwareOutcome::Installed => "installed",
            FirmwareOutcome::Confirmed => "confirmed",
            FirmwareOutcome::RolledBack => "rolled_back",
        }
    }
}

/// A heartbeat with the locker's readings, on `lockers/{id}/telemetry`. Only the newest matters;
/// a missed one is not resent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryMessage {
    /// [`MESSAGE_VERSION`].
    pub v: u16,
    /// The locker.
    pub locker: LockerId,
    /// Per-boot sequence number.
    pub seq: u64,
    /// When it was taken, by the locker's clock.
    pub at: Timestamp,
    /// The firmware version it booted.
    pub firmware: String,
    /// That firmware is on trial: it has not passed its health check yet (docs/protocol.md
    /// "Firmware updates"). Absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub on_trial: bool,
    /// Mains power present.
    pub mains: bool,
    /// Battery charge, percent.
    pub battery_percent: u8,
    /// The tamper switch is tripped.
    pub tamper: bool,
    /// The locker is out of service.
    pub out_of_service: bool,
    /// Doors standing open.
    pub doors_open: Vec<CompartmentId>,
    /// The latest temperature of each compartment that has a thermometer, °C.
    pub temperatures: Vec<(CompartmentId, f32)>,
    /// Events waiting for the node's acknowledgement.
    pub queued_events: u32,
    /// The counter of the last command it executed (0 before the first): a node whose own
    /// count is lower (its store restored from an older backup) raises its count to it.
    #[serde(default)]
    pub last_counter: u64,
}

/// What became of a command, on `lockers/{id}/acks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckMessage {
    /// [`MESSAGE_VERSION`].
    pub v: u16,
    /// The command's id.
    pub command: String,
    /// The outcome.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The outcome of a command at the locker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Done (for an unlock: the latch released).
    Executed,
    /// Refused before anything moved (signature, counter, window, locker).
    Refused {
        /// Why.
        reason: String,
    },
    /// Admitted but the hardware failed (a jammed latch).
    Failed {
        /// Why.
        reason: String,
    },
}

/// What the node sends on `lockers/{id}/commands`: a signed command, acknowledgements of events
/// by id, or both.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Downlink {
    /// [`MESSAGE_VERSION`].
    pub v: u16,
    /// A command to verify and execute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<SignedCommand>,
    /// Events the node has applied; the locker drops them from its retry queue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acked_events: Vec<String>,
    /// A firmware offer, bytes of the image offered, or its cancellation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareDownlink>,
}

/// What a node sends a locker about firmware (docs/protocol.md "Firmware").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FirmwareDownlink {
    /// Fetch this image and install it once idle. The manifest's own signature is what the
    /// locker trusts, not the node.
    Offer {
        /// The image's signed manifest.
        manifest: SignedManifest,
    },
    /// Bytes of the image, answering a [`FirmwareRequest`].
    Chunk {
        /// The image's SHA-256.
        sha256: String,
        /// Where they start.
        offset: u64,
        /// The bytes, base64 (standard alphabet, padded).
        data: String,
    },
    /// Stop receiving the image (a rollout was aborted); an image already installed is left
    /// to finish its trial.
    Cancel {
        /// The image's SHA-256.
        sha256: String,
    },
}

/// A locker asking its node for bytes of the image it was offered, on
/// `lockers/{id}/firmware`: from where its staged copy ends, so a broken download resumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirmwareRequest {
    /// [`MESSAGE_VERSION`].
    pub v: u16,
    /// The image's SHA-256.
    pub sha256: String,
    /// The first byte wanted.
    pub offset: u64,
    /// How many bytes at most (the node may send fewer).
    pub len: u32,
}

/// The most bytes a node sends in one chunk.
pub const FIRMWARE_CHUNK: u32 = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_documented_shape() {
        let event = EventMessage {
            v: MESSAGE_VERSION,
            id: "ams-zuid-7".into(),
            seq: 7,
            locker: LockerId::new("ams-zuid").unwrap(),
            at: Timestamp(1_796_083_200_000),
            event: DeviceEvent::DoorClosed {
                compartment: CompartmentId::new("s-001").unwrap(),
                unlocked_by: Some("c-1".into()),
            },
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "door_closed");
        assert_eq!(json["compartment"], "s-001");
        assert_eq!(json["unlocked_by"], "c-1");
        assert_eq!(serde_json::from_value::<EventMessage>(json).unwrap(), event);
        let ack = AckMessage {
            v: MESSAGE_VERSION,
            command: "c-1".into(),
            outcome: Outcome::Refused {
                reason: "replayed".into(),
            },
        };
        let json = serde_json::to_value(&ack).unwrap();
        assert_eq!(json["outcome"], "refused");
        assert_eq!(serde_json::from_value::<AckMessage>(json).unwrap(), ack);
        let command = crate::command::Command {
            version: crate::command::COMMAND_VERSION,
            locker: LockerId::new("ams-zuid").unwrap(),
            compartment: CompartmentId::new("ams-zuid:S001").unwrap(),
            action: crate::command::Action::Unlock,
            id: "c-1".into(),
            counter: 1,
            issued_at: Timestamp(1),
            expires_at: Timestamp(2),
        }
        .sign(&crate::command::CommandKey::from_secret([1; 32]));
        let down = Downlink {
            v: MESSAGE_VERSION,
            command: Some(command),
            acked_events: vec![],
            firmware: None,
        };
        let json = serde_json::to_string(&down).unwrap();
        assert_eq!(
            serde_json::from_str::<Downlink>(&json).unwrap(),
            down,
            "{json}"
        );
        let down: Downlink = serde_json::from_str(r#"{"v":1,"acked_events":["a"]}"#).unwrap();
        assert_eq!(down.acked_events, vec!["a".to_string()]);
        assert!(down.command.is_none());
    }
}
