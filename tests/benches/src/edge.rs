//! Edge-node benchmarks.
//!
//! 9. Code entry → door unlocked from the edge cache with the uplink down: the same keypad and
//!    locker as benchmark 7, but the locker is connected to an edge node whose uplink to the
//!    gateway is cut, so the edge node decides from its mirror (the station's code key, the
//!    keyed hash, its own store commit and signature) and writes each decision to its outbox.
//! 10. Outbox drain after reconnect: the decisions of those pickups, from the moment the uplink
//!     is back until the gateway has applied the last of them.

use crate::latency::Report;
use lockergrid_edge_runtime::store::records::Actor;
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
    let actor = Actor {
        subject: "bench".into(),
        role: "agent".into(),
    };
    let mut pickups = Vec::with_capacity(n);
    for i in 0..n {
        let reserved = store
            .reserve(crate::workloads::request_at(i, STATION.into()))
            .await?;
        let deposit = store
            .deposit(reserved.reservation.id, actor.clone(), None)
            .await?;
        pickups.push((
            deposit.code.reveal().to_owned(),
            deposit.parcel.compartment_id,
        ));
    }
    d.edge_until(EDGE, |e| e["codes"] == n && e["lag"] == 0)
        .await?;
    d.uplink(EDGE)?.cut();
    let mut connected = d.edges[0].connected();
    tokio::time::timeout(Duration::from_secs(15), connected.wait_for(|up| !up)).await??;

    let sim = d.lockers[0].hardware.clone();
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for (code, compartment) in pickups {
        let sim = sim.clone();
        let took = tokio::task::spawn_blocking(move || -> anyhow::Result<Duration> {
            let t0 = Instant::now();
            sim.lock().expect("sim").press(&format!("{code}#"))?;
            let deadline = t0 + Duration::from_secs(10);
            while !sim.lock().expect("sim").unlatched().contains(&compartment) {
                anyhow::ensure!(Instant::now() < deadline, "{compartment} never unlatched");
                std::thread::sleep(Duration::from_micros(50));
            }
            let took = t0.elapsed();
            let mut sim = sim.lock().expect("sim");
            sim.open_door(&compartment)?;
            sim.close_door(&compartment)?;
            Ok(took)
        })
        .await??;
        latencies.push(took);
    }
    let elapsed = started.elapsed();
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
