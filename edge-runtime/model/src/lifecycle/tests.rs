//! Every status × event of each lifecycle against one table of the legal moves: a move the table
//! lists lands where it says, every other one is refused with the status and event it had.

use super::*;
use std::fmt::Debug;

/// Checks `apply` over every pair: the legal ones (from, event, to) and nothing else.
fn covers<S, E>(
    statuses: &[S],
    events: &[E],
    legal: &[(S, E, S)],
    apply: impl Fn(S, E) -> Result<S, IllegalStatusMove<S, E>>,
) where
    S: Copy + PartialEq + Debug,
    E: Copy + PartialEq + Debug,
{
    for &from in statuses {
        for &event in events {
            let expected = legal
                .iter()
                .find(|(f, e, _)| *f == from && *e == event)
                .map(|(_, _, to)| *to);
            match (apply(from, event), expected) {
                (Ok(to), Some(want)) => assert_eq!(to, want, "{from:?} + {event:?}"),
                (Err(refused), None) => {
                    assert_eq!((refused.from, refused.event), (from, event));
                }
                (got, want) => panic!("{from:?} + {event:?}: got {got:?}, the table says {want:?}"),
            }
        }
    }
}

#[test]
fn a_reservation_is_deposited_released_or_expired_only_while_held() {
    use ReservationEvent as E;
    use ReservationStatus as S;
    let legal = [
        (S::Held, E::Deposited, S::Deposited),
        (S::Held, E::Released, S::Released),
        (S::Held, E::HoldExpired, S::Expired),
        (S::Deposited, E::Completed, S::Completed),
    ];
    covers(&S::ALL, &E::ALL, &legal, S::apply);
}

#[test]
fn a_return_is_dropped_off_once_and_collected_only_after() {
    use ReturnEvent as E;
    use ReturnStatus as S;
    let legal = [
        (S::Authorized, E::Opened, S::DroppingOff),
        (S::DroppingOff, E::Abandoned, S::Authorized),
        (S::Authorized, E::DroppedOff, S::DroppedOff),
        (S::DroppingOff, E::DroppedOff, S::DroppedOff),
        (S::DroppedOff, E::Collected, S::Collected),
        (S::Authorized, E::Expired, S::Expired),
    ];
    covers(&S::ALL, &E::ALL, &legal, S::apply);
}

#[test]
fn a_command_is_settled_once_from_pending() {
    use CommandEvent as E;
    use CommandStatus as S;
    let legal = [
        (S::Pending, E::Executed, S::Executed),
        (S::Pending, E::Refused, S::Refused),
        (S::Pending, E::Failed, S::Failed),
        (S::Pending, E::Expired, S::Expired),
    ];
    covers(&S::ALL, &E::ALL, &legal, S::apply);
}

#[test]
fn a_delivery_only_moves_forward() {
    use crate::{DeliveryEvent as E, DeliveryStatus as S};
    let legal = [
        (S::Pending, E::Accepted, S::Sent),
        (S::Sent, E::Accepted, S::Sent),
        (S::Pending, E::Delivered, S::Delivered),
        (S::Sent, E::Delivered, S::Delivered),
        (S::Dead, E::Delivered, S::Delivered),
        (S::Expired, E::Delivered, S::Delivered),
        (S::Pending, E::FellBack, S::Pending),
        (S::Sent, E::FellBack, S::Pending),
        (S::Pending, E::PlanUsedUp, S::Dead),
        (S::Sent, E::PlanUsedUp, S::Dead),
        (S::Pending, E::CodeExpired, S::Expired),
        (S::Sent, E::CodeExpired, S::Expired),
        (S::Dead, E::CodeExpired, S::Expired),
        (S::Pending, E::Cancelled, S::Cancelled),
        (S::Sent, E::Cancelled, S::Cancelled),
        (S::Dead, E::Cancelled, S::Cancelled),
        (S::Dead, E::Requeued, S::Pending),
    ];
    covers(&S::ALL, &E::ALL, &legal, S::apply);
}

#[test]
fn a_device_goes_active_once_accepted_and_never_back_from_decommissioned() {
    use DeviceChange as E;
    use DeviceStatus as S;
    let legal = [
        (S::Provisioned, E::Accepted, S::Active),
        (S::Active, E::Suspended, S::Suspended),
        (S::Suspended, E::Resumed, S::Active),
        (S::Provisioned, E::Reprovisioned, S::Provisioned),
        (S::Active, E::Reprovisioned, S::Provisioned),
        (S::Suspended, E::Reprovisioned, S::Provisioned),
        (S::Provisioned, E::Decommissioned, S::Decommissioned),
        (S::Active, E::Decommissioned, S::Decommissioned),
        (S::Suspended, E::Decommissioned, S::Decommissioned),
    ];
    covers(&S::ALL, &E::ALL, &legal, S::apply);
}

#[test]
fn an_alert_is_acknowledged_only_while_open_and_resolved_once() {
    use AlertEvent as E;
    use AlertStatus as S;
    let legal = [
        (S::Open, E::Acknowledged, S::Acknowledged),
        (S::Open, E::Resolved, S::Resolved),
        (S::Acknowledged, E::Resolved, S::Resolved),
    ];
    covers(&S::ALL, &E::ALL, &legal, S::apply);
}
