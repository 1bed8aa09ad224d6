//! Per-slot counters: calls, failures, failures in a row, and a latency histogram with
//! power-of-two microsecond buckets, cheap enough to update on every call.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Buckets of the latency histogram: bucket `i` counts calls under `2^i` µs; the last counts
/// the rest.
pub const LATENCY_BUCKETS: usize = 24;

/// Counters of one slot.
#[derive(Debug, Default)]
pub struct SlotStats {
    calls: AtomicU64,
    failures: AtomicU64,
    pub(super) consecutive: AtomicU32,
    latency_sum_ns: AtomicU64,
    latency: [AtomicU64; LATENCY_BUCKETS],
}

/// A latency histogram as counts per bucket (not cumulative).
pub type LatencyBuckets = [u64; LATENCY_BUCKETS];

/// The counters of a slot at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsReport {
    /// Calls made.
    pub calls: u64,
    /// Calls that failed and fell back to the built-in.
    pub failures: u64,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// Sum of all call latencies.
    pub latency_sum: Duration,
    /// Calls per latency bucket.
    pub latency: LatencyBuckets,
}

impl StatsReport {
    /// Upper bound, in µs, of the bucket that holds quantile `q` (0.0 to 1.0); `None` with no
    /// calls.
    pub fn quantile_us(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64) * q.clamp(0.0, 1.0)).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(1u64 << i);
            }
        }
        Some(1u64 << (LATENCY_BUCKETS - 1))
    }
}

impl SlotStats {
    /// Counts one call.
    pub(super) fn record(&self, took: Duration, ok: bool) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if ok {
            self.consecutive.store(0, Ordering::Relaxed);
        } else {
            self.failures.fetch_add(1, Ordering::Relaxed);
            self.consecutive.fetch_add(1, Ordering::Relaxed);
        }
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_ns.fetch_add(ns, Ordering::Relaxed);
        let us = ns / 1_000;
        let bucket = (u64::BITS - us.leading_zeros()) as usize;
        self.latency[bucket.min(LATENCY_BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn report(&self) -> StatsReport {
        StatsReport {
            calls: self.calls.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            consecutive_failures: self.consecutive.load(Ordering::Relaxed),
            latency_sum: Duration::from_nanos(self.latency_sum_ns.load(Ordering::Relaxed)),
            latency: std::array::from_fn(|i| self.latency[i].load(Ordering::Relaxed)),
        }
    }
}
