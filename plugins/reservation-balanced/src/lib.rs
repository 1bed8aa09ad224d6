//! `reservation-balanced`: ranks stations by distance, utilisation and kind, so a slightly farther
//! station that is nearly empty beats a full one next door (nearest-first makes hot spots), and
//! holds a compartment for the expected delivery time plus a margin that grows with the tier.
//! Setting: `distance_weight` (default 0.5).

mod score;

use lockergrid_plugin_sdk::reservation_policy::lockergrid::plugin::host;
use lockergrid_plugin_sdk::reservation_policy::lockergrid::plugin::types::{
    ReservationRequest, Stations, Tier,
};
use lockergrid_plugin_sdk::reservation_policy::{Guest, Ranking};

struct Balanced;

/// A setting from policies/, or its default.
fn setting(key: &str, default: f64) -> f64 {
    host::setting(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// A `station-kind` by its place in the enum; a kind this plugin does not know counts as urban,
/// which carries no bonus.
fn kind(k: u8) -> score::Kind {
    match k {
        1 => score::Kind::Suburban,
        2 => score::Kind::TransitHub,
        3 => score::Kind::Residential,
        _ => score::Kind::Urban,
    }
}

impl Guest for Balanced {
    fn rank(_request: ReservationRequest, c: Stations) -> Ranking {
        let stations: Vec<score::Station> = (0..c.free.len())
            .map(|i| score::Station {
                distance_m: c.distance_m.get(i).copied().unwrap_or_default(),
                utilisation: c.utilisation.get(i).copied().unwrap_or_default(),
                free: c.free[i],
                kind: kind(c.kind.get(i).copied().unwrap_or_default()),
            })
            .collect();
        let order = score::rank(&stations, setting("distance_weight", 0.5));
        Ranking {
            // Fewer than 2^32 candidates: the host lowered them from a WIT list.
            stations: order.into_iter().map(|i| i as u32).collect(),
        }
    }

    fn hold_minutes(request: ReservationRequest) -> u32 {
        let margin_hours = match request.tier {
            Tier::Standard => 24,
            Tier::Prime => 12,
            Tier::Business => 48,
        };
        let expected = request.expected_delivery_hours.unwrap_or(48);
        expected.saturating_add(margin_hours).saturating_mul(60)
    }
}

lockergrid_plugin_sdk::reservation_policy::export_reservation_policy!(Balanced with_types_in lockergrid_plugin_sdk::reservation_policy);
