//! Rollouts in the store: a plan made on an older revision is refused (a locker's report or an
//! operator came in between), reports move only the lockers of rollouts of their image, and
//! pause, resume and abort each hold only where they make sense.

use crate::support::{open, seed, station_id};
use lockergrid_model::{
    Actor, OnError, Plan, RolloutRecord, RolloutStatus, RolloutTarget, TargetState, Wave,
    assign_waves, plan,
};
use lockergrid_protocol::Timestamp;
use lockergrid_protocol::firmware::{FirmwareKey, FirmwareManifest, FirmwareVersion};
use lockergrid_protocol::message::FirmwareOutcome;
use lockergrid_store::{ChangeError, RolloutOrder, RolloutReport};

fn ops() -> Actor {
    Actor {
        subject: "ops".into(),
        role: "operator".into(),
    }
}

fn rollout(id: &str, image: &[u8]) -> RolloutRecord {
    let manifest = FirmwareManifest::of(
        image,
        FirmwareVersion(0, 2, 0),
        "lockergrid-sim-1".into(),
        FirmwareVersion(0, 1, 0),
        1,
    )
    .sign(&FirmwareKey::from_secret([9; 32]));
    RolloutRecord {
        id: id.into(),
        revision: 0,
        manifest,
        waves: vec![Wave {
            percent: 100,
            soak_s: 0,
            advance_percent: 100,
            error_percent: 50,
            min_done: 2,
            on_error: OnError::Pause,
        }],
        timeout_s: 600,
        max_parallel: 10,
        per_minute: None,
        status: RolloutStatus::Running,
        wave: 0,
        soak_since: None,
        reason: None,
        created_at: Timestamp(0),
        created_by: "ops".into(),
        updated_at: Timestamp(0),
    }
}

fn targets(record: &RolloutRecord, stations: &[&str]) -> Vec<RolloutTarget> {
    let ids: Vec<_> = stations.iter().map(|s| station_id(s)).collect();
    assign_waves(&record.waves, &ids)
        .into_iter()
        .map(|(station, wave)| RolloutTarget {
            rollout: record.id.clone(),
            station,
            wave,
            state: TargetState::Pending,
            since: Timestamp(0),
            offered_at: None,
            first_offered_at: None,
            reason: None,
        })
        .collect()
}

#[tokio::test]
async fn a_stale_plan_is_refused_and_reports_move_only_their_image() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0]), seed("st-b", [1, 0, 0, 0])]).await;
    let a = rollout("ro-a", b"image a");
    let b = rollout("ro-b", b"image b");
    for r in [&a, &b] {
        t.store
            .create_rollout(r.clone(), targets(r, &["st-a", "st-b"]), ops())
            .await
            .unwrap();
    }
    let duplicate = t.store.create_rollout(a.clone(), vec![], ops()).await;
    assert!(matches!(duplicate, Err(ChangeError::Conflict { .. })));
    let stored = t.store.rollout("ro-a").unwrap().unwrap();
    let planned = plan(
        &stored,
        &t.store.rollout_targets("ro-a").unwrap(),
        Timestamp(5),
        &|_| true,
    );
    assert_eq!(planned.offer.len(), 2);
    // st-a's locker reports between the plan and its write: the plan is refused.
    let moved = t
        .store
        .rollout_report(
            RolloutReport {
                station: station_id("st-a"),
                sha256: a.manifest.manifest.sha256.clone(),
                outcome: FirmwareOutcome::Refused,
                reason: Some("wrong-model".into()),
            },
            ops(),
        )
        .await
        .unwrap();
    assert_eq!(moved.len(), 1, "only the rollout of that image");
    let stale = t
        .store
        .apply_rollout_plan("ro-a".into(), stored.revision, planned, ops())
        .await;
    assert!(
        matches!(stale, Err(ChangeError::Conflict { .. })),
        "{stale:?}"
    );
    let targets_a = t.store.rollout_targets("ro-a").unwrap();
    let failed = targets_a
        .iter()
        .find(|t| t.station.as_str() == "st-a")
        .unwrap();
    assert_eq!(
        (failed.state, failed.reason.as_deref()),
        (TargetState::Failed, Some("wrong-model"))
    );
    assert!(
        t.store
            .rollout_targets("ro-b")
            .unwrap()
            .iter()
            .all(|t| t.state == TargetState::Pending)
    );
    // A fresh plan goes through.
    let stored = t.store.rollout("ro-a").unwrap().unwrap();
    let fresh = plan(&stored, &targets_a, Timestamp(6), &|_| true);
    assert_eq!(fresh.offer.len(), 1);
    let applied = t
        .store
        .apply_rollout_plan("ro-a".into(), stored.revision, fresh, ops())
        .await
        .unwrap();
    assert_eq!(applied.revision, stored.revision + 1);
    // An empty plan still needs the current revision.
    let empty = t
        .store
        .apply_rollout_plan("ro-a".into(), stored.revision, Plan::default(), ops())
        .await;
    assert!(empty.is_err());
}

#[tokio::test]
async fn pause_resume_and_abort_hold_only_where_they_make_sense() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let r = rollout("ro-1", b"image");
    t.store
        .create_rollout(r.clone(), targets(&r, &["st-a"]), ops())
        .await
        .unwrap();
    let resume = t
        .store
        .order_rollout("ro-1".into(), RolloutOrder::Resume, ops())
        .await;
    assert!(
        matches!(resume, Err(ChangeError::Conflict { .. })),
        "not paused"
    );
    let paused = t
        .store
        .order_rollout(
            "ro-1".into(),
            RolloutOrder::Pause("night shift".into()),
            ops(),
        )
        .await
        .unwrap();
    assert_eq!(
        (paused.status, paused.reason.as_deref()),
        (RolloutStatus::Paused, Some("night shift"))
    );
    let resumed = t
        .store
        .order_rollout("ro-1".into(), RolloutOrder::Resume, ops())
        .await
        .unwrap();
    assert_eq!(resumed.status, RolloutStatus::Running);
    let aborted = t
        .store
        .order_rollout(
            "ro-1".into(),
            RolloutOrder::Abort("bad build".into()),
            ops(),
        )
        .await
        .unwrap();
    assert_eq!(aborted.status, RolloutStatus::Aborted);
    let again = t
        .store
        .order_rollout("ro-1".into(), RolloutOrder::Abort("again".into()), ops())
        .await;
    assert!(matches!(again, Err(ChangeError::Conflict { .. })));
    let missing = t
        .store
        .order_rollout("nope".into(), RolloutOrder::Resume, ops())
        .await;
    assert!(matches!(missing, Err(ChangeError::NotFound { .. })));
    let log = t.store.access_log(0, 100).unwrap();
    for action in [
        "rollout_created",
        "rollout_paused",
        "rollout_resumed",
        "rollout_aborted",
    ] {
        assert!(
            log.iter().any(|e| e.action == action),
            "{action} not logged"
        );
    }
}
