//! `lockergrid-bench`: the performance measurements of docs/benchmarks.md, in one run.
//!
//! 1. availability queries against the in-process snapshot;
//! 2. durable reservations through the store's group-commit writer;
//! 3. reservations over HTTP on loopback against a real gateway;
//! 4. the same reservation workload against PostgreSQL with `SELECT … FOR UPDATE SKIP LOCKED`
//!    and durable commits, reported as a ratio.
//!
//! Prints a Markdown table. `tests/benches/run.sh` starts the PostgreSQL peer and runs it.

mod latency;
mod postgres;
mod workloads;

use clap::Parser;
use latency::Report;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Options::parse();
    let mut rows: Vec<Report> = Vec::new();
    rows.push(workloads::availability(o.queries, 2).await?);
    let store = workloads::store_reservations(o.reservations, o.clients).await?;
    rows.push(store.clone());
    rows.push(workloads::store_reservations(o.reservations, o.wide_clients).await?);
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
