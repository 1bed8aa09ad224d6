//! Plugins at the edge node: the site rules the gateway binds reach it over its sync and decide
//! there; a version signed by a key the edge node was not enrolled with is refused there while
//! the gateway runs it; and a pickup decided offline by an older version is kept at the gateway
//! with that version on record.

use crate::edges::deposit_parcels;
use crate::plugins::Push;
use lockergrid_gateway::auth::Role;
use lockergrid_model::PluginSigner;
use lockergrid_plugin_artifacts as artifacts;
use lockergrid_tests::{Deployment, Running};
use serde_json::{Value, json};
use std::time::Duration;

const STATION: &str = "st-p";
const SLOT: &str = "station:st-p";

/// The edge node's report of the site rules at `scope`.
fn site_rules<'a>(edge: &'a Value, scope: &str) -> Option<&'a Value> {
    edge["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["world"] == "site-rules" && p["scope"] == scope)
}

/// Pushes the standard site rules as `version` at this test's station, signed by `signer`.
async fn push(
    d: &Running,
    operator: &str,
    signer: &PluginSigner,
    version: &str,
) -> anyhow::Result<()> {
    let bytes = artifacts::SITE_RULES_STANDARD;
    let mut push = Push::signed(signer, "site-rules", "site-rules-standard", version, bytes);
    push.scope = SLOT;
    push.sign(signer);
    let (status, body) = push.send(d, operator).await?;
    anyhow::ensure!(status == 201, "push {version}: {status} {body}");
    Ok(())
}

/// The access log's pickup of `parcel`, which must be there once.
fn pickup<'a>(log: &'a [Value], parcel: &str) -> &'a Value {
    let pickups: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "pickup" && e["target"] == parcel)
        .collect();
    assert_eq!(pickups.len(), 1, "{parcel}: {pickups:?}");
    pickups[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_rules_swapped_at_the_gateway_decide_at_the_edge_and_untrusted_ones_are_refused_there()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station(STATION, 20)
        .lockers(Duration::from_millis(500))
        .edge("edge-p", &[STATION])
        .start()
        .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let deployment_key = d.plugin_signer()?;

    // The default site rules arrive with the first sync and serve there.
    let edge = d
        .edge_until("edge-p", |e| {
            site_rules(e, "default").is_some_and(|p| p["serving"]["version"] == "0.1.0")
        })
        .await?;
    assert!(site_rules(&edge, SLOT).is_none(), "{edge}");
    let stored = deposit_parcels(&d, STATION, 2).await?;

    // A new version bound to the station at the gateway reaches the edge node and serves there.
    push(&d, &operator, &deployment_key, "0.2.0").await?;
    d.edge_until("edge-p", |e| {
        site_rules(e, SLOT).is_some_and(|p| p["serving"]["version"] == "0.2.0")
    })
    .await?;

    // The gateway is told to trust one more key and runs a version signed with it; the edge
    // node, enrolled before, refuses that version and keeps 0.2.0.
    let ops = PluginSigner::from_secret([11; 32]);
    let url = format!("{}/v1/admin/plugins/trusted-keys", d.base);
    let key = json!({ "name": "ops-2026", "public_key": ops.public_hex() });
    let (status, body) = d
        .send(d.http.post(&url).bearer_auth(&operator).json(&key))
        .await?;
    assert_eq!(status, 200, "{body}");
    let bad = json!({ "name": "ops-2026", "public_key": "00" });
    let (status, body) = d
        .send(d.http.post(&url).bearer_auth(&operator).json(&bad))
        .await?;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["type"], "urn:lockergrid:problem:invalid-key", "{body}");
    push(&d, &operator, &ops, "0.3.0").await?;
    let edge = d
        .edge_until("edge-p", |e| {
            site_rules(e, SLOT).is_some_and(|p| p["refused"]["plugin"]["version"] == "0.3.0")
        })
        .await?;
    let slot = site_rules(&edge, SLOT).unwrap_or(&Value::Null);
    assert_eq!(slot["serving"]["version"], "0.2.0", "{edge}");
    let reason = slot["refused"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("not trusted"), "{reason}");

    // Offline, the edge node decides a pickup with the version it runs. The gateway moves on
    // to 0.4.0 meanwhile; the pickup is kept with 0.2.0 on record.
    d.cut_uplink("edge-p").await?;
    let (parcel, code, compartment) = &stored[0];
    assert_eq!(d.locker(STATION, &format!("press {code}#")).await?, "ok");
    d.open_and_close(STATION, compartment).await?;
    push(&d, &operator, &deployment_key, "0.4.0").await?;
    d.uplink("edge-p")?.restore();
    let edge = d
        .edge_until("edge-p", |e| {
            e["connected"] == true
                && e["outbox"] == 0
                && site_rules(e, SLOT).is_some_and(|p| p["serving"]["version"] == "0.4.0")
        })
        .await?;
    assert!(
        site_rules(&edge, SLOT).is_some_and(|p| p["refused"].is_null()),
        "{edge}"
    );
    let log = d.access_log(&operator).await?;
    let offline = pickup(&log, parcel);
    assert_eq!(offline["actor"]["subject"], "edge:edge-p", "{offline}");
    assert_eq!(offline["decided_by"]["plugin"], "site-rules-standard");
    assert_eq!(offline["decided_by"]["version"], "0.2.0", "{offline}");

    // Online again, the gateway decides with what it runs now.
    let (parcel, code, compartment) = &stored[1];
    assert_eq!(d.locker(STATION, &format!("press {code}#")).await?, "ok");
    d.open_and_close(STATION, compartment).await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let url = format!("{}/v1/parcels/{parcel}", d.base);
    d.get_until(&url, &checkout, |p| p["status"] == "picked_up")
        .await?;
    let log = d.access_log(&operator).await?;
    assert_eq!(pickup(&log, parcel)["decided_by"]["version"], "0.4.0");
    d.stop().await
}
