//! `lockergrid-bench`: the performance measurements of docs/benchmarks.md, in one run.
//!
//! 1. availability queries against the in-process snapshot;
//! 2. durable reservations through the store's group-commit writer;
//! 3. reservations over HTTP on loopback against a real gateway;
//! 4. the same reservation workload against PostgreSQL with `SELECT … FOR UPDATE SKIP LOCKED`
//!    and durable commits, reported as a ratio.
//!
//! 5. a reservation-policy decision through Wasm against the same ranking compiled natively, at
//!    10, 100 and 1,000 candidates, with and without the call limits;
//! 6. reservations near a point over HTTP with the Wasm ranking against the built-in one.
//!
//! 7. code entry → door unlocked through the full device path (shim, TLS, front, broker, gateway,
//!    site rules, signed command, shim);
//! 8. telemetry ingest over TLS 1.3 through the node's front and embedded broker against Debian's
//!    mosquitto with the same certificates and load, reported as a ratio.
//!
//! 11. notifications delivered per second to a real SMTP server and to a webhook receiver;
//! 12. door closing → e-mail accepted by the SMTP server.
//!
//! 13. a firmware rollout to hundreds of simulated lockers (time, bytes, gateway CPU);
//! 14. telemetry ingest into a full gateway with the site rules and the time series on,
//!     against mosquitto with the same load in the same run.
//!
//! Prints Markdown tables. `tests/benches/run.sh` starts the PostgreSQL peer and runs it.

mod devices;
mod edge;
mod latency;
mod notifications;
mod plugins;
mod postgres;
mod rollout;
mod workloads;

use clap::Parser;
use latency::Report;

/// The allocator the `lockergrid` binary runs with, so the in-process rows measure what it does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmark options.
#[derive(Debug, Parser)]
struct Options {
    /// Reservations per reservation workload.
    #[arg(long, default_value_t = 50_000)]
    reservations: usize,
    /// Concurrent callers for the reservation workloads (store, HTTP and PostgreSQL alike).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// A second, higher concurrency for the in-process store, to show group commit filling up.
    #[arg(long, default_value_t = 1_024)]
    wide_clients: usize,
    /// Availability queries to time.
    #[arg(long, default_value_t = 2_000_000)]
    queries: usize,
    /// libpq-style connection string of the PostgreSQL peer; without it the peer is skipped.
    #[arg(long)]
    postgres: Option<String>,
    /// Plugin decisions to time per candidate count and variant.
    #[arg(long, default_value_t = 5_000)]
    decisions: usize,
    /// Only the plugin benchmarks (5 and 6).
    #[arg(long)]
    plugins_only: bool,
    /// Pickups timed from code entry to the door unlocking.
    #[arg(long, default_value_t = 500)]
    pickups: usize,
    /// Lockers publishing telemetry at once.
    #[arg(long, default_value_t = 50)]
    telemetry_lockers: usize,
    /// Heartbeats each of them publishes.
    #[arg(long, default_value_t = 2_000)]
    heartbeats: usize,
    /// Only the device-plane and edge-node benchmarks (7 to 10).
    #[arg(long)]
    devices_only: bool,
    /// Only the edge-node benchmarks (9 and 10).
    #[arg(long)]
    edge_only: bool,
    /// Messages per notification throughput run.
    #[arg(long, default_value_t = 2_000)]
    notifications: usize,
    /// Deposits timed from the door closing to the e-mail accepted.
    #[arg(long, default_value_t = 200)]
    door_emails: usize,
    /// Only the notification benchmarks (11 and 12).
    #[arg(long)]
    notifications_only: bool,
    /// Lockers the rollout benchmark updates.
    #[arg(long, default_value_t = 500)]
    rollout_lockers: usize,
    /// Size of its image, KiB.
    #[arg(long, default_value_t = 1024)]
    rollout_image_kib: usize,
    /// Only the fleet benchmarks (13 and 14).
    #[arg(long)]
    fleet_only: bool,
    /// Only the availability, edge mirror and reservation rows (1 to 4), with their peer.
    #[arg(long)]
    reservations_only: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Options::parse();
    if o.notifications_only {
        return notification_tables(&o).await;
    }
    if o.fleet_only {
        return fleet_tables(&o).await;
    }
    if o.edge_only {
        return edge_tables(&o).await;
    }
    if o.reservations_only {
        return reservation_tables(&o).await;
    }
    if !o.devices_only {
        plugin_tables(&o).await?;
    }
    if o.plugins_only {
        return Ok(());
    }
    device_tables(&o).await?;
    edge_tables(&o).await?;
    notification_tables(&o).await?;
    fleet_tables(&o).await?;
    if o.devices_only {
        return Ok(());
    }
    reservation_tables(&o).await
}

/// Benchmarks 1 to 4: availability, the edge mirror read, durable reservations and the peer.
async fn reservation_tables(o: &Options) -> anyhow::Result<()> {
    let mut rows: Vec<Report> = Vec::new();
    rows.push(workloads::availability(o.queries, 2).await?);
    rows.push(workloads::edge_mirror(200, 5_000).await?);
    rows.push(workloads::fsync_floor(2_000)?);
    rows.push(workloads::redb_commit_floor(2_000)?);
    for spread in [true, false] {
        rows.push(workloads::redb_batch_floor(o.clients, spread)?);
    }
    let store = workloads::store_reservations(o.reservations, o.clients).await?;
    rows.push(store.clone());
    rows.push(workloads::store_reservations(o.reservations, o.wide_clients).await?);
    for clients in [o.clients, o.wide_clients] {
        rows.push(workloads::sharded_reservations(o.reservations, clients, 2).await?);
    }
    rows.push(workloads::http_reservations(o.reservations / 2, o.clients).await?);
    if let Some(conn) = &o.postgres {
        let pg = postgres::reservations(conn, o.reservations, o.clients).await?;
        let ratio = store.per_second / pg.per_second;
        rows.push(pg);
        println!("{}", latency::table(&rows));
        println!(
            "\nin-process store vs PostgreSQL at {} clients: {ratio:.1}x",
            o.clients
        );
    } else {
        println!("{}", latency::table(&rows));
        println!("\nPostgreSQL peer skipped (no --postgres)");
    }
    Ok(())
}

/// Benchmarks 7 and 8 (device plane).
async fn device_tables(o: &Options) -> anyhow::Result<()> {
    let unlock = devices::code_to_unlock(o.pickups).await?;
    println!("{}", latency::table(&[unlock]));
    let ours = devices::telemetry_embedded(o.telemetry_lockers, o.heartbeats).await?;
    let peer = devices::telemetry_mosquitto(o.telemetry_lockers, o.heartbeats).await?;
    let ratio = peer.as_ref().map(|p| ours.per_second / p.per_second);
    let mut rows = vec![ours];
    rows.extend(peer);
    println!("{}", latency::table(&rows));
    match ratio {
        Some(r) => println!("\ntelemetry ingest, Lockergrid vs mosquitto: {r:.2}x\n"),
        None => println!("\nmosquitto peer skipped (/usr/sbin/mosquitto not installed)\n"),
    }
    Ok(())
}

/// Benchmarks 13 and 14.
async fn fleet_tables(o: &Options) -> anyhow::Result<()> {
    let run = rollout::rollout(o.rollout_lockers, o.rollout_image_kib * 1024).await?;
    println!("{}\n", rollout::rollout_table(&run));
    let ours = rollout::telemetry_gateway(o.telemetry_lockers, o.heartbeats).await?;
    let peer = devices::telemetry_mosquitto(o.telemetry_lockers, o.heartbeats).await?;
    let ratio = peer.as_ref().map(|p| ours.per_second / p.per_second);
    let mut rows = vec![ours];
    rows.extend(peer);
    println!("{}", latency::table(&rows));
    match ratio {
        Some(r) => {
            println!("\ntelemetry stored with assess, Lockergrid vs mosquitto delivered: {r:.2}x\n")
        }
        None => println!("\nmosquitto peer skipped (/usr/sbin/mosquitto not installed)\n"),
    }
    Ok(())
}

/// Benchmarks 11 and 12.
async fn notification_tables(o: &Options) -> anyhow::Result<()> {
    use notifications::Receiver;
    let smtp = notifications::throughput(o.notifications, 16, Receiver::Smtp).await?;
    let webhook = notifications::throughput(o.notifications, 16, Receiver::Webhook).await?;
    let door = notifications::door_to_email(o.door_emails).await?;
    println!("{}", latency::table(&[smtp, webhook, door]));
    Ok(())
}

/// Benchmarks 9 and 10.
async fn edge_tables(o: &Options) -> anyhow::Result<()> {
    let (unlock, decisions, drain) = edge::cache_and_drain(o.pickups).await?;
    println!("{}", latency::table(&[unlock]));
    println!(
        "| workload | decisions | seconds | decisions/s |\n|---|---:|---:|---:|\n| edge outbox drain after reconnect (uplink back → last decision applied at the gateway) | {decisions} | {:.3} | {:.0} |\n",
        drain.as_secs_f64(),
        decisions as f64 / drain.as_secs_f64()
    );
    Ok(())
}

/// Benchmarks 5 and 6, each row with its ratio to the peer it is compared with.
async fn plugin_tables(o: &Options) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let mut ratios = Vec::new();
    for n in [10, 100, 1_000] {
        let calls = if n == 1_000 {
            o.decisions / 5
        } else {
            o.decisions
        };
        let [native, limited, unlimited] = plugins::decisions(n, calls).await?;
        ratios.push(format!(
            "| {n} | {:.1}x | {:.1}x | {:.2}x |",
            limited.p50.as_secs_f64() / native.p50.as_secs_f64(),
            limited.p99.as_secs_f64() / native.p99.as_secs_f64(),
            limited.p50.as_secs_f64() / unlimited.p50.as_secs_f64(),
        ));
        rows.extend([native, limited, unlimited]);
    }
    println!("{}", latency::table(&rows));
    println!(
        "| candidates | Wasm / native p50 | Wasm / native p99 | limits / no limits p50 |\n|---:|---:|---:|---:|\n{}\n",
        ratios.join("\n")
    );
    let total = o.reservations / 5;
    let [built_in, wasm] = plugins::http_ranked(total, o.clients, 100).await?;
    let ratio = wasm.per_second / built_in.per_second;
    println!("{}", latency::table(&[built_in, wasm]));
    println!("\nreservations/s over HTTP, Wasm ranking / built-in: {ratio:.2}\n");
    Ok(())
}
