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
    fn out_of_range_and_nan_coordinates_are_refused() {
        assert!(GeoPoint::new(91.0, 0.0).is_err());
        assert!(GeoPoint::new(0.0, -181.0).is_err());
        assert!(GeoPoint::new(f64::NAN, 0.0).is_err());
    }
}
