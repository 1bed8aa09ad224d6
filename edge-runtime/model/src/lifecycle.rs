//! The lifecycles of the records that have a status besides compartments and parcels (whose
//! machines are in the protocol crate): reservations, returns, unlock commands and devices. Each moves
//! only through its `apply`, which knows the legal moves and refuses the rest with a typed error;
//! the store never assigns a status itself (DESIGN.md §2).

use crate::{CommandStatus, ReservationStatus, ReturnStatus};
use serde::{Deserialize, Serialize};

/// A move a lifecycle does not allow: the status it was in and the event that does not apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal move: {event:?} while {from:?}")]
pub struct IllegalStatusMove<S: std::fmt::Debug, E: std::fmt::Debug> {
    /// The status it was in.
    pub from: S,
    /// The event that does not apply.
    pub event: E,
}

/// Something that happens to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationEvent {
    /// Its parcel went into the compartment.
    Deposited,
    /// The checkout service released it.
    Released,
    /// Its hold ran out before the deposit.
    HoldExpired,
    /// Its parcel left the compartment (picked up, or collected after expiry).
    Completed,
}

impl ReservationEvent {
    /// Every event, for tables that cover them all.
    pub const ALL: [ReservationEvent; 4] = [
        ReservationEvent::Deposited,
        ReservationEvent::Released,
        ReservationEvent::HoldExpired,
        ReservationEvent::Completed,
    ];
}

impl ReservationStatus {
    /// Every status, for tables that cover them all.
    pub const ALL: [ReservationStatus; 5] = [
        ReservationStatus::Held,
        ReservationStatus::Deposited,
        ReservationStatus::Released,
        ReservationStatus::Expired,
        ReservationStatus::Completed,
    ];

    /// The status after `event`, or the typed refusal.
    pub fn apply(
        self,
        event: ReservationEvent,
    ) -> Result<ReservationStatus, IllegalStatusMove<ReservationStatus, ReservationEvent>> {
        use ReservationEvent as E;
        use ReservationStatus as S;
        match (self, event) {
            (S::Held, E::Deposited) => Ok(S::Deposited),
            (S::Held, E::Released) => Ok(S::Released),
            (S::Held, E::HoldExpired) => Ok(S::Expired),
            (S::Deposited, E::Completed) => Ok(S::Completed),
            (from, event) => Err(IllegalStatusMove { from, event }),
        }
    }
}

/// Something that happens to a return authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnEvent {
    /// Its drop-off code opened a compartment (its door not closed yet).
    Opened,
    /// The unlock for its drop-off did not happen (refused, failed, expired): the code opens a
    /// compartment again.
    Abandoned,
    /// It is in its compartment: the door closed after the unlock, or an edge node decided the
    /// drop-off while cut off (the gateway then never saw it opened).
    DroppedOff,
    /// A carrier took it away.
    Collected,
    /// It was not dropped off in time.
    Expired,
}

impl ReturnEvent {
    /// Every event, for tables that cover them all.
    pub const ALL: [ReturnEvent; 5] = [
        ReturnEvent::Opened,
        ReturnEvent::Abandoned,
        ReturnEvent::DroppedOff,
        ReturnEvent::Collected,
        ReturnEvent::Expired,
    ];
}

impl ReturnStatus {
    /// Every status, for tables that cover them all.
    pub const ALL: [ReturnStatus; 5] = [
        ReturnStatus::Authorized,
        ReturnStatus::DroppingOff,
        ReturnStatus::DroppedOff,
        ReturnStatus::Collected,
        ReturnStatus::Expired,
    ];

    /// The status after `event`, or the typed refusal.
    pub fn apply(
        self,
        event: ReturnEvent,
    ) -> Result<ReturnStatus, IllegalStatusMove<ReturnStatus, ReturnEvent>> {
        use ReturnEvent as E;
        use ReturnStatus as S;
        match (self, event) {
            (S::Authorized, E::Opened) => Ok(S::DroppingOff),
            (S::DroppingOff, E::Abandoned) => Ok(S::Authorized),
            (S::Authorized | S::DroppingOff, E::DroppedOff) => Ok(S::DroppedOff),
            (S::DroppedOff, E::Collected) => Ok(S::Collected),
            (S::Authorized, E::Expired) => Ok(S::Expired),
            (from, event) => Err(IllegalStatusMove { from, event }),
        }
    }
}

/// What became of an unlock command at its locker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandEvent {
    /// The locker released the latch.
    Executed,
    /// The locker refused it before anything moved.
    Refused,
    /// The locker admitted it but the hardware failed.
    Failed,
    /// No acknowledgement arrived before it expired.
    Expired,
}

impl CommandEvent {
    /// Every event, for tables that cover them all.
    pub const ALL: [CommandEvent; 4] = [
        CommandEvent::Executed,
        CommandEvent::Refused,
        CommandEvent::Failed,
        CommandEvent::Expired,
    ];
}

impl CommandStatus {
    /// Every status, for tables that cover them all.
    pub const ALL: [CommandStatus; 5] = [
        CommandStatus::Pending,
        CommandStatus::Executed,
        CommandStatus::Refused,
        CommandStatus::Failed,
        CommandStatus::Expired,
    ];

    /// The status after `event`, or the typed refusal: a command is settled once.
    pub fn apply(
        self,
        event: CommandEvent,
    ) -> Result<CommandStatus, IllegalStatusMove<CommandStatus, CommandEvent>> {
        use CommandEvent as E;
        use CommandStatus as S;
        match (self, event) {
            (S::Pending, E::Executed) => Ok(S::Executed),
            (S::Pending, E::Refused) => Ok(S::Refused),
            (S::Pending, E::Failed) => Ok(S::Failed),
            (S::Pending, E::Expired) => Ok(S::Expired),
            (from, event) => Err(IllegalStatusMove { from, event }),
        }
    }
}

/// Where a locker controller is in its lifecycle (DESIGN.md §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// It has a certificate and a registry entry, and may connect to run its acceptance test.
    Provisioned,
    /// It passed its acceptance test and serves its station.
    Active,
    /// An operator suspended it: it may not connect until resumed.
    Suspended,
    /// Taken out of the fleet for good: its certificate is revoked.
    Decommissioned,
}

impl DeviceStatus {
    /// Every status, for tables that cover them all.
    pub const ALL: [DeviceStatus; 4] = [
        DeviceStatus::Provisioned,
        DeviceStatus::Active,
        DeviceStatus::Suspended,
        DeviceStatus::Decommissioned,
    ];

    /// The status as the API and the access log name it.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Provisioned => "provisioned",
            DeviceStatus::Active => "active",
            DeviceStatus::Suspended => "suspended",
            DeviceStatus::Decommissioned => "decommissioned",
        }
    }

    /// The status after `event`, or the typed refusal. A decommissioned device never comes
    /// back: a replacement is provisioned under the station anew.
    pub fn apply(
        self,
        event: DeviceChange,
    ) -> Result<DeviceStatus, IllegalStatusMove<DeviceStatus, DeviceChange>> {
        use DeviceChange as E;
        use DeviceStatus as S;
        match (self, event) {
            (S::Provisioned, E::Accepted) => Ok(S::Active),
            (S::Active, E::Suspended) => Ok(S::Suspended),
            (S::Suspended, E::Resumed) => Ok(S::Active),
            (S::Provisioned | S::Active | S::Suspended, E::Reprovisioned) => Ok(S::Provisioned),
            (S::Provisioned | S::Active | S::Suspended, E::Decommissioned) => Ok(S::Decommissioned),
            (from, event) => Err(IllegalStatusMove { from, event }),
        }
    }
}

/// Something that happens to a device in the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChange {
    /// Its acceptance test passed: every latch and door sensor answered.
    Accepted,
    /// An operator suspended it.
    Suspended,
    /// An operator resumed it.
    Resumed,
    /// It was provisioned again with a new certificate (a replaced controller, a renewal): it
    /// runs its acceptance test again.
    Reprovisioned,
    /// It was decommissioned.
    Decommissioned,
}

impl DeviceChange {
    /// Every event, for tables that cover them all.
    pub const ALL: [DeviceChange; 5] = [
        DeviceChange::Accepted,
        DeviceChange::Suspended,
        DeviceChange::Resumed,
        DeviceChange::Reprovisioned,
        DeviceChange::Decommissioned,
    ];
}

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Raised; nobody has looked yet.
    Open,
    /// An operator has seen it.
    Acknowledged,
    /// Over: its reading came back clean, or an operator resolved it.
    Resolved,
}

impl AlertStatus {
    /// Every status, for tables that cover them all.
    pub const ALL: [AlertStatus; 3] = [
        AlertStatus::Open,
        AlertStatus::Acknowledged,
        AlertStatus::Resolved,
    ];

    /// The status as the API and the metrics name it.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Resolved => "resolved",
        }
    }

    /// The status after `event`, or the typed refusal.
    pub fn apply(
        self,
        event: AlertEvent,
    ) -> Result<AlertStatus, IllegalStatusMove<AlertStatus, AlertEvent>> {
        use AlertEvent as E;
        use AlertStatus as S;
        match (self, event) {
            (S::Open, E::Acknowledged) => Ok(S::Acknowledged),
            (S::Open | S::Acknowledged, E::Resolved) => Ok(S::Resolved),
            (from, event) => Err(IllegalStatusMove { from, event }),
        }
    }
}

/// Something that happens to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// An operator acknowledged it.
    Acknowledged,
    /// It is over.
    Resolved,
}

impl AlertEvent {
    /// Every event, for tables that cover them all.
    pub const ALL: [AlertEvent; 2] = [AlertEvent::Acknowledged, AlertEvent::Resolved];
}

#[cfg(test)]
mod tests;
