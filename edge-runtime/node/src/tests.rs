//! One table of code-entry and door-event cases, run against a gateway node and an edge node cut
//! off from its gateway: the same rules, whichever node decides. Then what the authority changes:
//! an edge node with its uplink up leaves events to the gateway, except the doors of its own
//! unlocks.

use super::*;
use lockergrid_model::{
    Actor, ManualClock, StationKind, StationRecord, StationStatus, SyncLog, UnlockFor,
};
use lockergrid_plugin_host::HostOptions;
use lockergrid_protocol::message::{DeviceEvent, EventMessage, MESSAGE_VERSION};
use lockergrid_protocol::{
    CodeKey, CompartmentId, GeoPoint, LockerId, OrderId, ParcelId, ParcelSpec, ParcelStatus,
    StationId, Tier, Timestamp,
};
use lockergrid_store::{DoorClosed, ReserveRequest, StationSeed, Store, StoreOptions, Target};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::watch;

/// 2026-11-29T00:00:00Z.
const START: Timestamp = Timestamp(1_796_083_200_000);
const STATION: &str = "st-1";

fn station() -> StationId {
    StationId::new(STATION).expect("station id")
}

fn store_options(clock: &ManualClock, edge: bool) -> StoreOptions {
    StoreOptions {
        clock: std::sync::Arc::new(clock.clone()),
        code_key: CodeKey::from_bytes([7; 32]),
        commit_observer: None,
        edge,
        sealer: None,
        integrators: Default::default(),
    }
}

/// Which node decides, and how it is connected.
#[derive(Debug, Clone, Copy, PartialEq)]
enum NodeKind {
    Gateway,
    EdgeCutOff,
    EdgeConnected,
}

/// A node with one station of three small compartments, one parcel stored; `code` is its
/// pickup code.
struct Fixture {
    node: std::sync::Arc<Node>,
    clock: ManualClock,
    code: String,
    parcel: ParcelId,
    compartment: CompartmentId,
    seq: u64,
    _uplink: watch::Sender<bool>,
    _dirs: Vec<tempfile::TempDir>,
}

async fn fixture(kind: NodeKind) -> Fixture {
    let clock = ManualClock::new(START);
    let dir = tempfile::tempdir().expect("temp dir");
    let gateway = Store::open(
        &dir.path().join("gateway.redb"),
        store_options(&clock, false),
    )
    .expect("gateway store");
    gateway
        .seed(vec![StationSeed {
            record: StationRecord::new(
                station(),
                "One",
                StationKind::Urban,
                GeoPoint {
                    lat: 52.37,
                    lon: 4.89,
                },
            ),
            compartments: [3, 0, 0, 0],
        }])
        .await
        .expect("seeded");
    let held = gateway
        .reserve(ReserveRequest {
            order_id: OrderId::new("o-1").expect("order id"),
            parcel: ParcelSpec {
                length_mm: 200,
                width_mm: 150,
                height_mm: 100,
                weight_g: 800,
            },
            tier: Tier::Standard,
            target: Target::Station(station()),
            hold: Duration::from_secs(3_600),
            idempotency: None,
            actor: Actor::system(),
            decided_by: None,
            recipient: None,
        })
        .await
        .expect("held");
    let deposit = gateway
        .deposit(held.reservation.id, Actor::system(), None)
        .await
        .expect("deposited");
    let mut dirs = vec![dir];
    let (uplink, connected) = watch::channel(kind == NodeKind::EdgeConnected);
    let (store, authority) = match kind {
        NodeKind::Gateway => (gateway, Authority::Gateway),
        NodeKind::EdgeCutOff | NodeKind::EdgeConnected => {
            let edge_dir = tempfile::tempdir().expect("temp dir");
            let edge = Store::open(
                &edge_dir.path().join("edge.redb"),
                store_options(&clock, true),
            )
            .expect("edge store");
            let served: BTreeSet<StationId> = [station()].into_iter().collect();
            let mut log = SyncLog::new("epoch".into(), 4);
            log.advance(gateway.mirror_items(&served).expect("mirror items"));
            for batch in log.catch_up(None) {
                assert!(edge.apply_sync(batch).await.expect("synced"));
            }
            dirs.push(edge_dir);
            (edge, Authority::Edge(connected))
        }
    };
    let plugins = PluginHost::new(HostOptions::default(), Default::default()).expect("host");
    let node = Node::new(NodeOptions {
        store,
        plugins: std::sync::Arc::new(plugins),
        utc_offset_minutes: 60,
        authority,
    });
    Fixture {
        node: std::sync::Arc::new(node),
        clock,
        code: deposit.code.reveal().to_owned(),
        parcel: deposit.parcel.id,
        compartment: deposit.parcel.compartment_id,
        seq: 0,
        _uplink: uplink,
        _dirs: dirs,
    }
}

impl Fixture {
    async fn event(&mut self, event: DeviceEvent) -> (String, Handled) {
        self.seq += 1;
        let id = format!("{STATION}-{}", self.seq);
        let message = EventMessage {
            v: MESSAGE_VERSION,
            id: id.clone(),
            seq: self.seq,
            locker: LockerId::new(STATION).expect("locker id"),
            at: self.node.store().now(),
            event,
        };
        (id, self.node.on_event(&station(), message).await)
    }

    async fn typed(&mut self, code: &str) -> Handled {
        let code = code.to_owned();
        self.event(DeviceEvent::CodeEntered { code }).await.1
    }

    fn last_outcome(&self) -> String {
        let log = self.node.store().access_log(0, 10_000).expect("log");
        log.last().map(|e| e.outcome.clone()).unwrap_or_default()
    }

    fn parcel_status(&self) -> ParcelStatus {
        let parcel = self.node.store().parcel(&self.parcel).expect("readable");
        parcel.expect("the node holds the parcel").status
    }
}

/// Whether a door-closed event completed a pickup.
fn picked_up(handled: &Handled) -> bool {
    matches!(
        handled,
        Handled::Applied(Effect::DoorClosed {
            closed: DoorClosed::PickedUp(_),
            ..
        })
    )
}

/// The unlock a right code answers: for the parcel's compartment, completed by its door.
async fn right_code_opens_and_its_door_completes_the_pickup(kind: NodeKind) {
    let mut f = fixture(kind).await;
    let code = f.code.clone();
    let Handled::Applied(Effect::Unlock(command)) = f.typed(&code).await else {
        panic!("{kind:?}: the right code opens nothing");
    };
    assert_eq!(command.compartment_id, f.compartment, "{kind:?}");
    assert!(
        matches!(command.unlock_for, UnlockFor::Pickup { .. }),
        "{kind:?}: {command:?}"
    );
    let (id, handled) = f
        .event(DeviceEvent::DoorClosed {
            compartment: f.compartment.clone(),
            unlocked_by: Some(command.id.clone()),
        })
        .await;
    assert!(picked_up(&handled), "{kind:?}: {handled:?}");
    assert_eq!(f.parcel_status(), ParcelStatus::PickedUp, "{kind:?}");
    let again = EventMessage {
        v: MESSAGE_VERSION,
        id,
        seq: f.seq,
        locker: LockerId::new(STATION).expect("locker id"),
        at: f.node.store().now(),
        event: DeviceEvent::DoorClosed {
            compartment: f.compartment.clone(),
            unlocked_by: Some(command.id),
        },
    };
    assert!(
        matches!(f.node.on_event(&station(), again).await, Handled::Duplicate),
        "{kind:?}: a resent event is applied once"
    );
}

async fn a_malformed_code_is_rejected_and_counted(kind: NodeKind) {
    let mut f = fixture(kind).await;
    assert!(
        matches!(f.typed("12").await, Handled::Applied(Effect::None)),
        "{kind:?}"
    );
    assert_eq!(f.last_outcome(), "code_rejected", "{kind:?}");
    assert_eq!(f.parcel_status(), ParcelStatus::Stored, "{kind:?}");
}

async fn five_wrong_codes_make_even_the_right_one_wait(kind: NodeKind) {
    let mut f = fixture(kind).await;
    let wrong = if f.code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    for _ in 0..lockergrid_protocol::lockout::FREE_FAILURES {
        assert!(
            matches!(f.typed(wrong).await, Handled::Applied(Effect::None)),
            "{kind:?}"
        );
    }
    let code = f.code.clone();
    assert!(
        matches!(f.typed(&code).await, Handled::Applied(Effect::None)),
        "{kind:?}"
    );
    assert_eq!(f.last_outcome(), "locked_out", "{kind:?}");
    assert_eq!(f.parcel_status(), ParcelStatus::Stored, "{kind:?}");
}

/// A thousand entries in flight at once, the right code last: no more are checked than the
/// station's free failures, the rest are refused unchecked, and once the wait has passed the
/// right code opens.
async fn a_burst_of_wrong_codes_gets_only_the_budget_checked(kind: NodeKind) {
    use lockergrid_protocol::lockout::{FIRST_DELAY, FREE_FAILURES};
    const BURST: u32 = 1_000;
    let f = fixture(kind).await;
    let mut entries = tokio::task::JoinSet::new();
    for n in 0..BURST {
        let node = f.node.clone();
        let code = match n {
            n if n == BURST - 1 => f.code.clone(),
            n => format!("{:08}", (u64::from(n) * 7_919 + 1) % 100_000_000),
        };
        assert!(n == BURST - 1 || code != f.code, "a wrong code is wrong");
        entries.spawn(async move {
            let entry = CodeEntry {
                station: station(),
                code: Entered::Typed(code),
                event: Some(format!("burst-{n}")),
                actor: locker_actor(STATION),
                locker_online: true,
            };
            node.enter_code(entry).await
        });
    }
    let (mut checked, mut refused) = (0, 0);
    while let Some(answer) = entries.join_next().await {
        match answer.expect("no entry panics") {
            Ok(Some(_)) | Err(CodeRefused::Rejected { .. }) => checked += 1,
            Err(CodeRefused::Locked(_)) => refused += 1,
            other => panic!("{kind:?}: {other:?}"),
        }
    }
    assert!(checked <= FREE_FAILURES, "{kind:?}: {checked} checked");
    assert_eq!(checked + refused, BURST, "{kind:?}");
    if f.parcel_status() == ParcelStatus::Stored {
        let entry = |event: &str| CodeEntry {
            station: station(),
            code: Entered::Typed(f.code.clone()),
            event: Some(event.into()),
            actor: locker_actor(STATION),
            locker_online: true,
        };
        assert!(
            matches!(
                f.node.enter_code(entry("right-early")).await,
                Err(CodeRefused::Locked(_))
            ),
            "{kind:?}: the right code waits too"
        );
        f.clock.advance(FIRST_DELAY);
        let opened = f.node.enter_code(entry("right-later")).await;
        assert!(matches!(opened, Ok(Some(_))), "{kind:?}: {opened:?}");
    }
}

/// A locker that refused codes alone reports its count (never the code): the node records the
/// refusal once and its own count takes the locker's in.
async fn a_lockers_offline_refusals_join_the_nodes_count(kind: NodeKind) {
    use lockergrid_protocol::Lockout;
    let mut f = fixture(kind).await;
    let lockout = Lockout {
        failures: 7,
        last_failure_at: Some(f.node.store().now()),
    };
    let (id, handled) = f
        .event(DeviceEvent::CodeRejectedOffline {
            lockout,
            locked_out: true,
        })
        .await;
    assert!(
        matches!(handled, Handled::Applied(Effect::None)),
        "{kind:?}: {handled:?}"
    );
    assert_eq!(f.last_outcome(), "locked_out at the locker", "{kind:?}");
    assert_eq!(
        f.node.store().lockout(&station()).expect("readable"),
        lockout
    );
    assert!(
        f.node
            .store()
            .event_applied(&station(), &id)
            .expect("readable")
    );
    let code = f.code.clone();
    assert!(matches!(
        f.typed(&code).await,
        Handled::Applied(Effect::None)
    ));
    assert_eq!(
        f.last_outcome(),
        "locked_out",
        "{kind:?}: the node waits too"
    );
}

/// A locker sends its codes hashed with the station's key: the hash opens what the code would,
/// and a hash of nothing is a wrong code.
async fn a_hashed_code_opens_like_the_code(kind: NodeKind) {
    let mut f = fixture(kind).await;
    let code = lockergrid_protocol::PickupCode::parse(&f.code).expect("a code");
    let key = CodeKey::from_bytes([7; 32]).station(&station());
    let code_hash = key.hash(&code).to_hex();
    let (_, wrong) = f
        .event(DeviceEvent::CodeHashed {
            code_hash: "ab".repeat(32),
        })
        .await;
    assert!(matches!(wrong, Handled::Applied(Effect::None)), "{kind:?}");
    assert_eq!(f.last_outcome(), "code_rejected", "{kind:?}");
    let (_, opened) = f.event(DeviceEvent::CodeHashed { code_hash }).await;
    let Handled::Applied(Effect::Unlock(command)) = opened else {
        panic!("{kind:?}: the right hash opens nothing: {opened:?}");
    };
    assert_eq!(command.compartment_id, f.compartment, "{kind:?}");
}

/// A door closing that no command released (after a pickup the locker decided alone) is
/// recorded by whichever node decides, a cut-off edge node included.
async fn a_door_closed_that_no_command_released_is_recorded(kind: NodeKind) {
    let mut f = fixture(kind).await;
    let (_, handled) = f
        .event(DeviceEvent::DoorClosed {
            compartment: f.compartment.clone(),
            unlocked_by: None,
        })
        .await;
    assert!(
        matches!(
            handled,
            Handled::Applied(Effect::DoorClosed {
                closed: DoorClosed::Recorded,
                ..
            })
        ),
        "{kind:?}: {handled:?}"
    );
    assert_eq!(f.last_outcome(), "closed", "{kind:?}");
}

async fn a_door_opening_is_logged_once(kind: NodeKind) {
    let mut f = fixture(kind).await;
    let compartment = f.compartment.clone();
    let (_, handled) = f
        .event(DeviceEvent::DoorOpened {
            compartment,
            unreleased: false,
        })
        .await;
    assert!(
        matches!(handled, Handled::Applied(Effect::None)),
        "{kind:?}"
    );
    assert_eq!(f.last_outcome(), "opened", "{kind:?}");
}

/// A door-closed event naming a command the node never issued: the gateway records it; an edge
/// node leaves it to the gateway, which may know it.
async fn a_door_closed_after_an_unknown_command(kind: NodeKind) {
    let mut f = fixture(kind).await;
    let (_, handled) = f
        .event(DeviceEvent::DoorClosed {
            compartment: f.compartment.clone(),
            unlocked_by: Some("no-such-command".into()),
        })
        .await;
    match kind {
        NodeKind::Gateway => assert!(
            matches!(
                handled,
                Handled::Applied(Effect::DoorClosed {
                    closed: DoorClosed::Recorded,
                    ..
                })
            ),
            "{handled:?}"
        ),
        NodeKind::EdgeCutOff | NodeKind::EdgeConnected => {
            assert!(matches!(handled, Handled::NotOurs), "{kind:?}: {handled:?}")
        }
    }
}

/// A tamper alarm takes the station out of service at the gateway; an edge node leaves it to the
/// gateway even while cut off (the locker keeps it until then).
async fn a_tamper_alarm(kind: NodeKind) {
    let mut f = fixture(kind).await;
    let (_, handled) = f.event(DeviceEvent::Tamper { tripped: true }).await;
    match kind {
        NodeKind::Gateway => {
            assert!(
                matches!(handled, Handled::Applied(Effect::Tamper { tripped: true })),
                "{handled:?}"
            );
            let status = f
                .node
                .store()
                .snapshot()
                .station(&station())
                .map(|v| v.record.status);
            assert_eq!(status, Some(StationStatus::OutOfService));
        }
        NodeKind::EdgeCutOff | NodeKind::EdgeConnected => {
            assert!(matches!(handled, Handled::NotOurs), "{kind:?}: {handled:?}")
        }
    }
}

#[tokio::test]
async fn the_code_entry_and_door_cases_hold_at_the_gateway_and_at_a_cut_off_edge_node() {
    for kind in [NodeKind::Gateway, NodeKind::EdgeCutOff] {
        right_code_opens_and_its_door_completes_the_pickup(kind).await;
        a_malformed_code_is_rejected_and_counted(kind).await;
        five_wrong_codes_make_even_the_right_one_wait(kind).await;
        a_burst_of_wrong_codes_gets_only_the_budget_checked(kind).await;
        a_lockers_offline_refusals_join_the_nodes_count(kind).await;
        a_hashed_code_opens_like_the_code(kind).await;
        a_door_closed_that_no_command_released_is_recorded(kind).await;
        a_door_opening_is_logged_once(kind).await;
        a_door_closed_after_an_unknown_command(kind).await;
        a_tamper_alarm(kind).await;
    }
}

#[tokio::test]
async fn a_connected_edge_node_leaves_code_entries_and_door_events_to_the_gateway() {
    let mut f = fixture(NodeKind::EdgeConnected).await;
    let code = f.code.clone();
    assert!(matches!(f.typed(&code).await, Handled::NotOurs));
    let compartment = f.compartment.clone();
    let (_, handled) = f
        .event(DeviceEvent::DoorOpened {
            compartment,
            unreleased: false,
        })
        .await;
    assert!(matches!(handled, Handled::NotOurs), "{handled:?}");
    a_door_closed_after_an_unknown_command(NodeKind::EdgeConnected).await;
    a_tamper_alarm(NodeKind::EdgeConnected).await;
    assert_eq!(f.parcel_status(), ParcelStatus::Stored);
}

#[tokio::test]
async fn an_edge_node_completes_the_door_of_its_own_unlock_after_the_uplink_returns() {
    let mut f = fixture(NodeKind::EdgeCutOff).await;
    let code = f.code.clone();
    let Handled::Applied(Effect::Unlock(command)) = f.typed(&code).await else {
        panic!("the right code opens nothing offline");
    };
    f._uplink.send_replace(true);
    let (_, handled) = f
        .event(DeviceEvent::DoorClosed {
            compartment: f.compartment.clone(),
            unlocked_by: Some(command.id),
        })
        .await;
    assert!(picked_up(&handled), "{handled:?}");
    assert_eq!(f.parcel_status(), ParcelStatus::PickedUp);
}
