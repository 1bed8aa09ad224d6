//! The plugin host with the real components built from plugins/: the three defaults, signature
//! and digest checks, wrong worlds, and the hostile plugins.

use lockergrid_model::Candidate;
use lockergrid_model::{
    AccessAttempt, AccessDecision, AccessMethod, AccessRole, NotificationEvent, NotifyChannel,
    Reading, Recipient, Severity, Step, Telemetry,
};
use lockergrid_model::{
    Binding, BindingLimits, PluginSigner, PolicyError, PolicyFile, Scope, TrustedKey, World,
    sha256_hex,
};
use lockergrid_model::{SizeCount, StationView};
use lockergrid_model::{StationKind, StationRecord};
use lockergrid_plugin_artifacts as artifacts;
use lockergrid_plugin_host::{
    Decider, HostOptions, PluginError, PluginHost, PluginInfo, RankRequest, UpdateWhen,
};
use lockergrid_protocol::{CompartmentId, GeoPoint, ParcelSpec, Size, StationId, Tier, Timestamp};
use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

/// A signing key, the host that trusts it, and a way to sign components for it.
struct Signed {
    signer: PluginSigner,
    host: Arc<PluginHost>,
}

impl Signed {
    fn new() -> Signed {
        Signed::with(HostOptions::default())
    }

    fn with(options: HostOptions) -> Signed {
        let signer = PluginSigner::from_secret(rand_secret());
        let policy = PolicyFile {
            version: 1,
            trusted_keys: vec![TrustedKey {
                name: "test-key".into(),
                public_key: signer.public_hex(),
            }],
            ..PolicyFile::default()
        };
        let trust = policy.trust().expect("a valid key");
        let host = Arc::new(PluginHost::new(options, trust).expect("host starts"));
        Signed { signer, host }
    }

    async fn install(
        &self,
        world: World,
        scope: Scope,
        name: &str,
        bytes: &[u8],
    ) -> Result<Arc<PluginInfo>, PluginError> {
        self.install_binding(binding(world, scope, name, bytes), bytes)
            .await
    }

    async fn install_binding(
        &self,
        mut binding: Binding,
        bytes: &[u8],
    ) -> Result<Arc<PluginInfo>, PluginError> {
        binding.signature = Some(self.signer.sign(&binding).to_string());
        self.host.install(binding, bytes.into()).await
    }
}

fn rand_secret() -> [u8; 32] {
    rand::random()
}

fn binding(world: World, scope: Scope, name: &str, bytes: &[u8]) -> Binding {
    Binding {
        world,
        scope,
        name: name.into(),
        version: "1.0.0".into(),
        file: Some(format!("{name}.wasm")),
        sha256: Some(sha256_hex(bytes)),
        settings: BTreeMap::new(),
        limits: BindingLimits::default(),
        signature: None,
    }
}

fn id(s: &str) -> StationId {
    StationId::new(s).expect("valid")
}

fn station(name: &str, free: u32, total: u32) -> StationView {
    let mut sizes = [SizeCount::default(); 4];
    sizes[0] = SizeCount { free, total };
    StationView::new(
        StationRecord::new(
            id(name),
            name,
            StationKind::Urban,
            GeoPoint {
                lat: 52.37,
                lon: 4.89,
            },
        ),
        sizes,
        [[0; 5]; 4],
    )
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

fn ids<'a>(candidates: &[Candidate<'a>]) -> Vec<&'a str> {
    candidates
        .iter()
        .map(|c| c.station.record.id.as_str())
        .collect()
}

/// A nearly full station 100 m away and a nearly empty one 600 m away.
static TWO_STATIONS: LazyLock<[StationView; 2]> = LazyLock::new(|| {
    [
        station("full-nearby", 1, 100),
        station("empty-farther", 95, 100),
    ]
});

fn two_stations() -> Vec<Candidate<'static>> {
    TWO_STATIONS
        .iter()
        .zip([100.0, 600.0])
        .map(|(station, distance_m)| Candidate {
            station,
            distance_m,
            score: 0.0,
        })
        .collect()
}

#[tokio::test]
async fn the_balanced_policy_puts_a_nearly_empty_station_before_a_full_one_nearby() {
    let s = Signed::new();
    let info = s
        .install(
            World::ReservationPolicy,
            Scope::Default,
            "reservation-balanced",
            artifacts::RESERVATION_BALANCED,
        )
        .await
        .expect("the default plugin loads");
    assert_eq!(info.digest, sha256_hex(artifacts::RESERVATION_BALANCED));
    assert_eq!(info.signed_by, "test-key");
    let placed = s
        .host
        .place(request(), Some(two_stations()), None, Timestamp(0))
        .await;
    assert_eq!(placed.decider, Decider::Plugin(info));
    assert_eq!(ids(&placed.candidates), ["empty-farther", "full-nearby"]);
    assert_eq!(
        placed.hold_minutes,
        Some((48 + 24) * 60),
        "expected delivery 48 h plus the standard tier's margin"
    );
}

#[tokio::test]
async fn without_a_plugin_the_built_in_order_and_hold_stand() {
    let s = Signed::new();
    let placed = s
        .host
        .place(request(), Some(two_stations()), None, Timestamp(0))
        .await;
    assert_eq!(placed.decider, Decider::BuiltIn(None));
    assert_eq!(ids(&placed.candidates), ["full-nearby", "empty-farther"]);
    assert_eq!(placed.hold_minutes, None);
}

#[tokio::test]
async fn a_station_binding_beats_the_region_and_the_default() {
    let s = Signed::with(HostOptions {
        region: Some("nl-ams".into()),
        ..HostOptions::default()
    });
    s.install(
        World::ReservationPolicy,
        Scope::Default,
        "unknown-station-policy",
        artifacts::MISBEHAVE_UNKNOWN_STATION,
    )
    .await
    .expect("loads");
    let station = s
        .install(
            World::ReservationPolicy,
            Scope::Station(id("AMS-001")),
            "reservation-balanced",
            artifacts::RESERVATION_BALANCED,
        )
        .await
        .expect("loads");
    let at_station = s
        .host
        .place(
            request(),
            Some(two_stations()),
            Some(&id("AMS-001")),
            Timestamp(0),
        )
        .await;
    assert_eq!(at_station.decider, Decider::Plugin(station));
    let elsewhere = s
        .host
        .place(
            request(),
            Some(two_stations()),
            Some(&id("AMS-002")),
            Timestamp(0),
        )
        .await;
    match &elsewhere.decider {
        Decider::BuiltIn(Some(reason)) => assert!(
            reason.contains("invalid plugin answer"),
            "the default plugin answered, badly: {reason}"
        ),
        other => panic!("the default plugin should have been asked: {other:?}"),
    }
    let region = s
        .install(
            World::ReservationPolicy,
            Scope::Region("nl-ams".into()),
            "reservation-balanced",
            artifacts::RESERVATION_BALANCED,
        )
        .await
        .expect("loads");
    let in_region = s
        .host
        .place(
            request(),
            Some(two_stations()),
            Some(&id("AMS-002")),
            Timestamp(0),
        )
        .await;
    assert_eq!(in_region.decider, Decider::Plugin(region));
}

#[tokio::test]
async fn bytes_that_are_not_a_component_are_refused_and_the_old_policy_keeps_serving() {
    let s = Signed::new();
    s.install(
        World::ReservationPolicy,
        Scope::Default,
        "reservation-balanced",
        artifacts::RESERVATION_BALANCED,
    )
    .await
    .expect("loads");
    let empty_core_module = b"\0asm\x01\0\0\0";
    for bytes in [&b"not wasm at all"[..], &empty_core_module[..]] {
        let refused = s
            .install(World::ReservationPolicy, Scope::Default, "bogus", bytes)
            .await;
        assert!(
            matches!(refused, Err(PluginError::Refused { .. })),
            "{refused:?}"
        );
    }
    assert_eq!(
        s.host
            .serving(World::ReservationPolicy, &Scope::Default)
            .map(|p| p.name.clone())
            .as_deref(),
        Some("reservation-balanced")
    );
}

#[tokio::test]
async fn a_component_for_another_world_is_refused() {
    let s = Signed::new();
    for (world, bytes) in [
        (World::SiteRules, artifacts::RESERVATION_BALANCED),
        (World::ReservationPolicy, artifacts::NOTIFY_MULTICHANNEL),
        (World::NotificationRouter, artifacts::SITE_RULES_STANDARD),
    ] {
        let refused = s.install(world, Scope::Default, "misplaced", bytes).await;
        match refused {
            Err(PluginError::Refused { reason, .. }) => {
                assert!(
                    reason.contains(&format!("not a {world} component")),
                    "{reason}"
                )
            }
            other => panic!("expected a refusal for {world}, got {other:?}"),
        }
        assert_eq!(s.host.serving(world, &Scope::Default), None);
    }
}

#[tokio::test]
async fn unsigned_wrongly_signed_and_mispinned_components_are_refused() {
    let s = Signed::new();
    let bytes = artifacts::RESERVATION_BALANCED;
    let good = binding(World::ReservationPolicy, Scope::Default, "p", bytes);
    let signed = |b: &Binding, signer: &PluginSigner| Binding {
        signature: Some(signer.sign(b).to_string()),
        ..b.clone()
    };
    let valid = signed(&good, &s.signer);
    let untrusted = signed(&good, &PluginSigner::from_secret([7; 32]));
    let over_another = Binding {
        signature: signed(
            &binding(
                World::SiteRules,
                Scope::Default,
                "p",
                artifacts::SITE_RULES_STANDARD,
            ),
            &s.signer,
        )
        .signature,
        ..good.clone()
    };
    let malformed = Binding {
        signature: Some("ed25519 nonsense".into()),
        ..good.clone()
    };
    let mispinned = signed(
        &Binding {
            sha256: Some(sha256_hex(b"something else")),
            ..good.clone()
        },
        &s.signer,
    );
    let unpinned = signed(
        &Binding {
            sha256: None,
            ..good.clone()
        },
        &s.signer,
    );
    type Case = (Binding, fn(&PolicyError) -> bool);
    let cases: [Case; 6] = [
        (good.clone(), |e| matches!(e, PolicyError::Unsigned)),
        (untrusted, |e| matches!(e, PolicyError::UntrustedKey(_))),
        (over_another, |e| matches!(e, PolicyError::BadSignature)),
        (malformed, |e| {
            matches!(e, PolicyError::MalformedSignature(_))
        }),
        (mispinned, |e| {
            matches!(e, PolicyError::DigestMismatch { .. })
        }),
        (unpinned, |e| matches!(e, PolicyError::Invalid(_))),
    ];
    for (binding, expected) in cases {
        match s.host.install(binding, bytes.into()).await {
            Err(PluginError::Untrusted { source, .. }) => {
                assert!(expected(&source), "unexpected reason: {source}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(
        s.host.serving(World::ReservationPolicy, &Scope::Default),
        None
    );
    s.host
        .install(valid, bytes.into())
        .await
        .expect("the same bytes, properly signed and pinned, load");
}

#[tokio::test]
async fn a_signed_binding_moved_loosened_or_resettled_is_refused() {
    let s = Signed::new();
    let bytes = artifacts::SITE_RULES_STANDARD;
    let mut signed = binding(
        World::SiteRules,
        Scope::Station(id("AMS-001")),
        "rules",
        bytes,
    );
    signed
        .settings
        .insert("opens".into(), toml::Value::String("07:00".into()));
    signed.signature = Some(s.signer.sign(&signed).to_string());
    type Change = (&'static str, fn(&mut Binding));
    let changes: [Change; 6] = [
        ("another scope", |b| b.scope = Scope::Default),
        ("another station", |b| {
            b.scope = Scope::Station(id("AMS-002"))
        }),
        ("looser limits", |b| b.limits.deadline_ms = 1_000),
        ("other settings", |b| {
            b.settings
                .insert("opens".into(), toml::Value::String("00:00".into()));
        }),
        ("a setting dropped", |b| b.settings.clear()),
        ("another version", |b| b.version = "9.9.9".into()),
    ];
    for (what, change) in changes {
        let mut altered = signed.clone();
        change(&mut altered);
        let refused = s.host.install(altered, bytes.into()).await;
        assert!(
            matches!(
                &refused,
                Err(PluginError::Untrusted {
                    source: PolicyError::BadSignature,
                    ..
                })
            ),
            "{what}: {refused:?}"
        );
    }
    let mut relocated = signed.clone();
    relocated.file = Some("elsewhere/rules.wasm".into());
    s.host
        .install(relocated, bytes.into())
        .await
        .expect("where the bytes are kept is not signed");
}

/// Loads a hostile policy and checks that a call falls back to the built-in order with a reason.
async fn contained(bytes: &[u8]) -> String {
    let s = Signed::new();
    s.install(World::ReservationPolicy, Scope::Default, "hostile", bytes)
        .await
        .expect("a hostile plugin that behaves through the fixtures loads");
    let started = Instant::now();
    let placed = s
        .host
        .place(request(), Some(two_stations()), None, Timestamp(0))
        .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "contained promptly, not after {:?}",
        started.elapsed()
    );
    assert_eq!(
        ids(&placed.candidates),
        ["full-nearby", "empty-farther"],
        "the built-in order answers"
    );
    assert_eq!(placed.hold_minutes, None, "the built-in hold answers");
    match placed.decider {
        Decider::BuiltIn(Some(reason)) => reason,
        other => panic!("expected a fallback, got {other:?}"),
    }
}

#[tokio::test]
async fn an_infinite_loop_is_stopped_by_its_deadline() {
    let reason = contained(artifacts::MISBEHAVE_LOOP).await;
    assert!(
        reason.contains("deadline") || reason.contains("timed out"),
        "{reason}"
    );
}

#[tokio::test]
async fn unbounded_recursion_exhausts_the_wasm_stack_not_the_host() {
    let reason = contained(artifacts::MISBEHAVE_RECURSION).await;
    // Rust keeps its stack in linear memory: running off it is a trap, whichever one.
    assert!(reason.contains("plugin trapped"), "{reason}");
}

#[tokio::test]
async fn a_trap_falls_back_to_the_built_in_ranking() {
    let reason = contained(artifacts::MISBEHAVE_TRAP).await;
    assert!(reason.contains("plugin trapped"), "{reason}");
}

#[tokio::test]
async fn a_ranking_that_names_unknown_stations_is_refused() {
    let reason = contained(artifacts::MISBEHAVE_UNKNOWN_STATION).await;
    assert!(reason.contains("invalid plugin answer"), "{reason}");
}

#[tokio::test]
async fn a_ten_mebibyte_answer_is_refused() {
    let reason = contained(artifacts::MISBEHAVE_HUGE_ANSWER).await;
    assert!(
        reason.contains("invalid plugin answer") || reason.contains("growing memory"),
        "{reason}"
    );
}

#[tokio::test]
async fn growing_memory_towards_4_gib_hits_the_cap() {
    let reason = contained(artifacts::MISBEHAVE_MEMORY).await;
    assert!(reason.contains("growing memory"), "{reason}");
}

#[tokio::test]
async fn a_plugin_that_misbehaves_on_the_fixtures_is_never_swapped_in() {
    let s = Signed::new();
    s.install(
        World::ReservationPolicy,
        Scope::Default,
        "reservation-balanced",
        artifacts::RESERVATION_BALANCED,
    )
    .await
    .expect("loads");
    for bytes in [
        artifacts::MISBEHAVE_LOOP,
        artifacts::MISBEHAVE_TRAP,
        artifacts::MISBEHAVE_UNKNOWN_STATION,
    ] {
        let mut b = binding(
            World::ReservationPolicy,
            Scope::Default,
            "honest-attack",
            bytes,
        );
        b.settings
            .insert("evade_fixtures".into(), toml::Value::Boolean(false));
        let refused = s.install_binding(b, bytes).await;
        match refused {
            Err(PluginError::Refused { reason, .. }) => {
                assert!(reason.contains("failed its fixtures"), "{reason}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(
        s.host
            .serving(World::ReservationPolicy, &Scope::Default)
            .map(|p| p.name.clone())
            .as_deref(),
        Some("reservation-balanced")
    );
}

/// A host whose default reservation policy loops until its deadline.
async fn looping() -> Signed {
    let s = Signed::new();
    s.install(
        World::ReservationPolicy,
        Scope::Default,
        "hostile",
        artifacts::MISBEHAVE_LOOP,
    )
    .await
    .expect("loads");
    s
}

#[tokio::test]
async fn other_calls_keep_flowing_while_a_plugin_loops() {
    let s = looping().await;
    s.install(
        World::SiteRules,
        Scope::Default,
        "site-rules-standard",
        artifacts::SITE_RULES_STANDARD,
    )
    .await
    .expect("loads");
    let attacks: Vec<_> = (0..8)
        .map(|_| {
            let host = s.host.clone();
            tokio::spawn(async move {
                host.place(request(), Some(two_stations()), None, Timestamp(0))
                    .await
            })
        })
        .collect();
    for _ in 0..20 {
        let checked = s
            .host
            .check_access(&attempt(AccessRole::Customer, 600))
            .await;
        assert!(matches!(checked.decider, Decider::Plugin(_)));
        assert_eq!(checked.answer, AccessDecision::Allow);
    }
    for attack in attacks {
        let placed = attack.await.expect("joins");
        assert!(matches!(placed.decider, Decider::BuiltIn(Some(_))));
    }
}

/// A call runs on its caller's runtime thread and yields at every epoch tick: on a runtime with
/// one thread, a plugin that loops until its deadline leaves that thread to other tasks in
/// between, instead of holding it for the whole deadline.
#[tokio::test(flavor = "current_thread")]
async fn a_looping_plugin_leaves_its_runtime_thread_to_other_tasks() {
    let s = looping().await;
    let host = s.host.clone();
    let attack = tokio::spawn(async move {
        host.place(request(), Some(two_stations()), None, Timestamp(0))
            .await
    });
    let mut turns = 0u32;
    while !attack.is_finished() {
        tokio::task::yield_now().await;
        turns += 1;
    }
    let placed = attack.await.expect("joins");
    match placed.decider {
        Decider::BuiltIn(Some(reason)) => assert!(reason.contains("deadline"), "{reason}"),
        other => panic!("expected a fallback, got {other:?}"),
    }
    // The default deadline is 50 ticks of 1 ms, and the call gives the thread back at each.
    assert!(
        turns >= 25,
        "other tasks ran only {turns} times while the plugin looped"
    );
}

#[tokio::test]
async fn repeated_failures_take_the_plugin_out_of_service_until_restored() {
    let options = HostOptions::default();
    let s = Signed::with(options.clone());
    s.install(
        World::ReservationPolicy,
        Scope::Default,
        "hostile",
        artifacts::MISBEHAVE_TRAP,
    )
    .await
    .expect("loads");
    for _ in 0..options.failures_before_quarantine {
        s.host
            .place(request(), Some(two_stations()), None, Timestamp(0))
            .await;
    }
    assert_eq!(
        s.host.serving(World::ReservationPolicy, &Scope::Default),
        None,
        "taken out of service"
    );
    let placed = s
        .host
        .place(request(), Some(two_stations()), None, Timestamp(0))
        .await;
    assert_eq!(placed.decider, Decider::BuiltIn(None));
    let report = s.host.report();
    assert_eq!(report.len(), 1);
    assert_eq!(
        report[0].stats.failures,
        u64::from(options.failures_before_quarantine)
    );
    assert!(report[0].quarantined.is_some());
    let restored = s
        .host
        .restore(World::ReservationPolicy, &Scope::Default)
        .expect("an operator restores it");
    assert_eq!(restored.name, "hostile");
    assert!(s.host.report()[0].quarantined.is_none());
}

#[tokio::test]
async fn site_rules_that_fail_or_are_out_of_service_keep_the_door_shut() {
    let options = HostOptions::default();
    let s = Signed::with(options.clone());
    let station = Scope::Station(id("AMS-001"));
    s.install(
        World::SiteRules,
        station.clone(),
        "broken-rules",
        artifacts::MISBEHAVE_SITE_TRAP,
    )
    .await
    .expect("loads: it answers the fixtures");
    // Standard rules at the default scope do not stand in for the station's broken ones.
    s.install(
        World::SiteRules,
        Scope::Default,
        "site-rules-standard",
        artifacts::SITE_RULES_STANDARD,
    )
    .await
    .expect("loads");
    for _ in 0..options.failures_before_quarantine {
        let checked = s
            .host
            .check_access(&attempt(AccessRole::Customer, 600))
            .await;
        assert!(
            matches!(&checked.answer, AccessDecision::Unavailable(why) if why.contains("broken-rules") && why.contains("failed")),
            "{checked:?}"
        );
        assert!(matches!(checked.decider, Decider::BuiltIn(Some(_))));
    }
    assert_eq!(s.host.serving(World::SiteRules, &station), None);
    let checked = s
        .host
        .check_access(&attempt(AccessRole::Customer, 600))
        .await;
    assert!(
        matches!(&checked.answer, AccessDecision::Unavailable(why) if why.contains("out of service")),
        "{checked:?}"
    );
    // Another station, under the default rules alone, still opens.
    let mut elsewhere = attempt(AccessRole::Customer, 600);
    elsewhere.station = id("AMS-002");
    let checked = s.host.check_access(&elsewhere).await;
    assert_eq!(checked.answer, AccessDecision::Allow);
    assert!(matches!(checked.decider, Decider::Plugin(_)));
}

fn attempt(role: AccessRole, local_minute: u16) -> AccessAttempt {
    AccessAttempt {
        station: id("AMS-001"),
        compartment: CompartmentId::new("S001").expect("valid"),
        role,
        method: AccessMethod::PickupCode,
        at: Timestamp(0),
        local_minute,
        climate_controlled: false,
    }
}

fn reading(value: Telemetry, climate_controlled: bool) -> Reading {
    Reading {
        station: id("AMS-001"),
        compartment: Some(CompartmentId::new("S001").expect("valid")),
        climate_controlled,
        at: Timestamp(0),
        value,
    }
}

#[tokio::test]
async fn the_standard_site_rules_keep_opening_hours_and_temperature_limits() {
    let s = Signed::new();
    let mut b = binding(
        World::SiteRules,
        Scope::Station(id("AMS-001")),
        "site-rules-standard",
        artifacts::SITE_RULES_STANDARD,
    );
    b.settings.insert("opens".into(), "07:00".into());
    b.settings.insert("closes".into(), "22:00".into());
    s.install_binding(b, artifacts::SITE_RULES_STANDARD)
        .await
        .expect("loads");
    let at = |role, minute| {
        let host = s.host.clone();
        async move { host.check_access(&attempt(role, minute)).await.answer }
    };
    assert_eq!(
        at(AccessRole::Customer, 8 * 60).await,
        AccessDecision::Allow
    );
    match at(AccessRole::Customer, 23 * 60).await {
        AccessDecision::Deny(reason) => assert!(reason.contains("opens at 07:00"), "{reason}"),
        other => panic!("expected a denial at 23:00, got {other:?}"),
    }
    assert_eq!(
        at(AccessRole::Operator, 23 * 60).await,
        AccessDecision::Allow,
        "operators come at any hour"
    );

    let warm = s
        .host
        .assess(&reading(Telemetry::TemperatureC(11.0), true))
        .await;
    assert_eq!(warm.answer.len(), 1);
    assert_eq!(warm.answer[0].code, "temperature-out-of-range");
    assert_eq!(warm.answer[0].severity, Severity::Warning);
    let ambient = s
        .host
        .assess(&reading(Telemetry::TemperatureC(11.0), false))
        .await;
    assert!(
        ambient.answer.is_empty(),
        "ambient compartments have no limits"
    );
    let tamper = s
        .host
        .assess(&reading(Telemetry::Tamper(true), false))
        .await;
    assert!(tamper.answer[0].lock_down);
    assert_eq!(tamper.answer[0].severity, Severity::Critical);
}

#[tokio::test]
async fn the_multichannel_router_tries_push_first_and_respects_quiet_hours() {
    let s = Signed::new();
    s.install(
        World::NotificationRouter,
        Scope::Default,
        "notify-multichannel",
        artifacts::NOTIFY_MULTICHANNEL,
    )
    .await
    .expect("loads");
    let mut recipient = Recipient {
        id: "c-1".into(),
        channels: vec![
            NotifyChannel::Email,
            NotifyChannel::Sms,
            NotifyChannel::Push,
        ],
        quiet_hours: Some((22 * 60, 7 * 60)),
        local_minute: 12 * 60,
    };
    let step = |channel, delay_minutes| Step {
        channel,
        delay_minutes,
    };
    let station = id("AMS-001");
    let day = s
        .host
        .route(
            NotificationEvent::ParcelStored,
            &recipient,
            &station,
            Timestamp(0),
        )
        .await;
    assert!(matches!(day.decider, Decider::Plugin(_)));
    assert_eq!(
        day.answer.steps,
        [
            step(NotifyChannel::Push, 0),
            step(NotifyChannel::Sms, 15),
            step(NotifyChannel::Email, 15)
        ]
    );
    recipient.local_minute = 23 * 60;
    let night = s
        .host
        .route(
            NotificationEvent::ParcelStored,
            &recipient,
            &station,
            Timestamp(0),
        )
        .await;
    assert_eq!(
        night.answer.steps,
        [
            step(NotifyChannel::Email, 0),
            step(NotifyChannel::Push, 8 * 60),
            step(NotifyChannel::Sms, 15)
        ],
        "e-mail at once, push when quiet hours end at 07:00"
    );
    let reminders = s.host.reminder_hours(&station, Timestamp(0)).await;
    assert_eq!(reminders.answer, [48, 24]);
}

/// The identity point's encoding (y = 1), and the all-zero encoding (a point of order 4): one
/// signature verifies under each for any message with the lax check.
const WEAK_KEYS: [&str; 2] = [
    "0100000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000000",
];

#[tokio::test]
async fn weak_keys_are_never_trusted_and_a_signature_valid_for_any_message_is_refused() {
    for weak in WEAK_KEYS {
        let policy =
            format!("version = 1\n[[trusted_key]]\nname = \"weak\"\npublic_key = \"{weak}\"\n");
        let refused = PolicyFile::parse(&policy).map(drop);
        assert!(
            matches!(&refused, Err(PolicyError::Invalid(why)) if why.contains("weak")),
            "{weak}: {refused:?}"
        );
        // A signature (R = identity, s = 0) by that key over a hostile component.
        let forged = format!("ed25519 {weak} 01{}", "00".repeat(63));
        let s = Signed::new();
        let bytes = artifacts::MISBEHAVE_TRAP;
        let mut binding = binding(World::ReservationPolicy, Scope::Default, "forged", bytes);
        binding.signature = Some(forged);
        let installed = s.host.install(binding, bytes.into()).await;
        assert!(
            matches!(
                &installed,
                Err(PluginError::Untrusted {
                    source: PolicyError::MalformedSignature(_),
                    ..
                })
            ),
            "{weak}: {installed:?}"
        );
    }
}

#[tokio::test]
async fn limits_beyond_their_maxima_are_refused_in_a_policy_and_at_install() {
    let policy = "version = 1\n[[plugin]]\nworld = \"reservation-policy\"\nscope = \"default\"\n\
                  name = \"p\"\nversion = \"1\"\nfile = \"p.wasm\"\n\
                  [plugin.limits]\ndeadline_ms = 4294967295\ntimeout_ms = 4294967295\n";
    let refused = PolicyFile::parse(policy).map(drop);
    assert!(
        matches!(&refused, Err(PolicyError::Invalid(why)) if why.contains("deadline_ms is 4294967295")),
        "{refused:?}"
    );
    let s = Signed::new();
    let bytes = artifacts::RESERVATION_BALANCED;
    for limits in [
        BindingLimits {
            deadline_ms: u32::MAX,
            ..BindingLimits::default()
        },
        BindingLimits {
            timeout_ms: u32::MAX,
            ..BindingLimits::default()
        },
        BindingLimits {
            memory_mib: 65,
            ..BindingLimits::default()
        },
    ] {
        let mut bound = binding(World::ReservationPolicy, Scope::Default, "p", bytes);
        bound.limits = limits;
        let installed = s.install_binding(bound, bytes).await;
        assert!(
            matches!(&installed, Err(PluginError::Refused { reason, .. }) if reason.contains("must be from 1 to")),
            "{limits:?}: {installed:?}"
        );
    }
}

#[tokio::test]
async fn a_call_its_caller_gives_up_on_counts_as_a_failure() {
    let s = looping().await;
    // The caller's own timeout is shorter than the plugin's: the call is dropped mid-way.
    let given_up = tokio::time::timeout(
        std::time::Duration::from_millis(5),
        s.host
            .place(request(), Some(two_stations()), None, Timestamp(0)),
    )
    .await;
    assert!(given_up.is_err(), "the loop answered within 5 ms");
    let report = s.host.report();
    assert_eq!(report[0].stats.calls, 1);
    assert_eq!(report[0].stats.failures, 1, "{:?}", report[0].stats);
}

#[tokio::test]
async fn the_standard_site_rules_defer_firmware_updates_to_their_quiet_hours() {
    let s = Signed::new();
    let station = id("AMS-001");
    let when = |minute: u16| {
        let (host, station) = (s.host.clone(), station.clone());
        async move { host.may_update(&station, Timestamp(0), minute).await }
    };
    assert_eq!(
        when(600).await.answer,
        UpdateWhen::Now,
        "no rules bound: now"
    );
    s.install(
        World::SiteRules,
        Scope::Station(station.clone()),
        "site-rules-standard",
        artifacts::SITE_RULES_STANDARD,
    )
    .await
    .expect("loads");
    // Default quiet hours 01:00-05:00.
    assert_eq!(when(2 * 60).await.answer, UpdateWhen::Now);
    assert_eq!(
        when(10 * 60).await.answer,
        UpdateWhen::Defer(15 * 60),
        "at 10:00, not before 01:00"
    );
    let mut b = binding(
        World::SiteRules,
        Scope::Station(station.clone()),
        "site-rules-standard",
        artifacts::SITE_RULES_STANDARD,
    );
    b.settings
        .insert("update_hours".into(), "22:30-02:00".into());
    s.install_binding(b, artifacts::SITE_RULES_STANDARD)
        .await
        .expect("loads");
    assert_eq!(
        when(23 * 60).await.answer,
        UpdateWhen::Now,
        "across midnight"
    );
    assert_eq!(when(60).await.answer, UpdateWhen::Now);
    assert_eq!(when(22 * 60).await.answer, UpdateWhen::Defer(30));
}

#[tokio::test]
async fn site_rules_that_fail_defer_a_firmware_update() {
    let s = Signed::new();
    s.install(
        World::SiteRules,
        Scope::Station(id("AMS-001")),
        "broken-rules",
        artifacts::MISBEHAVE_SITE_TRAP,
    )
    .await
    .expect("loads: it answers the fixtures");
    let decided = s.host.may_update(&id("AMS-001"), Timestamp(0), 120).await;
    assert_eq!(decided.answer, UpdateWhen::Defer(60), "{decided:?}");
    assert!(matches!(decided.decider, Decider::BuiltIn(Some(_))));
}
