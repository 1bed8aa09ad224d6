//! Coordinates and great-circle distance.

use serde::{Deserialize, Serialize};

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A WGS 84 coordinate in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoPoint {
    /// Latitude, −90 to 90.
    pub lat: f64,
    /// Longitude, −180 to 180.
    pub lon: f64,
}

/// A coordinate outside the valid range, or not a number.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error(
    "coordinate ({lat}, {lon}) is out of range; latitude must be in [-90, 90], longitude in [-180, 180]"
)]
pub struct InvalidCoordinate {
    /// The latitude given.
    pub lat: f64,
    /// The longitude given.
    pub lon: f64,
}

impl GeoPoint {
    /// A validated coordinate.
    pub fn new(lat: f64, lon: f64) -> Result<GeoPoint, InvalidCoordinate> {
        if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) {
            Ok(GeoPoint { lat, lon })
        } else {
            Err(InvalidCoordinate { lat, lon })
        }
    }

    /// Haversine distance in metres.
    pub fn distance_m(self, other: GeoPoint) -> f64 {
        let (lat1, lat2) = (self.lat.to_radians(), other.lat.to_radians());
        let dlat = lat2 - lat1;
        let dlon = (other.lon - self.lon).to_radians();
        let a = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
    }

    /// The point on the unit sphere, for distances without trigonometry per pair.
    pub fn unit(self) -> UnitVector {
        let (lat, lon) = (self.lat.to_radians(), self.lon.to_radians());
        UnitVector([lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()])
    }
}

/// A point as a vector on the unit sphere. The straight chord between two such points grows
/// with their great-circle distance, so a radius test compares squared chords (no trigonometry)
/// and only a point inside pays for one square root and one arcsine; the distance is the
/// haversine distance, computed another way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitVector([f64; 3]);

impl UnitVector {
    /// The squared chord to `other`.
    pub fn chord2(self, other: UnitVector) -> f64 {
        let [x, y, z] = self.0;
        let [u, v, w] = other.0;
        (x - u).powi(2) + (y - v).powi(2) + (z - w).powi(2)
    }

    /// The squared chord of a great-circle distance of `metres` (at most half the globe).
    pub fn chord2_of(metres: f64) -> f64 {
        let half_angle = (metres / (2.0 * EARTH_RADIUS_M)).clamp(0.0, std::f64::consts::FRAC_PI_2);
        (2.0 * half_angle.sin()).powi(2)
    }

    /// The great-circle distance in metres of a squared chord.
    pub fn metres_of(chord2: f64) -> f64 {
        2.0 * EARTH_RADIUS_M * (chord2.sqrt() / 2.0).min(1.0).asin()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amsterdam_centraal_to_dam_square_is_about_800_m() {
        let centraal = GeoPoint::new(52.3791, 4.9003).expect("valid");
        let dam = GeoPoint::new(52.3731, 4.8926).expect("valid");
        let d = centraal.distance_m(dam);
        assert!((750.0..850.0).contains(&d), "{d}");
    }

    #[test]
    fn the_chord_gives_the_haversine_distance_and_its_radius_test() {
        let places = [
            (52.3791, 4.9003),
            (52.3731, 4.8926),
            (0.0, 179.999),
            (0.0, -179.999),
            (89.99, 10.0),
            (-60.0, 0.0),
            (-33.86, 151.21),
        ];
        for (a_lat, a_lon) in places {
            for (b_lat, b_lon) in places {
                let (a, b) = (
                    GeoPoint::new(a_lat, a_lon).unwrap(),
                    GeoPoint::new(b_lat, b_lon).unwrap(),
                );
                let want = a.distance_m(b);
                let chord2 = a.unit().chord2(b.unit());
                let got = UnitVector::metres_of(chord2);
                assert!(
                    (got - want).abs() <= 1e-6 * want.max(1.0),
                    "{a:?} {b:?}: {got} vs {want}"
                );
                assert!(chord2 <= UnitVector::chord2_of(want * (1.0 + 1e-9) + 1e-6));
                if want > 1.0 {
                    assert!(chord2 > UnitVector::chord2_of(want - 1.0), "{a:?} {b:?}");
                }
            }
        }
    }

    #[test]
    fn out_of_range_and_nan_coordinates_are_refused() {
        assert!(GeoPoint::new(91.0, 0.0).is_err());
        assert!(GeoPoint::new(0.0, -181.0).is_err());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
    }
}
