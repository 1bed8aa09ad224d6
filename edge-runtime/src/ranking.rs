//! The built-in station ranking: distance and utilisation together, so that a slightly farther
//! station with room beats a nearly full one next door and load spreads away from hot spots.

use crate::store::records::StationStatus;
use crate::store::snapshot::{Snapshot, StationView};
use lockergrid_protocol::{GeoPoint, Size};
use std::sync::Arc;

/// Weight of normalised distance (0 at the point, 1 at the radius) in the score.
const DISTANCE_WEIGHT: f64 = 0.6;
/// Weight of utilisation (0 empty, 1 full) in the score.
const UTILISATION_WEIGHT: f64 = 0.4;

/// A discovery query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Query {
    /// Where the customer is.
    pub at: GeoPoint,
    /// How far they will go, in metres.
    pub radius_m: f64,
    /// The compartment size the parcel needs.
    pub size: Size,
}

/// A station that can take the parcel, with why it ranks where it does.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The station as of the snapshot.
    pub station: Arc<StationView>,
    /// Great-circle distance from the query point, metres.
    pub distance_m: f64,
    /// Lower is better.
    pub score: f64,
}

/// Active stations within the radius that have a free compartment of the size or larger, best
/// first.
pub fn rank(snapshot: &Snapshot, query: &Query) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = snapshot
        .stations
        .iter()
        .filter(|s| s.record.status == StationStatus::Active && s.free_fitting(query.size) > 0)
        .filter_map(|s| {
            let distance_m = query.at.distance_m(s.record.location);
            (distance_m <= query.radius_m).then(|| Candidate {
                score: DISTANCE_WEIGHT * distance_m / query.radius_m.max(1.0)
                    + UTILISATION_WEIGHT * s.utilisation(query.size),
                station: s.clone(),
                distance_m,
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
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = snapshot
        .stations
        .iter()
        .filter(|s| s.record.status == StationStatus::Active && s.free_fitting(size) > 0)
        .map(|s| {
            let distance_m = at.distance_m(s.record.location);
            Candidate {
                station: s.clone(),
                distance_m,
                score: distance_m,
            }
        })
        .collect();
    out.sort_by(|a, b| a.score.total_cmp(&b.score));
    out.truncate(n);
    out
}
