//! Throughput and latency percentiles of one measured workload.

use std::time::Duration;

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
