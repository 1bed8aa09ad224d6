//! Edge nodes over their real uplink (MQTT over TLS 1.3 with an edge certificate): each mirrors
//! exactly the records of the stations it serves, follows every change at the gateway, catches
//! up with deltas after a restart, and operators see its state over HTTP and in the metrics.

use lockergrid_device_plane::{CertificateAuthority, Identity, Kind};
use lockergrid_gateway::auth::Role;
use lockergrid_gateway::simulated::SimulatedLocker;
use lockergrid_model::Decision;
use lockergrid_model::ManualClock;
use lockergrid_model::ReturnStatus;
use lockergrid_protocol::{CompartmentId, ParcelId, ParcelStatus, StationId};
use lockergrid_tests::{Deployment, LeasePool, Running, small_parcel};
use std::collections::BTreeSet;
use std::time::Duration;

/// Waits until the edge node's mirror equals the gateway's records for its stations.
async fn mirror_converges(d: &Running, edge: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let served: BTreeSet<StationId> = d.deployment.edges[edge].stations.iter().cloned().collect();
    loop {
        let want = d.gateway.app.store.mirror_items(&served)?;
        let have = d.edges[edge].store().mirror_items(&served)?;
        if want == have {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "edge mirror did not converge: {} records at the gateway, {} at the edge",
            want.len(),
            have.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the operators' view of an edge node shows a lease at each of its `stations` stations,
/// each confirmed by the edge node (and holding `medium` medium compartments, if given).
fn leases_settled(edge: &serde_json::Value, stations: usize, medium: Option<u64>) -> bool {
    edge["leases"].as_array().is_some_and(|leases| {
        leases.len() == stations
            && leases.iter().all(|l| {
                l["acked_epoch"] == l["epoch"]
                    && l["revoking"] == 0
                    && medium.is_none_or(|n| l["sizes"]["medium"] == n)
            })
    })
}

/// Station st-b of `compartments` compartments behind edge node edge-b, with its simulated
/// locker, started.
pub(crate) async fn edge_b(compartments: u32) -> anyhow::Result<Running> {
    Deployment::new()
        .station("st-b", compartments)
        .lockers(Duration::from_millis(500))
        .edge("edge-b", &["st-b"])
        .start()
        .await
}

/// Reserves and deposits `n` parcels at `station` through its locker's doors; each parcel's id,
/// pickup code and compartment.
pub(crate) async fn deposit_parcels(
    d: &Running,
    station: &str,
    n: usize,
) -> anyhow::Result<Vec<(String, String, String)>> {
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &[station])?;
    let mut stored = Vec::new();
    for i in 0..n {
        let (status, r) = d
            .reserve(&checkout, &format!("{station}-{i}"), station)
            .await?;
        anyhow::ensure!(status == 201, "{r}");
        let (status, deposit) = d
            .deposit(&agent, r["id"].as_str().unwrap_or_default())
            .await?;
        anyhow::ensure!(status == 200, "{deposit}");
        let parcel = deposit["parcel_id"].as_str().unwrap_or_default().to_owned();
        let code = d.pickup_code(&parcel).await?;
        stored.push((
            parcel,
            code,
            r["compartment_id"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    Ok(stored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_node_mirrors_its_stations_and_follows_every_change() -> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 10)
        .station("st-b", 150)
        .lockers(Duration::from_millis(500))
        .edge("edge-b", &["st-b"])
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a", "st-b"])?;
    let operator = d.token("ops", Role::Operator, &[])?;

    let edge = d.edge_until("edge-b", |e| e["compartments"] == 150).await?;
    assert_eq!(edge["stations"], serde_json::json!(["st-b"]));
    assert_eq!(edge["full_resyncs"], 1, "{edge}");
    mirror_converges(&d, 0).await?;
    let stations: Vec<String> = d.edges[0]
        .store()
        .snapshot()
        .stations
        .iter()
        .map(|s| s.record.id.to_string())
        .collect();
    assert_eq!(stations, vec!["st-b"], "only its own station");

    // Reservations and a deposit at st-b reach the edge; one at st-a does not.
    let (status, r) = d.reserve(&checkout, "edge-1", "st-b").await?;
    assert_eq!(status, 201, "{r}");
    let (status, _) = d.reserve(&checkout, "edge-2", "st-a").await?;
    assert_eq!(status, 201);
    let (status, deposit) = d.deposit(&agent, r["id"].as_str().unwrap()).await?;
    assert_eq!(status, 200, "{deposit}");
    let edge = d
        .edge_until("edge-b", |e| e["codes"] == 1 && e["lag"] == 0)
        .await?;
    mirror_converges(&d, 0).await?;
    assert!(edge["deltas_sent"].as_u64().unwrap() >= 1, "{edge}");
    let offset = edge["clock_offset_ms"].as_i64().expect("clock offset");
    assert!(offset.abs() < 5_000, "same clock, transit only: {edge}");
    assert!(edge["last_sync"].as_str().is_some(), "{edge}");

    // The customer's code at st-b's keypad goes up through the edge node; the unlock comes back
    // through it, signed by the edge node (the locker trusts no other key), and the pickup
    // completes when the door closes.
    let parcel = deposit["parcel_id"].as_str().expect("parcel");
    let code = &d.pickup_code(parcel).await?;
    let compartment = r["compartment_id"].as_str().expect("compartment");
    assert_eq!(d.locker("st-b", &format!("press {code}#")).await?, "ok");
    d.open_and_close("st-b", compartment).await?;
    let url = format!("{}/v1/parcels/{parcel}", d.base);
    d.get_until(&url, &checkout, |p| p["status"] == "picked_up")
        .await?;
    d.edge_until("edge-b", |e| e["codes"] == 0 && e["lag"] == 0)
        .await?;
    mirror_converges(&d, 0).await?;
    let status = d.locker_until("st-b", |s| s["queued_events"] == 0).await?;
    assert_eq!(
        status["executed"], 2,
        "deposit and pickup unlocks: {status}"
    );
    assert_eq!(status["refused"], 0, "{status}");

    // st-b's locker is connected to the edge node, st-a's to the gateway; each front logs its
    // own, and the edge node recorded both commands it signed with their outcomes.
    let log = d.access_log(&operator).await?;
    let connected = |who: &str| {
        log.iter()
            .any(|e| e["action"] == "device_connected" && e["actor"]["subject"] == who)
    };
    assert!(connected("locker:st-a") && !connected("locker:st-b"));
    let edge_log = d.edges[0].store().access_log(1, 1_000)?;
    assert!(
        edge_log
            .iter()
            .any(|e| e.action == "device_connected" && e.actor.subject == "locker:st-b")
    );
    let executed = edge_log
        .iter()
        .filter(|e| e.action == "command" && e.outcome == "executed")
        .count();
    assert_eq!(executed, 2, "{edge_log:?}");

    let text = d
        .http
        .get(format!("{}/metrics", d.base))
        .bearer_auth(&operator)
        .send()
        .await?
        .text()
        .await?;
    assert!(
        text.contains("lockergrid_edge_connected{edge=\"edge-b\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("lockergrid_edge_sync_lag{edge=\"edge-b\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("lockergrid_edge_sync_batches_total{edge=\"edge-b\",kind=\"full\"} 1"),
        "{text}"
    );

    // Only operators see the edge nodes.
    let (status, problem) = d
        .send(
            d.http
                .get(format!("{}/v1/admin/edges", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(status, 403, "{problem}");
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_edge_node_catches_up_with_the_deltas_it_missed() -> anyhow::Result<()> {
    let mut d = Deployment::new()
        .station("st-b", 20)
        .edge("edge-b", &["st-b"])
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    mirror_converges(&d, 0).await?;

    d.edges.remove(0).stop().await;
    let down = d.edge_until("edge-b", |e| e["connected"] == false).await?;
    for n in 0..3 {
        let (status, r) = d.reserve(&checkout, &format!("missed-{n}"), "st-b").await?;
        assert_eq!(status, 201, "{r}");
        // One version each: the gateway's log advances on every commit it sees.
        d.edge_until("edge-b", |e| {
            e["version"].as_u64() > down["version"].as_u64().map(|v| v + n)
        })
        .await?;
    }
    let behind = d
        .edge_until("edge-b", |e| e["lag"].as_u64() >= Some(3))
        .await?;
    assert_eq!(behind["connected"], false);

    let edge = d.start_edge("edge-b").await?;
    d.edges.push(edge);
    let caught_up = d
        .edge_until("edge-b", |e| e["connected"] == true && e["lag"] == 0)
        .await?;
    mirror_converges(&d, 0).await?;
    assert_eq!(
        caught_up["full_resyncs"], 1,
        "deltas, not a resync: {caught_up}"
    );
    assert!(caught_up["deltas_sent"].as_u64() >= Some(3), "{caught_up}");
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locker_revoked_at_the_gateway_is_cut_off_at_its_edge_node() -> anyhow::Result<()> {
    let d = edge_b(10).await?;
    let before = d.edge_until("edge-b", |e| e["lag"] == 0).await?;
    let mut ca = CertificateAuthority::open(&d.gateway.data_dir.join("pki"))?;
    ca.revoke(&Identity::new(Kind::Locker, "st-b")?)?;

    // The new list reaches the edge node as a delta; its front drops the live session and
    // refuses the locker's reconnections.
    let after = d
        .edge_until("edge-b", |e| {
            e["lag"] == 0 && e["version"].as_u64() > before["version"].as_u64()
        })
        .await?;
    assert_eq!(after["full_resyncs"], 1, "{after}");
    d.locker_until("st-b", |s| s["connected"] == false).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let log = d.edges[0].store().access_log(1, 1_000)?;
        let refused = log
            .iter()
            .any(|e| e.action == "device_refused" && e.outcome.to_lowercase().contains("revoked"));
        if log.iter().any(|e| e.action == "device_revoked") && refused {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no revocation in the edge node's log: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_uplink_cut_the_edge_node_decides_pickups_and_the_gateway_applies_each_once()
-> anyhow::Result<()> {
    const PARCELS: usize = 8;
    let d = edge_b(40).await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let stored = deposit_parcels(&d, "st-b", PARCELS).await?;
    d.edge_until("edge-b", |e| e["codes"] == PARCELS && e["lag"] == 0)
        .await?;
    mirror_converges(&d, 0).await?;

    d.cut_uplink("edge-b").await?;
    // Meanwhile the gateway gives the last parcel a new code: its old one, used at the edge
    // below, is a conflict the gateway must record.
    let (last, _, _) = &stored[PARCELS - 1];
    let url = format!("{}/v1/parcels/{last}/code", d.base);
    let (status, reissued) = d.send(d.http.post(url).bearer_auth(&checkout)).await?;
    assert_eq!(status, 202, "{reissued}");

    // Every pickup is decided at the edge: code, signed unlock, door; a wrong code and a spent
    // one open nothing.
    for (_, code, compartment) in &stored {
        assert_eq!(d.locker("st-b", &format!("press {code}#")).await?, "ok");
        d.open_and_close("st-b", compartment).await?;
    }
    assert_eq!(d.locker("st-b", "press 00000000#").await?, "ok");
    assert_eq!(
        d.locker("st-b", &format!("press {}#", stored[0].1)).await?,
        "ok"
    );
    // Each pickup is two decisions (the door opened, the parcel taken), each refused code one.
    let edge = d.edges[0].store();
    let decisions = 2 * PARCELS as u64 + 2;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while edge.edge_outbox_depth()? < decisions {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "outbox: {:?}",
            edge.edge_outbox(100)?
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (parcel, _, _) in &stored {
        let id = lockergrid_protocol::ParcelId::new(parcel.as_str())?;
        let status = edge.parcel(&id)?.map(|p| p.status);
        assert_eq!(status, Some(ParcelStatus::PickedUp), "{parcel} at the edge");
        let url = format!("{}/v1/parcels/{parcel}", d.base);
        let (_, at_gateway) = d.send(d.http.get(url).bearer_auth(&checkout)).await?;
        assert_eq!(
            at_gateway["status"], "stored",
            "the gateway has not heard yet"
        );
    }
    assert_eq!(edge.edge_outbox_depth()?, decisions);
    let status = d.locker_until("st-b", |s| s["queued_events"] == 0).await?;
    assert_eq!(status["executed"], 2 * PARCELS, "{status}");
    assert_eq!(status["unlatched"], serde_json::json!([]), "{status}");

    // The link returns: the outbox drains in order, each decision applied once, and the sync
    // that follows leaves the edge node with no active code.
    d.uplink("edge-b")?.restore();
    d.edge_until("edge-b", |e| {
        e["connected"] == true
            && e["decisions_applied"] == decisions
            && e["outbox"] == 0
            && e["lag"] == 0
            && e["codes"] == 0
    })
    .await?;
    mirror_converges(&d, 0).await?;
    for (parcel, _, _) in &stored {
        let url = format!("{}/v1/parcels/{parcel}", d.base);
        let (_, p) = d.send(d.http.get(url).bearer_auth(&checkout)).await?;
        assert_eq!(p["status"], "picked_up", "{p}");
    }
    let log = d.access_log(&operator).await?;
    for (n, (parcel, _, _)) in stored.iter().enumerate() {
        let pickups: Vec<_> = log
            .iter()
            .filter(|e| e["action"] == "pickup" && e["target"] == parcel.as_str())
            .collect();
        assert_eq!(pickups.len(), 1, "{parcel}: {pickups:?}");
        assert_eq!(pickups[0]["actor"]["subject"], "edge:edge-b");
        let conflicts = log
            .iter()
            .filter(|e| e["action"] == "pickup_conflict" && e["target"] == parcel.as_str())
            .count();
        assert_eq!(conflicts, usize::from(n == PARCELS - 1), "{parcel}");
    }
    let rejected = log
        .iter()
        .filter(|e| {
            e["action"] == "pickup"
                && e["outcome"]
                    .as_str()
                    .is_some_and(|o| o.starts_with("code_rejected at the edge"))
        })
        .count();
    assert_eq!(rejected, 2);
    let health = format!("{}/v1/stations/st-b/health", d.base);
    let (_, health) = d.send(d.http.get(health).bearer_auth(&operator)).await?;
    assert!(
        health["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["kind"] == "edge-conflict")),
        "{health}"
    );
    d.stop().await
}

/// A person at `locker` types `code`, waits for `compartment` to unlatch, opens and closes it:
/// on the simulated hardware directly, as fast as the locker reacts.
pub(crate) async fn pick_up_at(
    locker: &SimulatedLocker,
    code: &str,
    compartment: &str,
) -> anyhow::Result<()> {
    let id = CompartmentId::new(compartment)?;
    locker.hardware.lock().unwrap().press(&format!("{code}#"))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !locker.hardware.lock().unwrap().unlatched().contains(&id) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{compartment} never unlatched"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut hardware = locker.hardware.lock().unwrap();
    hardware.open_door(&id)?;
    hardware.close_door(&id)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_pickups_and_a_hundred_drop_offs_during_a_long_partition_reach_the_gateway_once_and_in_order()
-> anyhow::Result<()> {
    const PICKUPS: usize = 1_000;
    const DROP_OFFS: usize = 100;
    const DECISIONS: usize = 2 * (PICKUPS + DROP_OFFS);
    let clock = ManualClock::new(lockergrid_protocol::Timestamp(1_796_083_200_000));
    const STATIONS: [&str; 3] = ["st-b", "st-c", "st-d"];
    let d = Deployment::new()
        .station("st-b", 900)
        .station("st-c", 900)
        .station("st-d", 900)
        .clock(clock.clone())
        .lockers(Duration::from_millis(500))
        .edge("edge-b", &STATIONS)
        .lease(LeasePool {
            small: 0,
            medium: 40,
            large: 0,
            oversized: 0,
        })
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let store = &d.gateway.app.store;
    // Returns authorised at checkout before the cut, to be dropped off during it.
    let mut returns = Vec::new();
    for n in 0..DROP_OFFS {
        let body = serde_json::json!({
            "order_id": format!("return-{n}"),
            "station_id": STATIONS[n % STATIONS.len()],
            "parcel": small_parcel(),
            "recipient": d.customer(&format!("return-{n}")),
        });
        let url = format!("{}/v1/returns", d.base);
        let (status, r) = d
            .send(d.http.post(url).bearer_auth(&checkout).json(&body))
            .await?;
        assert_eq!(status, 201, "{r}");
        let id = r["id"].as_str().unwrap().to_owned();
        let code = d.dropoff_code(&id).await?;
        returns.push((id, code, STATIONS[n % STATIONS.len()]));
    }
    let parcels: Vec<(ParcelId, String, String)> = d
        .stock(&STATIONS, PICKUPS)
        .await?
        .into_iter()
        .map(|(parcel, code, compartment)| {
            (parcel, code.reveal().to_owned(), compartment.to_string())
        })
        .collect();
    let locker = |n: usize| {
        d.lockers
            .iter()
            .find(|l| l.station.as_str() == STATIONS[n % STATIONS.len()])
            .expect("a locker per station")
    };
    // The edge node holds its lease at every station, confirmed, and the returns.
    d.edge_until("edge-b", |e| {
        e["codes"] == PICKUPS && e["lag"] == 0 && leases_settled(e, STATIONS.len(), Some(40))
    })
    .await?;

    d.cut_uplink("edge-b").await?;
    // Checkout goes on at the gateway meanwhile; what it holds is never what the edge frees.
    let mut held_meanwhile = Vec::new();
    for n in 0..20 {
        let (status, r) = d
            .reserve(&checkout, &format!("meanwhile-{n}"), "st-b")
            .await?;
        assert_eq!(status, 201, "{r}");
        held_meanwhile.push(r["compartment_id"].as_str().unwrap().to_owned());
    }
    // Eight hours pass, an hour at a time, while the edge node decides every pickup.
    for (n, (_, code, compartment)) in parcels.iter().enumerate() {
        if n % (PICKUPS / 8) == 0 {
            clock.advance(Duration::from_secs(3_600));
        }
        pick_up_at(locker(n), code, compartment).await?;
    }
    // A hundred returns are dropped off meanwhile, each into a compartment of the lease.
    let mut dropped = Vec::new();
    for (_, code, station) in &returns {
        dropped.push(d.drop_off(station, code).await?);
    }
    let edge = d.edges[0].store();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while edge.edge_outbox_depth()? < DECISIONS as u64 {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "edge decisions missing"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let outbox = edge.edge_outbox(10 * DECISIONS)?;
    let seqs: Vec<u64> = outbox.iter().map(|d| d.seq).collect();
    assert_eq!(
        seqs,
        (1..=DECISIONS as u64).collect::<Vec<_>>(),
        "numbered without gaps"
    );
    let drop_order: Vec<String> = outbox
        .iter()
        .filter_map(|d| match &d.decision {
            Decision::ReturnDroppedOff { return_id, .. } => Some(return_id.to_string()),
            _ => None,
        })
        .collect();
    // Door-closed events of different stations' lockers reach the edge node in either order,
    // so the drop-offs are compared as a set here and the edge's own order is what the gateway
    // must keep.
    let mut decided_drops = drop_order.clone();
    decided_drops.sort();
    let mut authorised: Vec<String> = returns.iter().map(|(id, _, _)| id.clone()).collect();
    authorised.sort();
    assert_eq!(decided_drops, authorised, "each drop-off decided once");
    let order: Vec<ParcelId> = outbox
        .iter()
        .filter_map(|d| match &d.decision {
            Decision::PickedUp { parcel, .. } => Some(parcel.clone()),
            _ => None,
        })
        .collect();

    // The link returns: within 60 s every pickup is at the gateway, once, in the edge's order.
    let restored = std::time::Instant::now();
    d.uplink("edge-b")?.restore();
    loop {
        let e = d.edge_until("edge-b", |_| true).await?;
        if e["decisions_applied"] == DECISIONS && e["outbox"] == 0 && e["lag"] == 0 {
            break;
        }
        let took = restored.elapsed();
        assert!(
            took < Duration::from_secs(60),
            "not drained in {took:?}: {e}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = d.access_log(&operator).await?;
    let applied: Vec<String> = log
        .iter()
        .filter(|e| e["action"] == "pickup" && e["actor"]["subject"] == "edge:edge-b")
        .map(|e| e["target"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = order.iter().map(|p| p.to_string()).collect();
    assert_eq!(applied, expected, "each pickup once, in the order decided");
    for (parcel, _, _) in &parcels {
        let status = store.parcel(parcel)?.map(|p| p.status);
        assert_eq!(status, Some(ParcelStatus::PickedUp));
    }
    let drops_applied: Vec<String> = log
        .iter()
        .filter(|e| e["action"] == "return_dropoff" && e["actor"]["subject"] == "edge:edge-b")
        .map(|e| e["target"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(drops_applied, drop_order, "each drop-off once, in order");
    for ((id, _, _), compartment) in returns.iter().zip(&dropped) {
        let record = store
            .return_record(&lockergrid_protocol::ReturnId::new(id.as_str())?)?
            .expect("the return");
        assert_eq!(record.status, ReturnStatus::DroppedOff, "{id}");
        assert_eq!(
            record.compartment_id.as_ref().map(|c| c.as_str()),
            Some(compartment.as_str())
        );
    }
    // No compartment was held by two parties: each return has a compartment of its own, none
    // of them one checkout held meanwhile or one the edge freed; what checkout holds is still
    // held by its reservations, what the lease holds (topped up again) by the lease, and every
    // other one the edge freed is free.
    let edge_view = d
        .edge_until("edge-b", |e| leases_settled(e, STATIONS.len(), None))
        .await?;
    let drop_set: BTreeSet<&str> = dropped.iter().map(String::as_str).collect();
    assert_eq!(drop_set.len(), DROP_OFFS, "one compartment per return");
    let freed: BTreeSet<&str> = parcels.iter().map(|(_, _, c)| c.as_str()).collect();
    assert!(held_meanwhile.iter().all(|c| !freed.contains(c.as_str())));
    assert!(
        held_meanwhile
            .iter()
            .all(|c| !drop_set.contains(c.as_str()))
    );
    assert!(drop_set.iter().all(|c| !freed.contains(c)));
    for id in STATIONS {
        let url = format!("{}/v1/stations/{id}", d.base);
        let (_, station) = d.send(d.http.get(url).bearer_auth(&checkout)).await?;
        let small = &station["sizes"]["small"]["states"];
        let medium = &station["sizes"]["medium"]["states"];
        assert_eq!(small["occupied"], 0, "{station}");
        let held = if id == "st-b" {
            held_meanwhile.len()
        } else {
            0
        };
        assert_eq!(small["reserved"], held, "{station}");
        let drops_here = returns.iter().filter(|(_, _, s)| *s == id).count();
        assert_eq!(medium["return_pending"], drops_here, "{station}");
        let leased = edge_view["leases"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["station"] == id))
            .map_or(0, |l| l["sizes"]["medium"].as_u64().unwrap_or(0));
        assert_eq!(medium["reserved"], leased, "{station} {edge_view}");
    }
    mirror_converges(&d, 0).await?;
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_edge_node_down_too_lockers_decide_from_their_own_cache() -> anyhow::Result<()> {
    let mut d = edge_b(20).await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let stored = deposit_parcels(&d, "st-b", 4).await?;
    // The edge node keeps the locker's own cache current: four codes and the station's key.
    d.locker_until("st-b", |s| s["cached_codes"] == 4).await?;

    d.edges.remove(0).stop().await;
    d.locker_until("st-b", |s| s["connected"] == false).await?;
    for (_, code, compartment) in &stored[..3] {
        pick_up_at(&d.lockers[0], code, compartment).await?;
    }
    // Each pickup waits in the locker's queue: the pickup itself, the door opening and closing.
    d.locker_until("st-b", |s| s["queued_events"] == 9).await?;
    // A spent code opens nothing: the locker has crossed it out, and queues the entry, hashed,
    // for a node to refuse once one answers.
    let locker = &d.lockers[0];
    locker
        .hardware
        .lock()
        .unwrap()
        .press(&format!("{}#", stored[0].1))?;
    d.locker_until("st-b", |s| s["queued_events"] == 10).await?;
    assert!(locker.hardware.lock().unwrap().unlatched().is_empty());
    let status = d.locker_until("st-b", |s| s["cached_codes"] == 1).await?;
    assert_eq!(status["connected"], false);
    assert!(status["queued_events"].as_u64() >= Some(10), "{status}");
    for (parcel, _, _) in &stored {
        let url = format!("{}/v1/parcels/{parcel}", d.base);
        let (_, p) = d.send(d.http.get(url).bearer_auth(&checkout)).await?;
        assert_eq!(p["status"], "stored", "nobody has heard yet: {p}");
    }

    // The edge node returns: the locker's queue reaches the gateway through it, in order.
    let edge = d.start_edge("edge-b").await?;
    d.edges.push(edge);
    d.locker_until("st-b", |s| {
        s["connected"] == true && s["queued_events"] == 0
    })
    .await?;
    for (n, (parcel, _, _)) in stored.iter().enumerate() {
        let url = format!("{}/v1/parcels/{parcel}", d.base);
        let want = if n < 3 { "picked_up" } else { "stored" };
        d.get_until(&url, &checkout, |p| p["status"] == want)
            .await?;
    }
    let log = d.access_log(&operator).await?;
    for (parcel, _, _) in &stored[..3] {
        let pickups = log
            .iter()
            .filter(|e| e["action"] == "pickup" && e["target"] == parcel.as_str())
            .count();
        assert_eq!(pickups, 1, "{parcel}");
    }
    let rejected = log
        .iter()
        .filter(|e| e["action"] == "pickup" && e["outcome"] == "code_rejected")
        .count();
    assert_eq!(
        rejected, 1,
        "the spent code, refused again when the gateway heard it"
    );
    d.locker_until("st-b", |s| s["cached_codes"] == 1).await?;
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_the_edge_node_locks_a_station_after_five_wrong_codes() -> anyhow::Result<()> {
    let d = edge_b(20).await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let stored = deposit_parcels(&d, "st-b", 1).await?;
    d.edge_until("edge-b", |e| e["codes"] == 1 && e["lag"] == 0)
        .await?;
    d.cut_uplink("edge-b").await?;

    // Five wrong codes (one of them not even a code), then the right one: locked out.
    for wrong in ["00000001", "00000002", "123", "00000003", "00000004"] {
        assert_eq!(d.locker("st-b", &format!("press {wrong}#")).await?, "ok");
        d.locker_until("st-b", |s| s["queued_events"] == 0).await?;
    }
    let (parcel, code, _) = &stored[0];
    assert_eq!(d.locker("st-b", &format!("press {code}#")).await?, "ok");

    // Back online: the refusals are on record at the gateway, the parcel still stored.
    d.uplink("edge-b")?.restore();
    d.edge_until("edge-b", |e| {
        e["connected"] == true && e["outbox"] == 0 && e["decisions_applied"] == 6
    })
    .await?;
    let log = d.access_log(&operator).await?;
    let outcome = |e: &serde_json::Value| e["outcome"].as_str().unwrap_or_default().to_owned();
    let refusals: Vec<String> = log
        .iter()
        .filter(|e| e["action"] == "pickup" && e["target"] == "st-b")
        .map(outcome)
        .collect();
    assert_eq!(refusals.len(), 6, "{refusals:?}");
    assert!(refusals[..5].iter().all(|o| o.starts_with("code_rejected")));
    assert_eq!(refusals[5], "locked_out");
    let url = format!("{}/v1/parcels/{parcel}", d.base);
    let (_, p) = d.send(d.http.get(url).bearer_auth(&checkout)).await?;
    assert_eq!(p["status"], "stored", "{p}");
    let status = d.locker_until("st-b", |s| s["queued_events"] == 0).await?;
    assert_eq!(status["executed"], 1, "the deposit's unlock only: {status}");
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposit_whose_door_closes_during_a_cut_is_stored_once_the_gateway_hears()
-> anyhow::Result<()> {
    let d = edge_b(20).await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-b"])?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let (status, r) = d.reserve(&checkout, "cut-deposit", "st-b").await?;
    assert_eq!(status, 201, "{r}");
    let (id, parcel) = (r["id"].as_str().unwrap(), r["parcel_id"].as_str().unwrap());
    let compartment = r["compartment_id"].as_str().unwrap();

    // The unlock goes out while the link is up; the agent does not wait for the door.
    let url = format!("{}/v1/reservations/{id}/deposit", d.base);
    let request = d
        .http
        .post(url)
        .bearer_auth(&agent)
        .header("prefer", "wait=0");
    let (status, body) = d.send(request).await?;
    assert_eq!(status, 202, "{body}");
    d.locker_until("st-b", |s| {
        s["unlatched"]
            .as_array()
            .is_some_and(|u| u.iter().any(|c| c == compartment))
    })
    .await?;
    d.cut_uplink("edge-b").await?;

    // The door closes during the cut: the edge node takes the event and keeps it as a decision
    // for the gateway, which alone issues the code.
    for verb in ["open", "close"] {
        let answer = d.locker("st-b", &format!("{verb} {compartment}")).await?;
        assert_eq!(answer, "ok", "{verb}");
    }
    let edge = d.edges[0].store();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !edge
        .edge_outbox(10)?
        .iter()
        .any(|d| matches!(d.decision, Decision::ForwardedDoorClosed { .. }))
    {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no decision");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.locker_until("st-b", |s| s["queued_events"] == 0).await?;
    let url = format!("{}/v1/parcels/{parcel}", d.base);
    let (_, p) = d.send(d.http.get(&url).bearer_auth(&checkout)).await?;
    assert_eq!(p["status"], "reserved", "the gateway has not heard: {p}");

    // The link returns: the gateway completes the deposit once.
    d.uplink("edge-b")?.restore();
    d.get_until(&url, &checkout, |p| p["status"] == "stored")
        .await?;
    d.edge_until("edge-b", |e| e["outbox"] == 0 && e["lag"] == 0)
        .await?;
    let log = d.access_log(&operator).await?;
    let deposits = log
        .iter()
        .filter(|e| e["action"] == "deposit" && e["target"] == parcel)
        .count();
    assert_eq!(deposits, 1);
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_an_edge_node_puts_its_lockers_heartbeats_to_the_site_rules_itself()
-> anyhow::Result<()> {
    let d = edge_b(10).await?;
    d.edge_until("edge-b", |e| e["lag"] == 0).await?;
    d.cut_uplink("edge-b").await?;
    assert_eq!(d.locker("st-b", "battery 9").await?, "ok");
    let station = StationId::new("st-b")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let open = d.edges[0].store().open_alerts_at(&station)?;
        if let Some(alert) = open.iter().find(|a| a.code == "battery-low") {
            assert_eq!(alert.severity, lockergrid_model::Severity::Warning);
            assert_eq!(
                alert.decided_by.as_ref().map(|b| b.plugin.as_str()),
                Some("site-rules-standard")
            );
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no alert at the edge: {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.stop().await
}
