//! `reservation-balanced`: ranks stations by distance, utilisation and kind, so a slightly farther
//! station that is nearly empty beats a full one next door (nearest-first makes hot spots), and
//! holds a compartment for the expected delivery time plus a margin that grows with the tier.

use lockergrid_plugin_sdk::reservation_policy::lockergrid::plugin::host;
use lockergrid_plugin_sdk::reservation_policy::lockergrid::plugin::types::{
    ReservationRequest, Station, StationKind, Tier,
};
use lockergrid_plugin_sdk::reservation_policy::{Guest, Ranking};

struct Balanced;

/// A setting from policies/, or its default.
fn setting(key: &str, default: f64) -> f64 {
    host::setting(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Transit hubs see many people pass; residential lobbies are only for the building.
fn kind_bonus(kind: StationKind) -> f64 {
    match kind {
        StationKind::TransitHub => 0.05,
        StationKind::Urban => 0.0,
        StationKind::Suburban => 0.02,
        StationKind::Residential => -0.05,
    }
}

fn score(s: &Station, radius: f64, distance_weight: f64) -> f64 {
    let distance = (s.distance_m / radius.max(1.0)).min(1.0);
    // Utilisation counts more than linearly: a 90 % full station is far worse than a 60 % one.
    let load = s.utilisation.clamp(0.0, 1.0).powi(2);
    distance_weight * distance + (1.0 - distance_weight) * load - kind_bonus(s.kind)
}

impl Guest for Balanced {
    fn rank(_request: ReservationRequest, candidates: Vec<Station>) -> Ranking {
        let radius = candidates.iter().map(|s| s.distance_m).fold(1.0, f64::max);
        let weight = setting("distance_weight", 0.5).clamp(0.0, 1.0);
        let mut scored: Vec<(f64, String)> = candidates
            .into_iter()
            .filter(|s| s.free > 0)
            .map(|s| (score(&s, radius, weight), s.id))
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0));
        Ranking {
            stations: scored.into_iter().map(|(_, id)| id).collect(),
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
