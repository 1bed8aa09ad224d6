//! Crash durability with an injected disk that loses unsynced writes: at a random instant during
//! a reservation load, once at least a random number of holds were acknowledged, the disk "loses
//! power" (keeping what was synced and a random subset of the rest), and the store reopened on
//! what remains still has every reservation it acknowledged.

use crate::support::{START, options, request, seed};
use lockergrid_model::ManualClock;
use lockergrid_model::ReservationStatus;
use lockergrid_protocol::{CompartmentState, ReservationId, Size};
use lockergrid_store::Store;
use lockergrid_store::crash::CrashImage;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 30;
const CLIENTS: usize = 16;
const STATIONS: [&str; 4] = ["cr-a", "cr-b", "cr-c", "cr-d"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn reserved(store: &Store) -> u32 {
    let snapshot = store.snapshot();
    snapshot
        .stations
        .iter()
        .map(|s| {
            Size::ALL
                .iter()
                .map(|size| s.in_state(*size, CompartmentState::Reserved))
                .sum::<u32>()
        })
        .sum()
}

async fn round(rng: &mut Rng) {
    let clock = ManualClock::new(START);
    let image = CrashImage::new();
    let store = Store::open_image(&image, options(&clock)).expect("opens");
    store
        .seed(STATIONS.iter().map(|s| seed(s, [200, 0, 0, 0])).collect())
        .await
        .expect("seeded");
    let acked: Arc<Mutex<Vec<ReservationId>>> = Arc::default();
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (store, acked) = (store.clone(), acked.clone());
        clients.spawn(async move {
            for n in 0.. {
                let station = STATIONS[(c + n) % STATIONS.len()];
                if let Ok(r) = store.reserve(request(station, &format!("o-{c}-{n}"))).await {
                    acked.lock().expect("acked").push(r.reservation.id);
                }
            }
        });
    }
    // The power fails at a random point of the load, counted in acknowledged holds, so every
    // round has something acknowledged to lose.
    let at_least = 1 + (rng.next() % 300) as usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while acked.lock().expect("acked").len() < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load never reached {at_least} acknowledged holds"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (acknowledged, disk) = {
        let acked = acked.lock().expect("acked");
        (acked.clone(), image.crash(rng.next()))
    };
    assert!(acknowledged.len() >= at_least);
    clients.shutdown().await;
    drop(store);

    let recovered = Store::open_image(&disk, options(&clock)).expect("the crashed disk opens");
    for id in &acknowledged {
        let r = recovered
            .reservation(id)
            .expect("read")
            .unwrap_or_else(|| panic!("acknowledged reservation {id} lost"));
        assert_eq!(r.status, ReservationStatus::Held);
    }
    let held = reserved(&recovered) as usize;
    assert!(
        held >= acknowledged.len(),
        "{held} held, {} acknowledged",
        acknowledged.len()
    );
    assert!(
        held <= acknowledged.len() + CLIENTS,
        "{held} held but only {} acknowledged and {CLIENTS} in flight",
        acknowledged.len()
    );
    recovered
        .verify_access_log()
        .expect("the access log chain survives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reservations_survive_losing_unsynced_writes() {
    let seed = match std::env::var("LOCKERGRID_SEED") {
        Ok(s) => s.parse().expect("LOCKERGRID_SEED is a number"),
        Err(_) => START.millis() ^ u64::from(std::process::id()) | 1,
    };
    println!("seed {seed} (set LOCKERGRID_SEED to replay)");
    let mut rng = Rng(seed);
    for _ in 0..ROUNDS {
        round(&mut rng).await;
    }
}
