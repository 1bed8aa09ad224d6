use super::*;
use crate::StationKind;
use crate::StationRecord;
use crate::{SizeCount, StationView};
use lockergrid_protocol::StationId;
use std::sync::Arc;
use std::time::Instant;

fn view(id: &str, lat: f64, lon: f64, free: u32, total: u32) -> Arc<StationView> {
    let mut sizes = [SizeCount::default(); 4];
    sizes[0] = SizeCount { free, total };
    Arc::new(StationView::new(
        StationRecord::new(
            StationId::new(id).expect("valid"),
            id,
            StationKind::Urban,
            GeoPoint { lat, lon },
        ),
        sizes,
        [[0; 5]; 4],
    ))
}

fn snapshot(stations: Vec<Arc<StationView>>) -> Snapshot {
    Snapshot {
        commit_seq: 1,
        committed_at: Default::default(),
        published: Instant::now(),
        stations: stations.into(),
    }
}

fn query(lat: f64, lon: f64, radius_m: f64) -> RankQuery {
    RankQuery {
        at: GeoPoint { lat, lon },
        radius_m,
        size: Size::Small,
    }
}

#[test]
fn a_nearly_empty_station_a_little_farther_beats_a_nearly_full_one_next_door() {
    let snap = snapshot(vec![
        view("full-nearby", 52.3700, 4.8900, 1, 100),
        view("empty-farther", 52.3745, 4.8900, 95, 100),
    ]);
    let ranked = rank_stations(&snap, &query(52.3700, 4.8900, 2_000.0));
    assert_eq!(ranked[0].station.record.id.as_str(), "empty-farther");
    assert_eq!(ranked.len(), 2);
}

#[test]
fn stations_outside_the_radius_or_without_room_are_left_out() {
    let snap = snapshot(vec![
        view("in", 52.3700, 4.8900, 5, 10),
        view("out", 52.4700, 4.8900, 5, 10),
        view("full", 52.3701, 4.8901, 0, 10),
    ]);
    let ranked = rank_stations(&snap, &query(52.3700, 4.8900, 2_000.0));
    let ids: Vec<&str> = ranked
        .iter()
        .map(|c| c.station.record.id.as_str())
        .collect();
    assert_eq!(ids, ["in"]);
}

#[test]
fn the_bounding_box_never_drops_a_station_inside_the_radius() {
    // Around the antimeridian and near a pole, as well as at ordinary latitudes.
    for (lat, lon) in [
        (52.37, 4.89),
        (0.0, 179.999),
        (0.0, -179.999),
        (89.99, 10.0),
        (-60.0, 0.0),
    ] {
        let at = GeoPoint { lat, lon };
        let bounds = BoundingBox::around(at, 5_000.0);
        for step in 0..360 {
            let bearing = f64::from(step).to_radians();
            let d = 4_999.0 / METRES_PER_DEGREE;
            let p_lat = (lat + d * bearing.cos()).clamp(-90.0, 90.0);
            let mut p_lon = lon + d * bearing.sin() / lat.to_radians().cos().max(1e-9);
            if p_lon > 180.0 {
                p_lon -= 360.0;
            } else if p_lon < -180.0 {
                p_lon += 360.0;
            }
            let p = GeoPoint {
                lat: p_lat,
                lon: p_lon,
            };
            if at.distance_m(p) <= 5_000.0 {
                assert!(
                    bounds.may_contain(p),
                    "{p:?} within 5 km of {at:?} was dropped"
                );
            }
        }
    }
}
