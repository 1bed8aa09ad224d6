//! No double booking under a race: many tasks reserve and release over a few stations while an
//! observer checks every commit against a model of who holds which compartment.

use crate::support::{open, request, seed};
use lockergrid_model::Clock;
use lockergrid_model::ReservationStatus;
use lockergrid_protocol::{CodeKey, CompartmentId, CompartmentState, ReservationId};
use lockergrid_store::{CommitReport, ReserveError};
use lockergrid_store::{Store, StoreOptions};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::mpsc;

const TASKS: u64 = 64;
const ATTEMPTS: u64 = 1_000_000;
const STATIONS: [&str; 3] = ["race-a", "race-b", "race-c"];

/// Applies one commit to the model; panics on a compartment held twice.
fn check(model: &mut HashMap<CompartmentId, ReservationId>, report: &CommitReport) {
    for change in &report.changes {
        match change.to {
            CompartmentState::Reserved => {
                let holder = change
                    .reservation
                    .clone()
                    .expect("a hold names its reservation");
                if let Some(other) = model.insert(change.compartment.clone(), holder) {
                    panic!(
                        "commit {}: {:?} held twice (already by {other:?})",
                        report.seq, change.compartment
                    );
                }
            }
            CompartmentState::Available => {
                assert!(
                    model.remove(&change.compartment).is_some(),
                    "commit {}: {:?} released but not held",
                    report.seq,
                    change.compartment
                );
            }
            other => panic!("unexpected state {other} in the race"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_tasks_never_double_book_and_every_attempt_is_held_or_refused() {
    let seeded = open(STATIONS.iter().map(|s| seed(s, [12, 10, 6, 2])).collect()).await;
    let path = seeded.dir.path().join("node.redb");
    drop(seeded.store);
    let (observer, mut reports) = mpsc::unbounded_channel();
    let store = Store::open(
        &path,
        StoreOptions {
            clock: Arc::new(seeded.clock.clone()) as Arc<dyn Clock>,
            code_key: CodeKey::from_bytes([1; 32]),
            commit_observer: Some(observer),
            edge: false,
            sealer: None,
            integrators: Default::default(),
        },
    )
    .expect("reopens");
    let checker = tokio::spawn(async move {
        let mut model = HashMap::new();
        let mut commits = 0u64;
        while let Some(report) = reports.recv().await {
            check(&mut model, &report);
            commits += 1;
        }
        (model, commits)
    });

    let next = Arc::new(AtomicU64::new(0));
    let (held, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let (store, next, held, refused) =
            (store.clone(), next.clone(), held.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine: Vec<ReservationId> = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= ATTEMPTS {
                    break;
                }
                let station = STATIONS[((n ^ task) % 3) as usize];
                match store.reserve(request(station, &format!("o-{n}"))).await {
                    Ok(r) => {
                        held.fetch_add(1, Ordering::Relaxed);
                        mine.push(r.reservation.id);
                    }
                    Err(ReserveError::NoCapacity(_)) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(other) => panic!("attempt {n} ended neither held nor refused: {other}"),
                }
                // Release now and then so compartments keep changing hands.
                if mine.len() > 1 && n % 3 == 0 {
                    let id = mine.swap_remove((n as usize / 3) % mine.len());
                    store
                        .release(id, crate::support::checkout())
                        .await
                        .expect("own hold releases");
                }
            }
            mine
        }));
    }
    let mut still_held = Vec::new();
    for t in tasks {
        still_held.extend(t.await.expect("task finished"));
    }
    assert_eq!(
        held.load(Ordering::Relaxed) + refused.load(Ordering::Relaxed),
        ATTEMPTS
    );
    assert!(
        held.load(Ordering::Relaxed) > 1_000,
        "the race held compartments"
    );
    assert!(
        refused.load(Ordering::Relaxed) > 1_000,
        "the race ran into full stations"
    );

    for id in &still_held {
        let r = store.reservation(id).expect("read").expect("exists");
        assert_eq!(r.status, ReservationStatus::Held);
    }
    drop(store);
    let (model, commits) = checker.await.expect("checker finished");
    assert!(commits > 0);
    assert_eq!(
        model.len(),
        still_held.len(),
        "the model agrees with the holders"
    );
}
