//! Edge-node benchmarks.
//!
//! 9. Code entry → door unlocked from the edge cache with the uplink down: the same keypad and
//!    locker as benchmark 7, but the locker is connected to an edge node whose uplink to the
//!    gateway is cut, so the edge node decides from its mirror (the station's code key, the
//!    keyed hash, its own store commit and signature) and writes each decision to its outbox.
//! 10. Outbox drain after reconnect: the decisions of those pickups, from the moment the uplink
//!     is back until the gateway has applied the last of them.

use crate::latency::Report;
use std::time::{Duration, Instant};

const EDGE: &str = "bench-edge";
const STATION: &str = "bench-e";

/// `n` pickups decided at the edge one at a time, then the drain of their decisions: the
/// latency report and (decisions, seconds) of the drain.
pub async fn cache_and_drain(n: usize) -> anyhow::Result<(Report, usize, Duration)> {
    let d = lockergrid_tests::Deployment::new()
        .station(STATION, 1_000)
        .lockers(Duration::from_secs(5))
        .edge(EDGE, &[STATION])
        .start()
        .await?;
    let store = d.gateway.app.store.clone();
    let pickups = d.stock(&[STATION], n).await?;
    d.edge_until(EDGE, |e| e["codes"] == n && e["lag"] == 0)
        .await?;
    d.uplink(EDGE)?.cut();
    let mut connected = d.edges[0].connected();
    tokio::time::timeout(Duration::from_secs(15), connected.wait_for(|up| !up)).await??;

    let (latencies, elapsed) = crate::devices::timed_pickups(&d.lockers[0], pickups).await?;
    let edge = d.edges[0].store().clone();
    let decisions = 2 * n;
    let deadline = Instant::now() + Duration::from_secs(60);
    while edge.edge_outbox_depth()? < decisions as u64 {
        anyhow::ensure!(Instant::now() < deadline, "decisions missing at the edge");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    d.uplink(EDGE)?.restore();
    tokio::time::timeout(Duration::from_secs(30), connected.wait_for(|up| *up)).await??;
    let back = Instant::now();
    let deadline = back + Duration::from_secs(120);
    while store.decisions_applied(EDGE)? < decisions as u64 {
        anyhow::ensure!(Instant::now() < deadline, "outbox not drained");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let drain = back.elapsed();
    d.stop().await?;
    Ok((
        Report::new(
            "code entry → door unlocked from the edge cache, uplink down (one at a time)",
            latencies,
            elapsed,
        ),
        decisions,
        drain,
    ))
}
