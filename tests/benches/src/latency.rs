//! Throughput and latency percentiles of one measured workload.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// One row of the results table.
#[derive(Debug, Clone)]
pub struct Report {
    /// What was measured.
    pub name: String,
    /// Operations completed.
    pub ops: usize,
    /// Operations per second over the whole run.
    pub per_second: f64,
    /// Median latency of one operation.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Report {
    /// A report from per-operation latencies and the wall-clock time of the run.
    pub fn new(name: impl Into<String>, mut latencies: Vec<Duration>, elapsed: Duration) -> Report {
        latencies.sort_unstable();
        let at = |q: f64| {
            let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
            latencies.get(i).copied().unwrap_or_default()
        };
        Report {
            name: name.into(),
            ops: latencies.len(),
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: at(0.50),
            p99: at(0.99),
        }
    }
}

fn human(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1_000.0 {
        format!("{us:.2} µs")
    } else {
        format!("{:.2} ms", us / 1_000.0)
    }
}

/// The reports as a Markdown table.
pub fn table(rows: &[Report]) -> String {
    let mut out =
        String::from("| workload | ops | ops/s | p50 | p99 |\n|---|---:|---:|---:|---:|\n");
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {:.0} | {} | {} |\n",
            r.name,
            r.ops,
            r.per_second,
            human(r.p50),
            human(r.p99)
        ));
    }
    out
}

/// Runs operations `0..total`, spread over one task per worker state, timing each on its own.
/// A worker hands its state (a connection, a handle) through each of its operations.
pub async fn drive<S, F, Fut>(
    name: String,
    workers: Vec<S>,
    total: usize,
    op: F,
) -> anyhow::Result<Report>
where
    S: Send + 'static,
    F: Fn(S, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<S>> + Send + 'static,
{
    let (_, timed) = drive_timed(workers, 0..total, op).await?;
    Ok(Report::new(name, timed.latencies, timed.elapsed))
}

/// What [`drive_timed`] measured: each operation's latency and the wall time of them all.
#[derive(Default)]
pub struct Timed {
    /// Each operation's latency, in no particular order.
    pub latencies: Vec<Duration>,
    /// From the first operation's start to the last one's end.
    pub elapsed: Duration,
}

impl Timed {
    /// Adds another run's operations and time to these.
    pub fn extend(&mut self, other: Timed) {
        self.latencies.extend(other.latencies);
        self.elapsed += other.elapsed;
    }
}

/// Runs operations `ops`, spread over one task per worker state, timing each on its own, and
/// hands the workers' states back so another run can go on with them.
pub async fn drive_timed<S, F, Fut>(
    workers: Vec<S>,
    ops: std::ops::Range<usize>,
    op: F,
) -> anyhow::Result<(Vec<S>, Timed)>
where
    S: Send + 'static,
    F: Fn(S, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<S>> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(ops.start));
    let end = ops.end;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for mut state in workers {
        let (next, op) = (next.clone(), op.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    return anyhow::Ok((state, latencies));
                }
                let t = Instant::now();
                state = op(state, n).await?;
                latencies.push(t.elapsed());
            }
        });
    }
    let mut states = Vec::with_capacity(tasks.len());
    let mut latencies = Vec::with_capacity(ops.len());
    while let Some(done) = tasks.join_next().await {
        let (state, timed) = done??;
        states.push(state);
        latencies.extend(timed);
    }
    let elapsed = started.elapsed();
    Ok((states, Timed { latencies, elapsed }))
}
