use super::*;
use CompartmentEvent as E;
use CompartmentState as S;

const EVENTS: [CompartmentEvent; 12] = [
    E::Reserve,
    E::Cancel,
    E::HoldExpired,
    E::DepositConfirmed,
    E::PickupConfirmed,
    E::CarrierCollected,
    E::ReturnDropOffConfirmed,
    E::TakeOutOfService,
    E::BackInService,
    E::ContentsMovedOut,
    E::ParcelMovedIn,
    E::ReturnMovedIn,
];

/// The table of DESIGN.md §2, written out independently of `apply`, with the operator's move of
/// a parcel out of a compartment it takes out of service.
const LEGAL: [(CompartmentState, CompartmentEvent, CompartmentState); 17] = [
    (S::Available, E::Reserve, S::Reserved),
    (S::Reserved, E::Cancel, S::Available),
    (S::Reserved, E::HoldExpired, S::Available),
    (S::Reserved, E::DepositConfirmed, S::Occupied),
    (S::Occupied, E::PickupConfirmed, S::Available),
    (S::Occupied, E::CarrierCollected, S::Available),
    (S::Available, E::ReturnDropOffConfirmed, S::ReturnPending),
    (S::Reserved, E::ReturnDropOffConfirmed, S::ReturnPending),
    (S::ReturnPending, E::CarrierCollected, S::Available),
    (S::Available, E::TakeOutOfService, S::Maintenance),
    (S::Reserved, E::TakeOutOfService, S::Maintenance),
    (S::Maintenance, E::TakeOutOfService, S::Maintenance),
    (S::Maintenance, E::BackInService, S::Available),
    (S::Occupied, E::ContentsMovedOut, S::Maintenance),
    (S::ReturnPending, E::ContentsMovedOut, S::Maintenance),
    (S::Available, E::ParcelMovedIn, S::Occupied),
    (S::Available, E::ReturnMovedIn, S::ReturnPending),
];

#[test]
fn every_pair_follows_the_design_table() {
    for from in CompartmentState::ALL {
        for event in EVENTS {
            let expected = LEGAL
                .iter()
                .find(|(f, e, _)| *f == from && *e == event)
                .map(|(_, _, to)| *to);
            match expected {
                Some(to) => assert_eq!(apply(from, event), Ok(to), "{from} {event:?}"),
                None => assert_eq!(apply(from, event), Err(IllegalMove { from, event })),
            }
        }
    }
}

#[test]
fn deposit_without_reservation_is_refused() {
    assert_eq!(
        apply(S::Available, E::DepositConfirmed),
        Err(IllegalMove {
            from: S::Available,
            event: E::DepositConfirmed
        })
    );
}

#[test]
fn an_occupied_compartment_cannot_simply_go_to_maintenance() {
    assert!(apply(S::Occupied, E::TakeOutOfService).is_err());
    assert!(apply(S::ReturnPending, E::TakeOutOfService).is_err());
}
