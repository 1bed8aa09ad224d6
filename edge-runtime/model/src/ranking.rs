//! The built-in station ranking: distance and utilisation together, so that a slightly farther
//! station with room beats a nearly full one next door and load spreads away from hot spots.

use crate::StationStatus;
use crate::{Snapshot, StationView};
use lockergrid_protocol::{GeoPoint, Size, UnitVector};

/// Weight of normalised distance (0 at the point, 1 at the radius) in the score.
const DISTANCE_WEIGHT: f64 = 0.6;
/// Weight of utilisation (0 empty, 1 full) in the score.
const UTILISATION_WEIGHT: f64 = 0.4;

/// A discovery query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RankQuery {
    /// Where the customer is.
    pub at: GeoPoint,
    /// How far they will go, in metres.
    pub radius_m: f64,
    /// The compartment size the parcel needs.
    pub size: Size,
}

/// A station that can take the parcel, with why it ranks where it does. It borrows the station
/// from the snapshot it was ranked in: a query clones no handle, so queries on several threads
/// write no counter they share.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The station as of the snapshot.
    pub station: &'a StationView,
    /// Great-circle distance from the query point, metres.
    pub distance_m: f64,
    /// Lower is better.
    pub score: f64,
}

/// Metres per degree of latitude (and of longitude at the equator).
const METRES_PER_DEGREE: f64 = 111_195.0;

/// A latitude/longitude box that contains every point within `radius_m` of `at`, so most
/// stations are ruled out with two comparisons before the great-circle distance is computed.
struct BoundingBox {
    at: GeoPoint,
    dlat: f64,
    dlon: Option<f64>,
}

impl BoundingBox {
    fn around(at: GeoPoint, radius_m: f64) -> BoundingBox {
        let dlat = radius_m / METRES_PER_DEGREE;
        let cos = at.lat.to_radians().cos();
        let dlon = dlat / cos.max(1e-9);
        // Near a pole or across the antimeridian the longitude band wraps: skip that test.
        let wraps = at.lat.abs() + dlat >= 90.0 || at.lon.abs() + dlon >= 180.0;
        BoundingBox {
            at,
            dlat,
            dlon: (!wraps).then_some(dlon),
        }
    }

    fn may_contain(&self, p: GeoPoint) -> bool {
        (p.lat - self.at.lat).abs() <= self.dlat
            && self
                .dlon
                .is_none_or(|dlon| (p.lon - self.at.lon).abs() <= dlon)
    }
}

/// Active stations within the radius that have a free compartment of the size or larger, best
/// first.
pub fn rank_stations<'a>(snapshot: &'a Snapshot, query: &RankQuery) -> Vec<Candidate<'a>> {
    let bounds = BoundingBox::around(query.at, query.radius_m);
    let here = query.at.unit();
    let within = UnitVector::chord2_of(query.radius_m);
    let mut out: Vec<Candidate> = snapshot
        .stations
        .iter()
        .filter(|s| bounds.may_contain(s.record.location))
        .filter(|s| s.record.status == StationStatus::Active && s.free_fitting(query.size) > 0)
        .filter_map(|s| {
            let chord2 = here.chord2(s.unit);
            (chord2 <= within).then(|| {
                let distance_m = UnitVector::metres_of(chord2);
                Candidate {
                    score: DISTANCE_WEIGHT * distance_m / query.radius_m.max(1.0)
                        + UTILISATION_WEIGHT * s.utilisation(query.size),
                    station: s,
                    distance_m,
                }
            })
        })
        .collect();
    out.sort_by(|a, b| a.score.total_cmp(&b.score));
    out
}

/// Up to `n` active stations anywhere that have room for the size, nearest first: the
/// alternatives offered when nothing in range fits.
pub fn nearest_with_room(
    snapshot: &Snapshot,
    at: GeoPoint,
    size: Size,
    n: usize,
) -> Vec<Candidate<'_>> {
    let here = at.unit();
    let mut out: Vec<Candidate> = snapshot
        .stations
        .iter()
        .filter(|s| s.record.status == StationStatus::Active && s.free_fitting(size) > 0)
        .map(|s| {
            let distance_m = UnitVector::metres_of(here.chord2(s.unit));
            Candidate {
                station: s,
                distance_m,
                score: distance_m,
            }
        })
        .collect();
    out.sort_by(|a, b| a.score.total_cmp(&b.score));
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests;
