//! The ranking itself, with no WIT types, so the benchmark can compile the very same code
//! natively and compare it with the component (tests/benches includes this file by path).

/// What kind of place a station is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// In town.
    Urban,
    /// Outside town.
    Suburban,
    /// A station or hub many people pass.
    TransitHub,
    /// A building's lobby.
    Residential,
}

/// A station as the ranking sees it.
#[derive(Debug, Clone, Copy)]
pub struct Station {
    /// Metres from the customer.
    pub distance_m: f64,
    /// Share of fitting compartments not free, 0.0 to 1.0.
    pub utilisation: f64,
    /// Free fitting compartments.
    pub free: u32,
    /// Its kind.
    pub kind: Kind,
}

/// Transit hubs see many people pass; residential lobbies are only for the building.
fn kind_bonus(kind: Kind) -> f64 {
    match kind {
        Kind::TransitHub => 0.05,
        Kind::Urban => 0.0,
        Kind::Suburban => 0.02,
        Kind::Residential => -0.05,
    }
}

fn score(s: &Station, radius: f64, distance_weight: f64) -> f64 {
    let distance = (s.distance_m / radius.max(1.0)).min(1.0);
    // Utilisation counts more than linearly: a 90 % full station is far worse than a 60 % one.
    let load = s.utilisation.clamp(0.0, 1.0).powi(2);
    distance_weight * distance + (1.0 - distance_weight) * load - kind_bonus(s.kind)
}

/// Indexes of the stations with room, best first; `distance_weight` is 0 (utilisation only)
/// to 1 (distance only).
pub fn rank(stations: &[Station], distance_weight: f64) -> Vec<usize> {
    let radius = stations.iter().map(|s| s.distance_m).fold(1.0, f64::max);
    let weight = distance_weight.clamp(0.0, 1.0);
    let mut scored: Vec<(f64, usize)> = stations
        .iter()
        .enumerate()
        .filter(|(_, s)| s.free > 0)
        .map(|(i, s)| (score(s, radius, weight), i))
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    scored.into_iter().map(|(_, i)| i).collect()
}
