//! The compartment state machine of DESIGN.md §2. [`apply`] is the only way a compartment's state
//! changes; every store, edge node and shim goes through it.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a compartment is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompartmentState {
    /// Empty and free to reserve.
    Available,
    /// Held for one reservation, waiting for the deposit.
    Reserved,
    /// Holds a parcel waiting for pickup.
    Occupied,
    /// Holds a returned parcel waiting for a carrier.
    ReturnPending,
    /// Out of service.
    Maintenance,
}

impl CompartmentState {
    /// Every state, in a fixed order for per-state counters.
    pub const ALL: [CompartmentState; 5] = [
        CompartmentState::Available,
        CompartmentState::Reserved,
        CompartmentState::Occupied,
        CompartmentState::ReturnPending,
        CompartmentState::Maintenance,
    ];

    /// The snake_case name used in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            CompartmentState::Available => "available",
            CompartmentState::Reserved => "reserved",
            CompartmentState::Occupied => "occupied",
            CompartmentState::ReturnPending => "return_pending",
            CompartmentState::Maintenance => "maintenance",
        }
    }
}

impl fmt::Display for CompartmentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happens to a compartment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompartmentEvent {
    /// A reservation holds it.
    Reserve,
    /// The reservation was cancelled or released.
    Cancel,
    /// The hold ran out before a deposit.
    HoldExpired,
    /// The door closed on a deposited parcel.
    DepositConfirmed,
    /// The door closed after the customer took the parcel.
    PickupConfirmed,
    /// A carrier took away an expired parcel or a return.
    CarrierCollected,
    /// The door closed on a returned parcel.
    ReturnDropOffConfirmed,
    /// Taken out of service.
    TakeOutOfService,
    /// Put back in service.
    BackInService,
    /// An operator took it out of service and moved the parcel or return inside to another
    /// compartment (DESIGN.md §2: an occupied compartment goes to maintenance only so).
    ContentsMovedOut,
    /// The parcel of an occupied compartment taken out of service was moved in here.
    ParcelMovedIn,
    /// The return of a compartment taken out of service was moved in here.
    ReturnMovedIn,
}

/// A move the state machine does not allow, e.g. `available -> occupied` (a deposit needs a
/// reservation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal move: {event:?} in state {from}")]
pub struct IllegalMove {
    /// The state the compartment was in.
    pub from: CompartmentState,
    /// The event that does not apply there.
    pub event: CompartmentEvent,
}

/// The state a compartment moves to when `event` happens in `state`, or the typed refusal.
pub fn apply(
    state: CompartmentState,
    event: CompartmentEvent,
) -> Result<CompartmentState, IllegalMove> {
    use CompartmentEvent as E;
    use CompartmentState as S;
    match (state, event) {
        (S::Available, E::Reserve) => Ok(S::Reserved),
        (S::Reserved, E::Cancel | E::HoldExpired) => Ok(S::Available),
        (S::Reserved, E::DepositConfirmed) => Ok(S::Occupied),
        (S::Occupied, E::PickupConfirmed | E::CarrierCollected) => Ok(S::Available),
        // A drop-off code holds a free compartment while its door is open (reserved) or, when
        // the hold was given up because the unlock looked failed, finds it available.
        (S::Available | S::Reserved, E::ReturnDropOffConfirmed) => Ok(S::ReturnPending),
        (S::ReturnPending, E::CarrierCollected) => Ok(S::Available),
        (S::Available | S::Reserved | S::Maintenance, E::TakeOutOfService) => Ok(S::Maintenance),
        (S::Maintenance, E::BackInService) => Ok(S::Available),
        (S::Occupied | S::ReturnPending, E::ContentsMovedOut) => Ok(S::Maintenance),
        (S::Available, E::ParcelMovedIn) => Ok(S::Occupied),
        (S::Available, E::ReturnMovedIn) => Ok(S::ReturnPending),
        (from, event) => Err(IllegalMove { from, event }),
    }
}

#[cfg(test)]
mod tests;
