//! The Lockergrid workloads: snapshot queries, store reservations, HTTP reservations.

use crate::latency::{Report, drive};
use lockergrid_gateway::auth::Role;
use lockergrid_model::SystemClock;
use lockergrid_model::{Actor, StationKind, StationRecord, StationStatus};
use lockergrid_model::{RankQuery, rank_stations};
use lockergrid_protocol::{CodeKey, GeoPoint, OrderId, ParcelSpec, Size, StationId, Tier};
use lockergrid_store::{ReserveRequest, StationSeed, Target};
use lockergrid_store::{Store, StoreOptions};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Stations in the benchmark region, each with the most compartments a station may have.
pub const STATIONS: usize = 100;
/// Compartments per station.
pub const COMPARTMENTS: u32 = 1_000;

/// The station ids, shared with the PostgreSQL peer.
pub fn station_name(i: usize) -> String {
    format!("bench-{i:03}")
}

/// Stations stand on a 10 × 10 grid about 1 km apart, like a city's network.
fn location(i: usize) -> GeoPoint {
    GeoPoint {
        lat: 52.30 + 0.009 * (i % 10) as f64,
        lon: 4.80 + 0.0147 * (i / 10) as f64,
    }
}

fn seeds() -> Vec<StationSeed> {
    (0..STATIONS)
        .map(|i| StationSeed {
            record: StationRecord {
                id: StationId::new(station_name(i)).expect("valid id"),
                name: station_name(i),
                kind: StationKind::Urban,
                location: location(i),
                status: StationStatus::Active,
                site_rules_override: None,
                lockdown: None,
                climate_controlled: Default::default(),
            },
            compartments: [COMPARTMENTS, 0, 0, 0],
        })
        .collect()
}

async fn open_store(dir: &std::path::Path) -> anyhow::Result<Store> {
    let store = Store::open(
        &dir.join("bench.redb"),
        StoreOptions {
            clock: Arc::new(SystemClock),
            code_key: CodeKey::from_bytes([9; 32]),
            commit_observer: None,
            edge: false,
            sealer: None,
            integrators: Default::default(),
        },
    )?;
    store.seed(seeds()).await?;
    Ok(store)
}

/// Ranked discovery queries against the published snapshot from `threads` threads.
pub async fn availability(queries: usize, threads: usize) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let store = open_store(dir.path()).await?;
    let query = RankQuery {
        at: GeoPoint {
            lat: 52.345,
            lon: 4.87,
        },
        radius_m: 2_000.0,
        size: Size::Small,
    };
    let per_thread = queries / threads;
    let started = Instant::now();
    let (latencies, found) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut latencies = Vec::with_capacity(per_thread);
                    let mut found = 0;
                    for _ in 0..per_thread {
                        let t = Instant::now();
                        let snapshot = store.snapshot();
                        found += rank_stations(&snapshot, &query).len();
                        latencies.push(t.elapsed());
                    }
                    (latencies, found)
                })
            })
            .collect();
        workers
            .into_iter()
            .fold((Vec::new(), 0), |(mut all, n), w| {
                let (l, f) = w.join().unwrap_or_default();
                all.extend(l);
                (all, n + f)
            })
    });
    let elapsed = started.elapsed();
    anyhow::ensure!(found > 0, "queries found no station");
    Ok(Report::new(
        format!(
            "availability query, in process ({STATIONS} stations, 2 km radius, {threads} threads, {} found per query)",
            found / queries.max(1)
        ),
        latencies,
        elapsed,
    ))
}

fn request(n: usize) -> ReserveRequest {
    request_at(n, station_name(n.wrapping_mul(7_919) % STATIONS))
}

/// Reservation `n` of a small parcel at `station`.
pub fn request_at(n: usize, station: String) -> ReserveRequest {
    ReserveRequest {
        order_id: OrderId::new(format!("o-{n}")).expect("valid id"),
        parcel: ParcelSpec {
            length_mm: 200,
            width_mm: 150,
            height_mm: 100,
            weight_g: 500,
        },
        tier: Tier::Standard,
        target: Target::Station(StationId::new(station).expect("valid id")),
        hold: Duration::from_secs(3_600),
        idempotency: None,
        actor: Actor {
            subject: "bench".into(),
            role: "checkout".into(),
        },
        decided_by: None,
        recipient: None,
    }
}

/// Durable reservations through the store from `clients` concurrent tasks.
pub async fn store_reservations(total: usize, clients: usize) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let store = open_store(dir.path()).await?;
    let name = format!("durable reservation, in process, fsync per batch ({clients} clients)");
    drive(
        name,
        vec![store; clients],
        total,
        |store: Store, n| async move {
            store.reserve(request(n)).await?;
            Ok(store)
        },
    )
    .await
}

/// Reservations over HTTP on loopback against a real gateway, from `clients` connections.
pub async fn http_reservations(total: usize, clients: usize) -> anyhow::Result<Report> {
    let mut deployment = lockergrid_tests::Deployment::new();
    for i in 0..STATIONS {
        deployment = deployment.station(&station_name(i), COMPARTMENTS);
    }
    let running = Arc::new(deployment.start().await?);
    let token: Arc<str> = running.token("bench", Role::Checkout, &[])?.into();
    let name = format!("durable reservation over HTTP, loopback ({clients} connections)");
    let workers = vec![(running.clone(), token); clients];
    let report = drive(name, workers, total, |(running, token), n| async move {
        let station = station_name(n.wrapping_mul(7_919) % STATIONS);
        let (status, body) = running.reserve(&token, &format!("k-{n}"), &station).await?;
        anyhow::ensure!(status == 201, "reservation {n} answered {status}: {body}");
        Ok((running, token))
    })
    .await?;
    stop(running).await?;
    Ok(report)
}

/// Stops a deployment the workers of a run shared once they are done with it, so its gateway's
/// timers and tasks do not run on under the benchmarks that follow.
pub async fn stop(running: Arc<lockergrid_tests::Running>) -> anyhow::Result<()> {
    Arc::into_inner(running)
        .ok_or_else(|| anyhow::anyhow!("a worker still holds the deployment"))?
        .stop()
        .await
}

/// What an edge node's sync reads after each commit: the records of the two stations it serves,
/// in a region of [`STATIONS`] stations with `stored` parcels stored across all of them.
pub async fn edge_mirror(reads: usize, stored: usize) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let store = open_store(dir.path()).await?;
    let agent = Actor {
        subject: "bench-agent".into(),
        role: "agent".into(),
    };
    let mut deposits = tokio::task::JoinSet::new();
    for n in 0..stored {
        let (store, agent) = (store.clone(), agent.clone());
        deposits.spawn(async move {
            let held = store.reserve(request(n)).await?;
            store.deposit(held.reservation.id, agent, None).await?;
            anyhow::Ok(())
        });
    }
    while let Some(done) = deposits.join_next().await {
        done??;
    }
    let served: std::collections::BTreeSet<StationId> = (0..2)
        .map(|i| StationId::new(station_name(i)).expect("valid id"))
        .collect();
    let mut latencies = Vec::with_capacity(reads);
    let mut items = 0;
    let started = Instant::now();
    for _ in 0..reads {
        let t = Instant::now();
        items = store.mirror_items(&served)?.len();
        latencies.push(t.elapsed());
    }
    let elapsed = started.elapsed();
    Ok(Report::new(
        format!(
            "edge mirror read after a commit, 2 of {STATIONS} stations ({COMPARTMENTS} compartments each, {stored} parcels stored in the region, {items} records)"
        ),
        latencies,
        elapsed,
    ))
}
