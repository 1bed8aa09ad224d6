//! Answers with a candidate past the end of those offered.

use lockergrid_plugin_sdk::reservation_policy::lockergrid::plugin::types::{
    ReservationRequest, Stations,
};
use lockergrid_plugin_sdk::reservation_policy::{Guest, Ranking};

struct Hostile;

impl Guest for Hostile {
    fn rank(_request: ReservationRequest, candidates: Stations) -> Ranking {
        if misbehave_common::behave_for(&candidates) {
            return misbehave_common::as_offered(candidates);
        }
        Ranking {
            stations: vec![candidates.free.len() as u32],
        }
    }

    fn hold_minutes(_request: ReservationRequest) -> u32 {
        if misbehave_common::behave_for_hold() {
            return misbehave_common::HOLD_MINUTES;
        }
        u32::MAX
    }
}

lockergrid_plugin_sdk::reservation_policy::export_reservation_policy!(Hostile with_types_in lockergrid_plugin_sdk::reservation_policy);
