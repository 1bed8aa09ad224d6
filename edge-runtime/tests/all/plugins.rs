//! The plugin host with the real `reservation-balanced` component built from plugins/.

use lockergrid_edge_runtime::plugins::{
    Decider, PluginError, PluginHost, PluginLimits, RankRequest,
};
use lockergrid_edge_runtime::ranking::Candidate;
use lockergrid_edge_runtime::store::records::{StationKind, StationRecord, StationStatus};
use lockergrid_edge_runtime::store::snapshot::{SizeCount, StationView};
use lockergrid_plugin_artifacts::RESERVATION_BALANCED;
use lockergrid_protocol::{GeoPoint, ParcelSpec, Size, StationId, Tier, Timestamp};
use std::collections::BTreeMap;
use std::sync::Arc;

fn candidate(id: &str, distance_m: f64, free: u32, total: u32) -> Candidate {
    let mut sizes = [SizeCount::default(); 4];
    sizes[0] = SizeCount { free, total };
    Candidate {
        station: Arc::new(StationView {
            record: StationRecord {
                id: StationId::new(id).expect("valid"),
                name: id.into(),
                kind: StationKind::Urban,
                location: GeoPoint {
                    lat: 52.37,
                    lon: 4.89,
                },
                status: StationStatus::Active,
            },
            sizes,
            states: [[0; 5]; 4],
        }),
        distance_m,
        score: 0.0,
    }
}

fn request() -> RankRequest {
    RankRequest {
        parcel: ParcelSpec {
            length_mm: 200,
            width_mm: 150,
            height_mm: 100,
            weight_g: 500,
        },
        size: Size::Small,
        tier: Tier::Standard,
    }
}

fn ids(candidates: &[Candidate]) -> Vec<&str> {
    candidates
        .iter()
        .map(|c| c.station.record.id.as_str())
        .collect()
}

#[tokio::test]
async fn the_balanced_policy_puts_a_nearly_empty_station_before_a_full_one_nearby() {
    let host = Arc::new(PluginHost::new(PluginLimits::default()).expect("host starts"));
    let info = host
        .load_policy(
            "reservation-balanced",
            "0.1.0",
            RESERVATION_BALANCED,
            BTreeMap::new(),
        )
        .expect("the default plugin loads");
    assert_eq!(info.digest.len(), 64);
    let built_in_order = vec![
        candidate("full-nearby", 100.0, 1, 100),
        candidate("empty-farther", 600.0, 95, 100),
    ];
    let ranked = host
        .rank_stations(request(), built_in_order, Timestamp(0))
        .await;
    assert_eq!(ranked.decider, Decider::Plugin(info));
    assert_eq!(ids(&ranked.candidates), ["empty-farther", "full-nearby"]);
}

#[tokio::test]
async fn without_a_plugin_the_built_in_order_stands() {
    let host = Arc::new(PluginHost::new(PluginLimits::default()).expect("host starts"));
    let order = vec![
        candidate("a", 100.0, 1, 100),
        candidate("b", 600.0, 95, 100),
    ];
    let ranked = host.rank_stations(request(), order, Timestamp(0)).await;
    assert_eq!(ranked.decider, Decider::BuiltIn(None));
    assert_eq!(ids(&ranked.candidates), ["a", "b"]);
}

#[tokio::test]
async fn bytes_that_are_not_a_component_are_refused_and_the_old_policy_keeps_serving() {
    let host = Arc::new(PluginHost::new(PluginLimits::default()).expect("host starts"));
    host.load_policy(
        "reservation-balanced",
        "0.1.0",
        RESERVATION_BALANCED,
        BTreeMap::new(),
    )
    .expect("loads");
    let empty_core_module = b"\0asm\x01\0\0\0";
    for bytes in [&b"not wasm at all"[..], &empty_core_module[..]] {
        let refused = host.load_policy("bogus", "9", bytes, BTreeMap::new());
        assert!(
            matches!(refused, Err(PluginError::Refused { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(
        host.policy().map(|p| p.name.clone()).as_deref(),
        Some("reservation-balanced")
    );
}

/// Loads a hostile policy and checks that a call falls back to the built-in order with a reason.
async fn contained(bytes: &[u8]) -> String {
    let host = Arc::new(PluginHost::new(PluginLimits::default()).expect("host starts"));
    host.load_policy("hostile", "1", bytes, BTreeMap::new())
        .expect("a well-formed component loads");
    let order = vec![
        candidate("a", 100.0, 1, 100),
        candidate("b", 600.0, 95, 100),
    ];
    let ranked = host.rank_stations(request(), order, Timestamp(0)).await;
    assert_eq!(
        ids(&ranked.candidates),
        ["a", "b"],
        "the built-in order answers"
    );
    match ranked.decider {
        Decider::BuiltIn(Some(reason)) => reason,
        other => panic!("expected a fallback, got {other:?}"),
    }
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_its_deadline() {
    let reason = contained(lockergrid_plugin_artifacts::MISBEHAVE_LOOP).await;
    assert!(
        reason.contains("deadline") || reason.contains("timed out"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_trap_falls_back_to_the_built_in_ranking() {
    let reason = contained(lockergrid_plugin_artifacts::MISBEHAVE_TRAP).await;
    assert!(reason.contains("plugin trapped"), "{reason}");
}

#[tokio::test]
async fn a_ranking_that_names_unknown_stations_is_refused() {
    let reason = contained(lockergrid_plugin_artifacts::MISBEHAVE_UNKNOWN_STATION).await;
    assert!(reason.contains("unknown station"), "{reason}");
}

#[tokio::test]
async fn a_ten_mebibyte_answer_is_refused() {
    let reason = contained(lockergrid_plugin_artifacts::MISBEHAVE_HUGE_ANSWER).await;
    assert!(
        reason.contains("invalid plugin answer") || reason.contains("failed"),
        "{reason}"
    );
}

#[tokio::test]
async fn growing_memory_towards_4_gib_hits_the_cap() {
    let reason = contained(lockergrid_plugin_artifacts::MISBEHAVE_MEMORY).await;
    assert!(reason.contains("growing memory"), "{reason}");
}

#[tokio::test]
async fn repeated_failures_take_the_plugin_out_of_service() {
    let limits = PluginLimits::default();
    let host = Arc::new(PluginHost::new(limits).expect("host starts"));
    host.load_policy(
        "hostile",
        "1",
        lockergrid_plugin_artifacts::MISBEHAVE_TRAP,
        BTreeMap::new(),
    )
    .expect("loads");
    for _ in 0..limits.failures_before_quarantine {
        let order = vec![candidate("a", 100.0, 1, 100)];
        host.rank_stations(request(), order, Timestamp(0)).await;
    }
    assert_eq!(host.policy(), None, "taken out of service");
    let ranked = host
        .rank_stations(request(), vec![candidate("a", 100.0, 1, 100)], Timestamp(0))
        .await;
    assert_eq!(ranked.decider, Decider::BuiltIn(None));
    assert_eq!(
        host.stats
            .failures
            .load(std::sync::atomic::Ordering::Relaxed),
        u64::from(limits.failures_before_quarantine)
    );
}
