//! Builders shared by the store tests.

use lockergrid_model::{Actor, StationKind, StationRecord};
use lockergrid_model::{Clock, ManualClock};
use lockergrid_protocol::{CodeKey, GeoPoint, OrderId, ParcelSpec, StationId, Tier, Timestamp};
use lockergrid_store::{ReserveRequest, StationSeed, Target};
use lockergrid_store::{Store, StoreOptions};
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;

/// 2026-11-29T00:00:00Z.
pub const START: Timestamp = Timestamp(1_796_083_200_000);

pub fn station_id(s: &str) -> StationId {
    StationId::new(s).expect("valid station id")
}

pub fn seed(id: &str, counts: [u32; 4]) -> StationSeed {
    StationSeed {
        record: StationRecord::new(
            station_id(id),
            id.to_owned(),
            StationKind::Urban,
            GeoPoint {
                lat: 52.37,
                lon: 4.89,
            },
        ),
        compartments: counts,
    }
}

pub fn checkout() -> Actor {
    Actor {
        subject: "test-checkout".into(),
        role: "checkout".into(),
    }
}

pub fn agent() -> Actor {
    Actor {
        subject: "agent-1".into(),
        role: "agent".into(),
    }
}

pub fn small_parcel() -> ParcelSpec {
    ParcelSpec {
        length_mm: 200,
        width_mm: 150,
        height_mm: 100,
        weight_g: 800,
    }
}

pub fn request(station: &str, order: &str) -> ReserveRequest {
    ReserveRequest {
        order_id: OrderId::new(order).expect("valid order id"),
        parcel: small_parcel(),
        tier: Tier::Standard,
        target: Target::Station(station_id(station)),
        hold: Duration::from_secs(3_600),
        idempotency: None,
        actor: checkout(),
        decided_by: None,
        recipient: None,
    }
}

/// A store in a temporary directory on a manual clock.
pub struct TestStore {
    pub store: Store,
    pub clock: ManualClock,
    pub dir: TempDir,
}

pub fn options(clock: &ManualClock) -> StoreOptions {
    StoreOptions {
        clock: Arc::new(clock.clone()) as Arc<dyn Clock>,
        code_key: CodeKey::from_bytes([42; 32]),
        commit_observer: None,
        edge: false,
        sealer: None,
        integrators: Default::default(),
    }
}

pub async fn open(stations: Vec<StationSeed>) -> TestStore {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = ManualClock::new(START);
    let store = Store::open(&dir.path().join("node.redb"), options(&clock)).expect("store opens");
    store.seed(stations).await.expect("seeded");
    TestStore { store, clock, dir }
}
