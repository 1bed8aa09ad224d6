//! The device registry: a device is provisioned, goes active only on a passing self-test
//! (applied once), moves only as its lifecycle allows, and reaches an edge node's mirror.

use crate::support::{open, seed, station_id};
use lockergrid_model::{Actor, DeviceChange, DeviceStatus, SyncItem};
use lockergrid_protocol::{LockerId, StationId};
use lockergrid_store::{ChangeError, DeviceOrder, Provision, SelfTest, SelfTested};
use std::collections::BTreeSet;

fn operator() -> Actor {
    Actor {
        subject: "ops".into(),
        role: "operator".into(),
    }
}

fn provision(station: &str, serial: &str) -> Provision {
    Provision {
        station: station_id(station),
        model: "m-1".into(),
        serial: serial.into(),
        fingerprint: Some("ab".repeat(32)),
        already_active: false,
        actor: operator(),
    }
}

fn self_test(station: &str, event: &str, failures: &[&str]) -> SelfTest {
    SelfTest {
        station: station_id(station),
        event: event.into(),
        failures: failures.iter().map(|f| f.to_string()).collect(),
        actor: operator(),
    }
}

fn order(id: &str, change: DeviceChange) -> DeviceOrder {
    DeviceOrder {
        id: LockerId::new(id).unwrap(),
        change,
        actor: operator(),
        reason: "test".into(),
    }
}

#[tokio::test]
async fn a_device_goes_active_on_its_first_passing_self_test_and_not_on_a_failing_one() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let mut changed = t.store.devices_changed();
    let device = t
        .store
        .provision_device(provision("st-a", "01"))
        .await
        .unwrap();
    assert_eq!(device.status, DeviceStatus::Provisioned);
    assert!(changed.has_changed().unwrap(), "the front hears of it");
    changed.mark_unchanged();

    let failed = t
        .store
        .device_self_test(self_test(
            "st-a",
            "st-a-1",
            &["latch of \"st-a:S001\" did not answer"],
        ))
        .await
        .unwrap();
    let SelfTested::Recorded { device, activated } = failed else {
        panic!("{failed:?}");
    };
    assert!(!activated);
    assert_eq!(device.status, DeviceStatus::Provisioned);
    assert_eq!(device.self_test_failures.len(), 1);

    let passed = t
        .store
        .device_self_test(self_test("st-a", "st-a-2", &[]))
        .await
        .unwrap();
    assert!(
        matches!(
            passed,
            SelfTested::Recorded {
                activated: true,
                ..
            }
        ),
        "{passed:?}"
    );
    let again = t
        .store
        .device_self_test(self_test("st-a", "st-a-2", &[]))
        .await
        .unwrap();
    assert_eq!(again, SelfTested::Duplicate);
    let device = t
        .store
        .device(&LockerId::new("st-a").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(device.status, DeviceStatus::Active);
    assert!(device.self_test_failures.is_empty() && device.activated_at.is_some());
    let log = t.store.access_log(1, 100).unwrap();
    assert!(
        log.iter()
            .any(|e| e.action == "device_accepted" && e.target == "st-a")
    );
    assert!(
        log.iter()
            .any(|e| e.action == "self_test" && e.outcome.starts_with("failed"))
    );

    // A locker with no registry entry: recorded in the access log, nothing else.
    let stray = t
        .store
        .device_self_test(self_test("st-zz", "st-zz-1", &[]))
        .await
        .unwrap();
    assert_eq!(stray, SelfTested::Unregistered);
}

#[tokio::test]
async fn a_device_moves_only_as_its_lifecycle_allows_and_a_replacement_starts_over() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    t.store
        .provision_device(provision("st-a", "01"))
        .await
        .unwrap();
    let refused = t
        .store
        .change_device(order("st-a", DeviceChange::Suspended))
        .await;
    assert!(
        matches!(refused, Err(ChangeError::Conflict { .. })),
        "{refused:?}"
    );
    t.store
        .device_self_test(self_test("st-a", "e-1", &[]))
        .await
        .unwrap();
    let suspended = t
        .store
        .change_device(order("st-a", DeviceChange::Suspended))
        .await
        .unwrap();
    assert!(!suspended.may_connect());

    // Provisioned again (a new certificate): it runs its acceptance test again.
    let again = t
        .store
        .provision_device(provision("st-a", "02"))
        .await
        .unwrap();
    assert_eq!(
        (again.status, again.serial.as_str()),
        (DeviceStatus::Provisioned, "02")
    );
    let gone = t
        .store
        .change_device(order("st-a", DeviceChange::Decommissioned))
        .await
        .unwrap();
    assert_eq!(gone.status, DeviceStatus::Decommissioned);
    assert!(gone.decommissioned_at.is_some() && !gone.may_connect());
    let back = t
        .store
        .change_device(order("st-a", DeviceChange::Resumed))
        .await;
    assert!(
        matches!(back, Err(ChangeError::Conflict { .. })),
        "{back:?}"
    );
    // A replacement controller for the station is a new device.
    let replacement = t
        .store
        .provision_device(provision("st-a", "03"))
        .await
        .unwrap();
    assert_eq!(replacement.status, DeviceStatus::Provisioned);
    assert!(replacement.decommissioned_at.is_none());

    let unknown = t
        .store
        .change_device(order("st-b", DeviceChange::Suspended))
        .await;
    assert!(
        matches!(unknown, Err(ChangeError::NotFound { .. })),
        "{unknown:?}"
    );
    let nowhere = t.store.provision_device(provision("st-b", "04")).await;
    assert!(
        matches!(nowhere, Err(ChangeError::NotFound { .. })),
        "{nowhere:?}"
    );
}

#[tokio::test]
async fn an_edge_node_mirrors_the_registry_entries_of_its_own_stations_only() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0]), seed("st-b", [1, 0, 0, 0])]).await;
    t.store
        .provision_device(provision("st-a", "01"))
        .await
        .unwrap();
    t.store
        .provision_device(provision("st-b", "02"))
        .await
        .unwrap();
    t.store
        .device_seen(station_id("st-a"), "1.0.0".into(), operator())
        .await
        .unwrap();
    let mine: BTreeSet<StationId> = [station_id("st-a")].into();
    let devices: Vec<_> = t
        .store
        .mirror_items(&mine)
        .unwrap()
        .into_iter()
        .filter_map(|item| match item {
            SyncItem::Device(d) => Some(d),
            _ => None,
        })
        .collect();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].serial, "01");
    assert_eq!(devices[0].firmware.as_deref(), Some("1.0.0"));
    assert_eq!(devices[0].last_seen, None, "not the edge node's business");
}
