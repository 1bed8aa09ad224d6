//! Answers with a station nobody offered.

use lockergrid_plugin_sdk::reservation_policy::lockergrid::plugin::types::{
    ReservationRequest, Station,
};
use lockergrid_plugin_sdk::reservation_policy::{Guest, Ranking};

struct Hostile;

impl Guest for Hostile {
    fn rank(_request: ReservationRequest, _candidates: Vec<Station>) -> Ranking {
        Ranking {
            stations: vec!["somewhere-else".into()],
        }
    }

    fn hold_minutes(_request: ReservationRequest) -> u32 {
        u32::MAX
    }
}

lockergrid_plugin_sdk::reservation_policy::export_reservation_policy!(Hostile with_types_in lockergrid_plugin_sdk::reservation_policy);
