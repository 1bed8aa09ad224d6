//! Grows its memory towards 4 GiB, 16 MiB at a time, keeping every block.

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
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        for _ in 0..256 {
            hoard.push(vec![1u8; 16 << 20]);
        }
        Ranking {
            stations: vec![hoard.len() as u32],
        }
    }

    fn hold_minutes(_request: ReservationRequest) -> u32 {
        if misbehave_common::behave_for_hold() {
            return misbehave_common::HOLD_MINUTES;
        }
        0
    }
}

lockergrid_plugin_sdk::reservation_policy::export_reservation_policy!(Hostile with_types_in lockergrid_plugin_sdk::reservation_policy);
