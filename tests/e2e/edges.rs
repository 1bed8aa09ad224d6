//! Edge nodes over their real uplink (MQTT over TLS 1.3 with an edge certificate): each mirrors
//! exactly the records of the stations it serves, follows every change at the gateway, catches
//! up with deltas after a restart, and operators see its state over HTTP and in the metrics.

use lockergrid_gateway::auth::Role;
use lockergrid_protocol::StationId;
use lockergrid_tests::{Deployment, Running};
use std::collections::BTreeSet;
use std::time::Duration;

fn served() -> BTreeSet<StationId> {
    [StationId::new("st-b").unwrap()].into_iter().collect()
}

/// Waits until the edge node's mirror equals the gateway's records for its stations.
async fn mirror_converges(d: &Running, edge: usize) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let want = d.gateway.app.store.mirror_items(&served())?;
        let have = d.edges[edge].store().mirror_items(&served())?;
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
    assert!(edge["last_sync"].as_str().is_some(), "{edge}");

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

    let edge = d.start_edge("edge-b")?;
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
