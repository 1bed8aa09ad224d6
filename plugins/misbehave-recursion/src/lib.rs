//! Recurses without bound: the host's wasm stack limit must stop it.

use lockergrid_plugin_sdk::reservation_policy::lockergrid::plugin::types::{
    ReservationRequest, Stations,
};
use lockergrid_plugin_sdk::reservation_policy::{Guest, Ranking};

struct Hostile;

/// Each frame keeps a buffer alive across the call, so the recursion cannot become a loop.
#[expect(
    unconditional_recursion,
    reason = "the point of this plugin is to exhaust the stack"
)]
fn descend(depth: u64) -> u64 {
    let frame = std::hint::black_box([depth; 32]);
    descend(depth + 1).wrapping_add(frame[depth as usize % 32])
}

impl Guest for Hostile {
    fn rank(_request: ReservationRequest, candidates: Stations) -> Ranking {
        if misbehave_common::behave_for(&candidates) {
            return misbehave_common::as_offered(candidates);
        }
        Ranking {
            stations: vec![descend(0) as u32],
        }
    }

    fn hold_minutes(_request: ReservationRequest) -> u32 {
        if misbehave_common::behave_for_hold() {
            return misbehave_common::HOLD_MINUTES;
        }
        descend(0) as u32
    }
}

lockergrid_plugin_sdk::reservation_policy::export_reservation_policy!(Hostile with_types_in lockergrid_plugin_sdk::reservation_policy);
