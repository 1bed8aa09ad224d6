//! The plugin platform over HTTP: the default plugins decide and are named in the access log,
//! bad pushes are refused, swaps under load fail nothing, and hostile plugins are contained.

use base64::Engine as _;
use lockergrid_gateway::auth::Role;
use lockergrid_model::{Binding, BindingLimits, PluginSigner, sha256_hex};
use lockergrid_plugin_artifacts as artifacts;
use lockergrid_tests::{Deployment, Running, small_parcel};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The same component with a custom section appended: other bytes, other digest, same code.
fn variant(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = b"lockergrid-variant";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0);
    let mut len = payload.len();
    loop {
        let byte = (len & 0x7f) as u8;
        len >>= 7;
        if len == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    out.extend_from_slice(&payload);
    out
}

/// A plugin push as an operator's tool sends it.
pub(crate) struct Push<'a> {
    pub world: &'a str,
    pub scope: &'a str,
    pub name: &'a str,
    pub version: &'a str,
    pub bytes: &'a [u8],
    pub sha256: String,
    pub signature: Option<String>,
}

impl<'a> Push<'a> {
    pub(crate) fn signed(
        signer: &PluginSigner,
        world: &'a str,
        name: &'a str,
        version: &'a str,
        bytes: &'a [u8],
    ) -> Push<'a> {
        let mut push = Push {
            world,
            scope: "default",
            name,
            version,
            bytes,
            sha256: sha256_hex(bytes),
            signature: None,
        };
        push.sign(signer);
        push
    }

    /// Signs the binding as it now stands (world, scope, name, version, sha256; default
    /// settings and limits).
    pub(crate) fn sign(&mut self, signer: &PluginSigner) {
        let binding = Binding {
            world: self.world.parse().expect("a world"),
            scope: self.scope.parse().expect("a scope"),
            name: self.name.into(),
            version: self.version.into(),
            file: None,
            sha256: Some(self.sha256.clone()),
            settings: Default::default(),
            limits: BindingLimits::default(),
            signature: None,
        };
        self.signature = Some(signer.sign(&binding).to_string());
    }

    pub(crate) async fn send(&self, d: &Running, operator: &str) -> anyhow::Result<(u16, Value)> {
        let body = json!({
            "world": self.world,
            "scope": self.scope,
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "signature": self.signature,
            "component": base64::engine::general_purpose::STANDARD.encode(self.bytes),
        });
        d.send(
            d.http
                .post(format!("{}/v1/admin/plugins", d.base))
                .bearer_auth(operator)
                .json(&body),
        )
        .await
    }
}

async fn slots(d: &Running, operator: &str) -> anyhow::Result<Vec<Value>> {
    let (status, body) = d
        .send(
            d.http
                .get(format!("{}/v1/admin/plugins", d.base))
                .bearer_auth(operator),
        )
        .await?;
    anyhow::ensure!(status == 200, "{status} {body}");
    Ok(body["slots"].as_array().cloned().unwrap_or_default())
}

fn slot<'a>(slots: &'a [Value], world: &str, scope: &str) -> &'a Value {
    slots
        .iter()
        .find(|s| s["world"] == world && s["scope"] == scope)
        .unwrap_or_else(|| panic!("no slot {world} at {scope} in {slots:?}"))
}

async fn reserve_near(d: &Running, token: &str, key: &str) -> anyhow::Result<(u16, Value)> {
    let body = json!({
        "order_id": format!("order-{key}"),
        "parcel": small_parcel(),
        "tier": "standard",
        "near": { "lat": 52.37, "lon": 4.90, "radius_m": 5_000.0 },
    });
    d.send(
        d.http
            .post(format!("{}/v1/reservations", d.base))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(&body),
    )
    .await
}

#[tokio::test]
async fn the_default_plugins_decide_and_every_decision_names_its_plugin() -> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 40)
        .station("st-b", 40)
        .lockers(Duration::from_secs(1))
        .start()
        .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let slots = slots(&d, &operator).await?;
    for (world, name, bytes) in [
        (
            "reservation-policy",
            "reservation-balanced",
            artifacts::RESERVATION_BALANCED,
        ),
        (
            "notification-router",
            "notify-multichannel",
            artifacts::NOTIFY_MULTICHANNEL,
        ),
        (
            "site-rules",
            "site-rules-standard",
            artifacts::SITE_RULES_STANDARD,
        ),
    ] {
        let s = slot(&slots, world, "default");
        assert_eq!(s["state"], "serving", "{s}");
        assert_eq!(s["plugin"]["name"], name);
        assert_eq!(s["plugin"]["digest"], sha256_hex(bytes));
        assert_eq!(s["plugin"]["signed_by"], "deployment");
    }

    let checkout = d.token("shop", Role::Checkout, &[])?;
    let (status, r) = reserve_near(&d, &checkout, "k-1").await?;
    assert_eq!(status, 201, "{r}");
    let agent = d.token("courier", Role::Agent, &["st-a", "st-b"])?;
    let id = r["id"].as_str().expect("id");
    let (status, deposit) = d.deposit(&agent, id).await?;
    assert_eq!(status, 200, "{deposit}");

    let log = d.access_log(&operator).await?;
    let decided = |action: &str| {
        log.iter()
            .find(|e| e["action"] == action)
            .map(|e| e["decided_by"].clone())
            .unwrap_or_else(|| panic!("no {action} in {log:?}"))
    };
    let reserve = decided("reserve");
    assert_eq!(reserve["world"], "reservation-policy");
    assert_eq!(reserve["plugin"], "reservation-balanced");
    assert_eq!(reserve["version"], "0.1.0");
    assert_eq!(
        reserve["digest"],
        sha256_hex(artifacts::RESERVATION_BALANCED)
    );
    let deposit = decided("deposit");
    assert_eq!(deposit["world"], "site-rules");
    assert_eq!(deposit["plugin"], "site-rules-standard");

    let metrics = d.metrics().await?;
    assert!(
        metrics.contains("lockergrid_plugin_calls_total{world=\"reservation-policy\",scope=\"default\",plugin=\"reservation-balanced\",version=\"0.1.0\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("lockergrid_plugin_call_duration_seconds_bucket"));
    d.stop().await
}

#[tokio::test]
async fn unsigned_badly_signed_mispinned_and_wrong_world_plugins_are_refused() -> anyhow::Result<()>
{
    let d = Deployment::new().station("st-a", 10).start().await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let signer = d.plugin_signer()?;
    let v2 = variant(artifacts::RESERVATION_BALANCED, "2");
    let policy = "reservation-policy";
    let good = || Push::signed(&signer, policy, "reservation-balanced", "0.2.0", &v2);

    let mut unsigned = good();
    unsigned.signature = None;
    let mut foreign = good();
    foreign.sign(&PluginSigner::from_secret([9; 32]));
    let mut other_bytes = good();
    other_bytes.sha256 = sha256_hex(artifacts::RESERVATION_BALANCED);
    other_bytes.sign(&signer);
    other_bytes.sha256 = sha256_hex(&v2);
    let mut moved = good();
    moved.scope = "station:st-a";
    let mut mispinned = good();
    mispinned.sha256 = sha256_hex(artifacts::RESERVATION_BALANCED);
    let wrong_world = Push::signed(&signer, "site-rules", "reservation-balanced", "0.2.0", &v2);
    for (push, reason) in [
        (unsigned, "unsigned"),
        (foreign, "untrusted-key"),
        (other_bytes, "bad-signature"),
        (moved, "bad-signature"),
        (mispinned, "digest-mismatch"),
        (wrong_world, "wrong-world"),
    ] {
        let (status, body) = push.send(&d, &operator).await?;
        assert_eq!(status, 422, "{reason}: {body}");
        assert_eq!(body["type"], "urn:lockergrid:problem:plugin-refused");
        assert_eq!(body["reason"], reason, "{body}");
    }
    let shop = d.token("shop", Role::Checkout, &[])?;
    let (status, body) = good().send(&d, &shop).await?;
    assert_eq!(status, 403, "only operators push: {body}");

    let slots = slots(&d, &operator).await?;
    let s = slot(&slots, policy, "default");
    assert_eq!(
        s["plugin"]["digest"],
        sha256_hex(artifacts::RESERVATION_BALANCED),
        "the old version keeps serving"
    );
    let (status, body) = good().send(&d, &operator).await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["plugin"]["digest"], sha256_hex(&v2));
    d.stop().await
}

#[tokio::test]
async fn a_hundred_swaps_under_load_fail_no_request_and_each_decision_names_one_of_two_versions()
-> anyhow::Result<()> {
    let d = Arc::new(
        Deployment::new()
            .station("st-a", 100)
            .station("st-b", 100)
            .start()
            .await?,
    );
    let operator = d.token("ops", Role::Operator, &[])?;
    let signer = d.plugin_signer()?;
    let versions = [
        ("1.0.0-a", variant(artifacts::RESERVATION_BALANCED, "a")),
        ("1.0.0-b", variant(artifacts::RESERVATION_BALANCED, "b")),
    ];
    let swap = |i: usize| {
        let (version, bytes) = &versions[i % 2];
        Push::signed(
            &signer,
            "reservation-policy",
            "reservation-balanced",
            version,
            bytes,
        )
    };
    let (status, body) = swap(0).send(&d, &operator).await?;
    assert_eq!(status, 201, "{body}");

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (d, stop, done) = (d.clone(), stop.clone(), done.clone());
            let token = d.token("load", Role::Checkout, &[]).expect("token");
            tokio::spawn(async move {
                let mut failures = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let (status, r) = reserve_near(&d, &token, &format!("c{c}-{n}"))
                        .await
                        .expect("reserve sent");
                    if status != 201 {
                        failures.push(format!("reserve {status} {r}"));
                        continue;
                    }
                    let url = format!(
                        "{}/v1/reservations/{}",
                        d.base,
                        r["id"].as_str().expect("id")
                    );
                    let (status, body) = d
                        .send(d.http.delete(url).bearer_auth(&token))
                        .await
                        .expect("release sent");
                    if status != 200 {
                        failures.push(format!("release {status} {body}"));
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect();
    for i in 1..100 {
        let (status, body) = swap(i).send(&d, &operator).await?;
        assert_eq!(status, 201, "swap {i}: {body}");
    }
    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await?);
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let reservations = done.load(Ordering::Relaxed);
    assert!(
        reservations >= 100,
        "only {reservations} reservations during the swaps"
    );

    let allowed: BTreeSet<(String, String)> = versions
        .iter()
        .map(|(v, bytes)| (v.to_string(), sha256_hex(bytes)))
        .collect();
    let log = d.access_log(&operator).await?;
    let mut seen = BTreeSet::new();
    let mut decisions = 0;
    for e in log
        .iter()
        .filter(|e| e["action"] == "reserve" && e["actor"]["subject"] == "load")
    {
        let by = &e["decided_by"];
        let version = (
            by["version"].as_str().unwrap_or_default().to_owned(),
            by["digest"].as_str().unwrap_or_default().to_owned(),
        );
        assert!(allowed.contains(&version), "decided by {by}");
        seen.insert(version);
        decisions += 1;
    }
    assert_eq!(decisions, reservations);
    assert_eq!(seen.len(), 2, "both versions decided something");
    Arc::try_unwrap(d)
        .map_err(|_| anyhow::anyhow!("clients still hold the deployment"))?
        .stop()
        .await
}

fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[tokio::test]
async fn hostile_plugins_are_contained_and_requests_keep_flowing() -> anyhow::Result<()> {
    let d = Arc::new(
        Deployment::new()
            .station("st-a", 200)
            .station("st-b", 200)
            .lockers(Duration::from_secs(1))
            .start()
            .await?,
    );
    let operator = d.token("ops", Role::Operator, &[])?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a", "st-b"])?;
    let signer = d.plugin_signer()?;
    let before = resident_bytes();
    let hostile = [
        ("loop", artifacts::MISBEHAVE_LOOP),
        ("recursion", artifacts::MISBEHAVE_RECURSION),
        ("memory", artifacts::MISBEHAVE_MEMORY),
        ("trap", artifacts::MISBEHAVE_TRAP),
        ("unknown-station", artifacts::MISBEHAVE_UNKNOWN_STATION),
        ("huge-answer", artifacts::MISBEHAVE_HUGE_ANSWER),
    ];
    let mut n = 0;
    for (name, bytes) in hostile {
        let push = Push::signed(&signer, "reservation-policy", name, "6.6.6", bytes);
        let (status, body) = push.send(&d, &operator).await?;
        assert_eq!(status, 201, "{name} behaves through the fixtures: {body}");
        for round in 0..3 {
            // While the plugin misbehaves, a deposit (site rules, another plugin) goes through.
            n += 1;
            let (status, r) = reserve_near(&d, &checkout, &format!("{name}-{round}")).await?;
            assert_eq!(status, 201, "{name}: {r}");
            let id = r["id"].as_str().expect("id").to_owned();
            let deposit = d.deposit(&agent, &id);
            let (discovery, deposited) = tokio::join!(
                d.send(
                    d.http
                        .get(format!(
                            "{}/v1/stations?lat=52.37&lon=4.9&radius_m=5000&size=small",
                            d.base
                        ))
                        .bearer_auth(&checkout)
                ),
                async { deposit.await.expect("deposit sent") }
            );
            let (status, listed) = discovery?;
            assert_eq!(status, 200, "{listed}");
            assert_eq!(listed["ranked_by"]["plugin"], "built-in", "{listed}");
            // On a loaded machine the door may close after the request stopped waiting (202):
            // the deposit still completes when it does.
            assert!(matches!(deposited.0, 200 | 202), "{name}: {}", deposited.1);
            let url = format!("{}/v1/reservations/{id}", d.base);
            d.get_until(&url, &agent, |r| r["status"] == "deposited")
                .await?;
        }
    }
    let log = d.access_log(&operator).await?;
    let fallbacks: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "reserve")
        .map(|e| &e["decided_by"])
        .collect();
    assert_eq!(fallbacks.len(), n);
    for by in &fallbacks {
        assert_eq!(by["plugin"], "built-in", "{by}");
        assert!(by["fallback"].is_string(), "the reason is recorded: {by}");
    }

    // Failures in a row take the last one out of service; an operator puts it back.
    let slots = slots(&d, &operator).await?;
    let s = slot(&slots, "reservation-policy", "default");
    assert_eq!(s["state"], "out_of_service", "{s}");
    assert!(s["failures"].as_u64().unwrap_or(0) >= 5, "{s}");
    let (status, body) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/plugins/restore", d.base))
                .bearer_auth(&operator)
                .json(&json!({ "world": "reservation-policy", "scope": "default" })),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plugin"]["name"], "huge-answer");

    let grown = resident_bytes().saturating_sub(before);
    assert!(
        grown < 512 << 20,
        "the process grew by {} MiB during the attack",
        grown >> 20
    );
    Arc::try_unwrap(d)
        .map_err(|_| anyhow::anyhow!("still shared"))?
        .stop()
        .await
}

#[tokio::test]
async fn broken_site_rules_keep_a_station_shut_until_an_operator_overrides_them()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 10)
        .lockers(Duration::from_secs(1))
        .start()
        .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a"])?;
    let screen = d.token("screen", Role::Station, &["st-a"])?;
    let (status, r) = d.reserve(&checkout, "k-1", "st-a").await?;
    assert_eq!(status, 201, "{r}");
    let (status, deposit) = d.deposit(&agent, r["id"].as_str().expect("id")).await?;
    assert_eq!(status, 200, "{deposit}");
    let code = d
        .pickup_code(deposit["parcel_id"].as_str().expect("parcel"))
        .await?;

    let mut push = Push::signed(
        &d.plugin_signer()?,
        "site-rules",
        "broken-rules",
        "6.6.6",
        artifacts::MISBEHAVE_SITE_TRAP,
    );
    push.scope = "station:st-a";
    push.sign(&d.plugin_signer()?);
    let (status, body) = push.send(&d, &operator).await?;
    assert_eq!(status, 201, "it answers the fixtures: {body}");
    let enter = || {
        d.send(
            d.http
                .post(format!("{}/v1/stations/st-a/code-entry", d.base))
                .bearer_auth(&screen)
                .json(&json!({ "code": code })),
        )
    };
    let (status, problem) = enter().await?;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "urn:lockergrid:problem:site-rules-denied");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("broken-rules 6.6.6 failed") && d.contains("stays shut")),
        "{problem}"
    );

    let url = format!("{}/v1/admin/stations/st-a/site-rules-override", d.base);
    let (status, refused) = d
        .send(
            d.http
                .put(&url)
                .bearer_auth(&checkout)
                .json(&json!({ "reason": "x", "minutes": 30 })),
        )
        .await?;
    assert_eq!(status, 403, "operators alone override: {refused}");
    let (status, refused) = d
        .send(
            d.http
                .put(&url)
                .bearer_auth(&operator)
                .json(&json!({ "reason": "release 6.6.6 is broken", "minutes": 10_000 })),
        )
        .await?;
    assert_eq!(status, 422, "a day at most: {refused}");
    let (status, set) = d
        .send(
            d.http
                .put(&url)
                .bearer_auth(&operator)
                .json(&json!({ "reason": "release 6.6.6 is broken", "minutes": 30 })),
        )
        .await?;
    assert_eq!(status, 200, "{set}");
    assert_eq!(set["site_rules_override"]["by"], "ops");
    let (status, pickup) = enter().await?;
    assert_eq!(status, 200, "{pickup}");
    assert_eq!(pickup["status"], "unlocking");

    let log = d.access_log(&operator).await?;
    assert!(
        log.iter().any(|e| e["action"] == "site_rules_override"
            && e["actor"]["subject"] == "ops"
            && e["target"] == "st-a"),
        "the override is on record"
    );
    let opened = log
        .iter()
        .filter_map(|e| e["decided_by"]["fallback"].as_str())
        .find(|f| f.contains("opened under the override of ops"))
        .unwrap_or_else(|| panic!("no pickup names the override in {log:?}"));
    assert!(opened.contains("release 6.6.6 is broken"), "{opened}");

    let (status, ended) = d.send(d.http.delete(&url).bearer_auth(&operator)).await?;
    assert_eq!(status, 200, "{ended}");
    assert!(ended["site_rules_override"].is_null());
    d.stop().await
}
