//! The Lockergrid workloads: snapshot queries, store reservations, HTTP reservations.

use crate::latency::{Report, drive};
use lockergrid_gateway::auth::Role;
use lockergrid_model::SystemClock;
use lockergrid_model::{Actor, StationKind, StationRecord};
use lockergrid_model::{RankQuery, rank_stations};
use lockergrid_protocol::{CodeKey, GeoPoint, OrderId, ParcelSpec, Size, StationId, Tier};
use lockergrid_store::{ReserveRequest, StationSeed, Target};
use lockergrid_store::{Store, StoreOptions};
use std::collections::BTreeMap;
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
            record: StationRecord::new(
                StationId::new(station_name(i)).expect("valid id"),
                station_name(i),
                StationKind::Urban,
                location(i),
            ),
            compartments: [COMPARTMENTS, 0, 0, 0],
        })
        .collect()
}

async fn open_store(dir: &std::path::Path) -> anyhow::Result<Store> {
    open_store_with(dir, seeds()).await
}

/// A store in `dir` seeded with `stations`.
async fn open_store_with(
    dir: &std::path::Path,
    stations: Vec<StationSeed>,
) -> anyhow::Result<Store> {
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
    store.seed(stations).await?;
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

/// Durable reservations through the store from `clients` concurrent tasks. The row also names
/// the CPU time per hold of the writer thread (one thread applies every hold, so that time
/// bounds the rate) and of the whole process (callers, runtime and writer: on two cores, the
/// rate cannot pass two seconds of CPU divided by it).
pub async fn store_reservations(total: usize, clients: usize) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let store = open_store(dir.path()).await?;
    let cpu = CpuSince::now()?;
    let commits = store.snapshot().commit_seq;
    // This handle keeps the writer thread alive past the workers, so its time can be read.
    let mut report = drive(
        String::new(),
        vec![store.clone(); clients],
        total,
        |store: Store, n| async move {
            store.reserve(request(n)).await?;
            Ok(store)
        },
    )
    .await?;
    let (writer, process) = cpu.per_op_micros(total)?;
    let per_commit = total as f64 / (store.snapshot().commit_seq - commits).max(1) as f64;
    drop(store);
    report.name = format!(
        "durable reservation, in process, fsync per batch ({clients} clients; {per_commit:.1} holds a commit; CPU a hold: writer {writer:.1} µs, process {process:.1} µs)"
    );
    Ok(report)
}

/// Durable reservations over `shards` stores side by side, each with its own redb file, writer
/// thread and fsync, station `i` in store `i % shards`, from `clients` concurrent tasks: the most
/// writers over station shards could reach here. Nothing crosses the stores, so what sharding
/// would add (routing a ranked hold to its candidate's shard, work that spans shards) is not in
/// it.
pub async fn sharded_reservations(
    total: usize,
    clients: usize,
    shards: usize,
) -> anyhow::Result<Report> {
    let dirs = (0..shards)
        .map(|_| tempfile::tempdir())
        .collect::<Result<Vec<_>, _>>()?;
    let mut stores = Vec::with_capacity(shards);
    for (shard, dir) in dirs.iter().enumerate() {
        let stations = seeds()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % shards == shard)
            .map(|(_, seed)| seed)
            .collect();
        stores.push(open_store_with(dir.path(), stations).await?);
    }
    let stores = Arc::new(stores);
    let cpu = CpuSince::now()?;
    let mut report = drive(
        String::new(),
        vec![stores.clone(); clients],
        total,
        move |stores: Arc<Vec<Store>>, n| async move {
            // The station `request(n)` holds at, and so the store that has it.
            let shard = n.wrapping_mul(7_919) % STATIONS % shards;
            stores
                .get(shard)
                .ok_or_else(|| anyhow::anyhow!("no store {shard}"))?
                .reserve(request(n))
                .await?;
            Ok(stores)
        },
    )
    .await?;
    let (writers, process) = cpu.per_op_micros(total)?;
    drop(stores);
    report.name = format!(
        "durable reservation, in process, {shards} stores side by side, stations split between them ({clients} clients; CPU a hold: writers {writers:.1} µs, process {process:.1} µs)"
    );
    Ok(report)
}

/// CPU time spent from a starting point on: by the store writer threads and by the process.
struct CpuSince {
    writers: BTreeMap<String, Duration>,
    process: Duration,
}

impl CpuSince {
    fn now() -> anyhow::Result<CpuSince> {
        Ok(CpuSince {
            writers: writer_threads()?,
            process: process_cpu()?,
        })
    }

    /// Microseconds of writer and of process CPU an operation, over `ops` operations since
    /// [`CpuSince::now`].
    fn per_op_micros(&self, ops: usize) -> anyhow::Result<(f64, f64)> {
        let ops = u32::try_from(ops.max(1))?;
        let writers = writer_cpu_since(&self.writers)? / ops;
        let process = process_cpu()?.saturating_sub(self.process) / ops;
        Ok((writers.as_secs_f64() * 1e6, process.as_secs_f64() * 1e6))
    }
}

/// How long each of this process's store writer threads has run on a CPU, by thread id, from
/// the kernel's per-thread scheduler statistics.
fn writer_threads() -> anyhow::Result<BTreeMap<String, Duration>> {
    let mut threads = BTreeMap::new();
    for task in std::fs::read_dir("/proc/self/task")? {
        let task = task?;
        // The kernel keeps the first 15 bytes of a thread's name; a thread that ended since the
        // listing (an earlier row's writer, an idle blocking-pool thread) has no files left.
        let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) else {
            continue;
        };
        if comm.trim_end() != "lockergrid-writ" {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let on_cpu: u64 = stat
            .split_whitespace()
            .next()
            .ok_or_else(|| anyhow::anyhow!("empty schedstat"))?
            .parse()?;
        threads.insert(
            task.file_name().to_string_lossy().into_owned(),
            Duration::from_nanos(on_cpu),
        );
    }
    Ok(threads)
}

/// The CPU time of the whole process (user and system, every thread), from `/proc/self/stat`
/// in the kernel's clock ticks of 10 ms.
fn process_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name in parentheses may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .ok_or_else(|| anyhow::anyhow!("unreadable /proc/self/stat"))?
        .1
        .split_whitespace()
        .collect();
    // utime and stime are fields 14 and 15 of the line, the 12th and 13th after the name.
    let ticks: u64 = fields
        .get(11..13)
        .ok_or_else(|| anyhow::anyhow!("short /proc/self/stat"))?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<Result<u64, _>>()?;
    Ok(Duration::from_millis(ticks * 10))
}

/// The CPU time writer threads spent between two readings; a thread that ended in between (an
/// earlier row's writer winding down) counts for nothing.
fn writer_cpu_since(before: &BTreeMap<String, Duration>) -> anyhow::Result<Duration> {
    Ok(writer_threads()?
        .iter()
        .map(|(tid, now)| now.saturating_sub(before.get(tid).copied().unwrap_or_default()))
        .sum())
}

/// The disk's floor under every durable commit: `syncs` rounds of a 4 KiB write and
/// `fdatasync`, in the same temporary directory the store rows use.
pub fn fsync_floor(syncs: usize) -> anyhow::Result<Report> {
    use std::io::Write;
    let dir = tempfile::tempdir()?;
    let mut file = std::fs::File::create(dir.path().join("floor"))?;
    let page = [7u8; 4096];
    let mut latencies = Vec::with_capacity(syncs);
    let started = Instant::now();
    for _ in 0..syncs {
        let t = Instant::now();
        file.write_all(&page)?;
        file.sync_data()?;
        latencies.push(t.elapsed());
    }
    Ok(Report::new(
        "floor: 4 KiB append + fdatasync on this disk",
        latencies,
        started.elapsed(),
    ))
}

/// The storage engine's floor under one batch: a redb write transaction of one small record,
/// committed durably (as the writer commits), `commits` times in a row.
pub fn redb_commit_floor(commits: usize) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let db = redb::Database::create(dir.path().join("floor.redb"))?;
    let table: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("floor");
    let mut latencies = Vec::with_capacity(commits);
    let started = Instant::now();
    for n in 0..commits {
        let t = Instant::now();
        let txn = db.begin_write()?;
        txn.open_table(table)?
            .insert(u64::try_from(n)?, [7u8; 200].as_slice())?;
        txn.commit()?;
        latencies.push(t.elapsed());
    }
    Ok(Report::new(
        "floor: redb durable commit of one 200-byte record",
        latencies,
        started.elapsed(),
    ))
}

/// What one batch of `batch` records costs redb, by where the records land, over a table shaped
/// like the compartments (100 stations × 1,000 records of 60 bytes, keyed number first as
/// `compartment_key` keys them): each record an update at another station (`spread`, the
/// compartment the benchmark's next hold there takes), or an append of 600 bytes at the end of
/// a time-ordered table (as reservations, parcels and the access log grow). 50,000 records in
/// all.
pub fn redb_batch_floor(batch: usize, spread: bool) -> anyhow::Result<Report> {
    const COMPARTMENTS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("c");
    const APPENDS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("a");
    let key = |station: usize, compartment: usize| format!("S{compartment:03}:bench-{station:03}");
    let dir = tempfile::tempdir()?;
    let db = redb::Database::create(dir.path().join("floor.redb"))?;
    let txn = db.begin_write()?;
    {
        let mut table = txn.open_table(COMPARTMENTS)?;
        for station in 0..STATIONS {
            for compartment in 1..=1_000 {
                table.insert(key(station, compartment).as_str(), [1u8; 60].as_slice())?;
            }
        }
    }
    txn.commit()?;
    let batches = 50_000 / batch.max(1);
    let mut latencies = Vec::with_capacity(batches);
    let started = Instant::now();
    for b in 0..batches {
        let t = Instant::now();
        let txn = db.begin_write()?;
        {
            let mut compartments = txn.open_table(COMPARTMENTS)?;
            let mut appends = txn.open_table(APPENDS)?;
            for n in b * batch..(b + 1) * batch {
                if spread {
                    let at = key(n.wrapping_mul(7_919) % STATIONS, (n / STATIONS) % 1_000 + 1);
                    compartments.insert(at.as_str(), [2u8; 60].as_slice())?;
                } else {
                    appends.insert(u64::try_from(n)?, [3u8; 600].as_slice())?;
                }
            }
        }
        txn.commit()?;
        latencies.push(t.elapsed());
    }
    let how = if spread {
        "60-byte compartment updates at as many stations"
    } else {
        "600-byte appends"
    };
    Ok(Report::new(
        format!("floor: redb durable commit of {batch} {how} (latency a commit)"),
        latencies,
        started.elapsed(),
    ))
}

/// Reservations over HTTP on loopback against a real gateway, from `clients` connections.
pub async fn http_reservations(total: usize, clients: usize) -> anyhow::Result<Report> {
    let mut deployment = lockergrid_tests::Deployment::new();
    for i in 0..STATIONS {
        deployment = deployment.station(&station_name(i), COMPARTMENTS);
    }
    let running = Arc::new(deployment.start().await?);
    let token: Arc<str> = running.token("bench", Role::Checkout, &[])?.into();
    let workers = vec![(running.clone(), token); clients];
    let cpu = CpuSince::now()?;
    let mut report = drive(
        String::new(),
        workers,
        total,
        |(running, token), n| async move {
            let station = station_name(n.wrapping_mul(7_919) % STATIONS);
            let (status, body) = running.reserve(&token, &format!("k-{n}"), &station).await?;
            anyhow::ensure!(status == 201, "reservation {n} answered {status}: {body}");
            Ok((running, token))
        },
    )
    .await?;
    let (writer, process) = cpu.per_op_micros(total)?;
    stop(running).await?;
    // The client shares the process and its two cores with the gateway, so the process figure
    // includes the client's side of every request.
    report.name = format!(
        "durable reservation over HTTP, loopback ({clients} connections; CPU a hold: writer {writer:.1} µs, process with the client {process:.1} µs)"
    );
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
