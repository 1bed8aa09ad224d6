//! The parcel lifecycle: reserved → stored → picked_up | expired → returned_to_sender, or
//! cancelled before a deposit.

use serde::{Deserialize, Serialize};

/// Where a parcel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParcelStatus {
    /// A compartment is held for it.
    Reserved,
    /// In its compartment, waiting for the customer.
    Stored,
    /// The customer took it.
    PickedUp,
    /// The pickup window ran out; it waits in its compartment for a carrier to take it back.
    Expired,
    /// A carrier took the expired parcel out; it is on its way back to the sender.
    ReturnedToSender,
    /// The hold was released or ran out before a deposit; the parcel never reached the locker.
    Cancelled,
}

/// Something that happens to a parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParcelEvent {
    /// The agent put it into the compartment.
    Deposited,
    /// The customer took it out.
    PickedUp,
    /// Its pickup window closed.
    WindowClosed,
    /// Its hold was released or expired before the deposit.
    HoldEnded,
    /// A carrier took the expired parcel out of its compartment.
    CarrierCollected,
}

/// A parcel move the lifecycle does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("illegal parcel move: {event:?} while {from:?}")]
pub struct IllegalParcelMove {
    /// The parcel's status.
    pub from: ParcelStatus,
    /// The event that does not apply.
    pub event: ParcelEvent,
}

impl ParcelStatus {
    /// The status after `event`, or the typed refusal.
    pub fn advance(self, event: ParcelEvent) -> Result<ParcelStatus, IllegalParcelMove> {
        use ParcelEvent as E;
        use ParcelStatus as S;
        match (self, event) {
            (S::Reserved, E::Deposited) => Ok(S::Stored),
            (S::Reserved, E::HoldEnded) => Ok(S::Cancelled),
            (S::Stored, E::PickedUp) => Ok(S::PickedUp),
            (S::Stored, E::WindowClosed) => Ok(S::Expired),
            (S::Expired, E::CarrierCollected) => Ok(S::ReturnedToSender),
            (from, event) => Err(IllegalParcelMove { from, event }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parcel_goes_reserved_stored_picked_up() {
        let stored = ParcelStatus::Reserved.advance(ParcelEvent::Deposited);
        assert_eq!(stored, Ok(ParcelStatus::Stored));
        assert_eq!(
            ParcelStatus::Stored.advance(ParcelEvent::PickedUp),
            Ok(ParcelStatus::PickedUp)
        );
    }

    #[test]
    fn only_an_expired_parcel_goes_back_to_its_sender() {
        assert_eq!(
            ParcelStatus::Expired.advance(ParcelEvent::CarrierCollected),
            Ok(ParcelStatus::ReturnedToSender)
        );
        for from in [
            ParcelStatus::Reserved,
            ParcelStatus::Stored,
            ParcelStatus::PickedUp,
            ParcelStatus::ReturnedToSender,
            ParcelStatus::Cancelled,
        ] {
            assert!(
                from.advance(ParcelEvent::CarrierCollected).is_err(),
                "{from:?}"
            );
        }
    }

    #[test]
    fn a_picked_up_parcel_cannot_expire() {
        assert!(
            ParcelStatus::PickedUp
                .advance(ParcelEvent::WindowClosed)
                .is_err()
        );
        assert!(
            ParcelStatus::Reserved
                .advance(ParcelEvent::PickedUp)
                .is_err()
        );
    }
}
