use super::*;
use lockergrid_protocol::firmware::{FirmwareKey, FirmwareManifest, FirmwareVersion};
use lockergrid_protocol::message::FirmwareOutcome;

fn wave(percent: u8, on_error: OnError) -> Wave {
    Wave {
        percent,
        soak_s: 60,
        advance_percent: 100,
        error_percent: 0,
        min_done: 1,
        on_error,
    }
}

fn stations(n: usize) -> Vec<StationId> {
    (0..n)
        .map(|i| StationId::new(format!("s-{i:03}")).unwrap())
        .collect()
}

fn rollout(waves: Vec<Wave>, max_parallel: u32) -> RolloutRecord {
    let manifest = FirmwareManifest::of(
        b"image",
        FirmwareVersion(0, 2, 0),
        "m".into(),
        FirmwareVersion(0, 1, 0),
        1,
    )
    .sign(&FirmwareKey::from_secret([3; 32]));
    RolloutRecord {
        id: "ro-1".into(),
        revision: 1,
        manifest,
        waves,
        timeout_s: 600,
        max_parallel,
        per_minute: None,
        status: RolloutStatus::Running,
        wave: 0,
        soak_since: None,
        reason: None,
        created_at: Timestamp(0),
        created_by: "op".into(),
        updated_at: Timestamp(0),
    }
}

fn targets(record: &RolloutRecord, stations: &[StationId]) -> Vec<RolloutTarget> {
    assign_waves(&record.waves, stations)
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

/// Applies a plan as the store would.
fn apply(record: &mut RolloutRecord, targets: &mut [RolloutTarget], plan: &Plan) {
    if let Some(r) = &plan.rollout {
        *record = r.clone();
    }
    for changed in &plan.targets {
        let t = targets
            .iter_mut()
            .find(|t| t.station == changed.station)
            .unwrap();
        *t = changed.clone();
    }
}

fn report(
    targets: &mut [RolloutTarget],
    station: &StationId,
    outcome: FirmwareOutcome,
    at: Timestamp,
) {
    let t = targets.iter_mut().find(|t| t.station == *station).unwrap();
    if let Some(next) = reported(t.state, outcome) {
        t.state = next;
        t.since = at;
    }
}

#[test]
fn waves_take_their_cumulative_share_and_the_last_takes_the_rest() {
    let all = stations(50);
    let waves = vec![
        wave(1, OnError::Abort),
        wave(20, OnError::Pause),
        wave(100, OnError::Pause),
    ];
    let assigned = assign_waves(&waves, &all);
    let sizes: Vec<usize> = (0..3)
        .map(|w| assigned.iter().filter(|(_, i)| *i == w).count())
        .collect();
    assert_eq!(sizes, [1, 9, 40]);
    assert_eq!(assign_waves(&waves, &all), assigned, "fixed by the ids");
    assert!(check_waves(&waves).is_ok());
    assert!(
        check_waves(&[wave(50, OnError::Pause)]).is_err(),
        "must reach 100 %"
    );
    assert!(check_waves(&[wave(50, OnError::Pause), wave(10, OnError::Pause)]).is_err());
}

#[test]
fn a_rollout_goes_wave_by_wave_after_each_soak_within_its_cap() {
    let all = stations(20);
    let mut record = rollout(
        vec![
            wave(10, OnError::Abort),
            wave(50, OnError::Pause),
            wave(100, OnError::Pause),
        ],
        3,
    );
    let mut targets = targets(&record, &all);
    let mut now = Timestamp(1_000);
    let mut rounds = 0;
    while record.status == RolloutStatus::Running {
        rounds += 1;
        assert!(rounds < 200, "no progress: {record:?}");
        let plan = plan(&record, &targets, now, &|_| true);
        for station in &plan.offer {
            let t = plan.targets.iter().find(|t| t.station == *station).unwrap();
            assert!(t.wave <= record.wave.max(plan.rollout.as_ref().map_or(0, |r| r.wave)));
        }
        apply(&mut record, &mut targets, &plan);
        let flying = targets.iter().filter(|t| t.state.in_flight()).count();
        assert!(flying <= 3, "cap of 3 exceeded: {flying}");
        // Every locker offered confirms before the next round.
        for station in plan.offer {
            report(&mut targets, &station, FirmwareOutcome::Installed, now);
            report(&mut targets, &station, FirmwareOutcome::Confirmed, now);
        }
        now = Timestamp(now.millis() + 20_000);
    }
    assert_eq!(record.status, RolloutStatus::Completed);
    assert!(targets.iter().all(|t| t.state == TargetState::Confirmed));
}

#[test]
fn a_canary_that_fails_aborts_and_no_other_locker_is_offered() {
    let all = stations(50);
    let mut record = rollout(
        vec![
            wave(1, OnError::Abort),
            wave(20, OnError::Pause),
            wave(100, OnError::Pause),
        ],
        10,
    );
    let mut targets = targets(&record, &all);
    let now = Timestamp(1_000);
    let first = plan(&record, &targets, now, &|_| true);
    assert_eq!(first.offer.len(), 1, "the canary only");
    apply(&mut record, &mut targets, &first);
    let canary = first.offer[0].clone();
    report(&mut targets, &canary, FirmwareOutcome::Installed, now);
    report(&mut targets, &canary, FirmwareOutcome::RolledBack, now);
    let next = plan(&record, &targets, Timestamp(2_000), &|_| true);
    assert!(next.offer.is_empty());
    apply(&mut record, &mut targets, &next);
    assert_eq!(record.status, RolloutStatus::Aborted);
    assert!(record.reason.as_deref().unwrap().contains("1 of 1"));
    assert!(
        targets
            .iter()
            .filter(|t| t.station != canary)
            .all(|t| t.state == TargetState::Cancelled)
    );
    // Aborted, it does nothing more.
    assert!(plan(&record, &targets, Timestamp(90_000), &|_| true).is_empty());
}

#[test]
fn a_locker_that_does_not_answer_in_time_fails_and_an_offline_one_waits() {
    let all = stations(4);
    let mut record = rollout(vec![wave(100, OnError::Pause)], 10);
    record.waves[0].error_percent = 50;
    record.waves[0].min_done = 2;
    let mut targets = targets(&record, &all);
    let offline = all[0].clone();
    let ready = |s: &StationId| *s != offline;
    let p = plan(&record, &targets, Timestamp(0), &ready);
    assert_eq!(p.offer.len(), 3);
    apply(&mut record, &mut targets, &p);
    // Two confirm, one never answers.
    report(
        &mut targets,
        &all[1],
        FirmwareOutcome::Confirmed,
        Timestamp(10),
    );
    report(
        &mut targets,
        &all[2],
        FirmwareOutcome::Confirmed,
        Timestamp(10),
    );
    let p = plan(&record, &targets, Timestamp(601_000), &ready);
    apply(&mut record, &mut targets, &p);
    let late = targets.iter().find(|t| t.station == all[3]).unwrap();
    assert_eq!(
        (late.state, late.reason.as_deref()),
        (TargetState::Failed, Some("timeout"))
    );
    // One of three done failed: 33 % is under the 50 % threshold; the offline locker waits.
    assert_eq!(record.status, RolloutStatus::Running);
    assert_eq!(
        targets.iter().find(|t| t.station == offline).unwrap().state,
        TargetState::Pending
    );
    // It comes back and is served.
    let p = plan(&record, &targets, Timestamp(602_000), &|_| true);
    assert_eq!(p.offer, vec![offline]);
}

#[test]
fn reports_move_a_locker_forward_only() {
    use TargetState::*;
    assert_eq!(
        reported(Offered, FirmwareOutcome::Installed),
        Some(Installed)
    );
    assert_eq!(
        reported(Installed, FirmwareOutcome::Confirmed),
        Some(Confirmed)
    );
    assert_eq!(
        reported(Installed, FirmwareOutcome::RolledBack),
        Some(Failed)
    );
    assert_eq!(reported(Confirmed, FirmwareOutcome::Installed), None);
    assert_eq!(reported(Failed, FirmwareOutcome::Confirmed), None);
    assert_eq!(
        reported(Cancelled, FirmwareOutcome::Installed),
        Some(Installed)
    );
}

#[test]
fn no_more_lockers_start_in_a_minute_than_the_rollout_allows() {
    let all = stations(20);
    let mut record = rollout(vec![wave(100, OnError::Pause)], 20);
    record.per_minute = Some(4);
    let mut targets = targets(&record, &all);
    let mut offered = Vec::new();
    for second in 0..150u64 {
        let now = Timestamp(second * 1_000);
        let p = plan(&record, &targets, now, &|_| true);
        apply(&mut record, &mut targets, &p);
        for station in p.offer {
            let t = targets.iter().find(|t| t.station == station).unwrap();
            if t.first_offered_at == Some(now) {
                offered.push(second);
            }
        }
    }
    // Four at once, then none until the minute is over, then four more.
    assert_eq!(offered, [0, 0, 0, 0, 60, 60, 60, 60, 120, 120, 120, 120]);
}
