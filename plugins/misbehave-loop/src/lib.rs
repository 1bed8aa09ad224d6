//! Never returns: the epoch deadline must stop it.

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
        let mut n: u64 = 0;
        while std::hint::black_box(n) != u64::MAX || candidates.free.is_empty() {
            n = n.wrapping_add(1);
        }
        Ranking {
            stations: Vec::new(),
        }
    }

    fn hold_minutes(_request: ReservationRequest) -> u32 {
        if misbehave_common::behave_for_hold() {
            return misbehave_common::HOLD_MINUTES;
        }
        loop {
            std::hint::spin_loop();
        }
    }
}

lockergrid_plugin_sdk::reservation_policy::export_reservation_policy!(Hostile with_types_in lockergrid_plugin_sdk::reservation_policy);
