//! Firmware rollouts over simulated lockers on the real device plane: a signed image uploaded
//! to the gateway, rolled out in waves; each locker fetches it in chunks, installs it into its
//! inactive slot only while idle, boots it on trial and confirms it after its health check. A
//! pickup load runs throughout and none fails. A release whose latch driver breaks fails its
//! health check on the canary, which goes back by itself, and the rollout aborts before any
//! other locker installs it.

use base64::Engine as _;
use lockergrid_gateway::auth::Role;
use lockergrid_protocol::firmware::{FirmwareKey, FirmwareManifest, FirmwareVersion};
use lockergrid_tests::{Deployment, Running};
use serde_json::{Value, json};
use std::time::Duration;

const MODEL: &str = "lockergrid-sim-1";

/// An image of `len` bytes for the simulated locker; `fault` is a line the simulation acts on.
fn image(version: &str, fault: Option<&str>, len: usize) -> Vec<u8> {
    let mut bytes = format!("lockergrid-shim {version} for {MODEL}\n").into_bytes();
    if let Some(fault) = fault {
        bytes.extend_from_slice(format!("{fault}\n").as_bytes());
    }
    let mut x: u32 = 0x9e37_79b9;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push((x >> 24) as u8);
    }
    bytes
}

/// Signs `bytes` as `version` with anti-rollback counter 1 and uploads them.
async fn upload(
    d: &Running,
    operator: &str,
    key: &FirmwareKey,
    version: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<()> {
    upload_counted(d, operator, key, version, 1, bytes).await
}

/// Signs `bytes` as `version` with anti-rollback counter `counter` and uploads them.
async fn upload_counted(
    d: &Running,
    operator: &str,
    key: &FirmwareKey,
    version: &str,
    counter: u32,
    bytes: Vec<u8>,
) -> anyhow::Result<()> {
    let version: FirmwareVersion = version.parse().map_err(anyhow::Error::msg)?;
    let manifest = FirmwareManifest::of(
        &bytes,
        version,
        MODEL.into(),
        FirmwareVersion(0, 1, 0),
        counter,
    )
    .sign(key);
    let header = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&manifest)?);
    let (status, body) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/firmware", d.base))
                .bearer_auth(operator)
                .header("lockergrid-manifest", header)
                .body(bytes),
        )
        .await?;
    anyhow::ensure!(status == 201, "upload: {status} {body}");
    Ok(())
}

/// Reads rollout `id` until `done` holds (up to three minutes: fifty lockers take a while).
async fn rollout_until(
    d: &Running,
    operator: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let url = format!("{}/v1/admin/rollouts/{id}", d.base);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (_, body) = d.send(d.http.get(&url).bearer_auth(operator)).await?;
        if done(&body) {
            return Ok(body);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "gave up on rollout {id}: {}",
            body["totals"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn stations(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("st-{i:02}")).collect()
}

/// `n` stations of four compartments with simulated lockers that trust `key`, not started.
fn fleet(n: usize, key: &FirmwareKey) -> Deployment {
    let mut d = Deployment::new()
        .firmware_key(&key.public().to_hex())
        // Any hour is a quiet hour here; the rules' own hours are tested in the plugin's test.
        .setting("site-rules-standard", "update_hours", "00:00-24:00")
        .lockers(Duration::from_millis(200));
    for id in stations(n) {
        d = d.station(&id, 4);
    }
    d
}

/// Starts `d` and waits until its `n` lockers are registered and active.
async fn all_active(d: Deployment, n: usize) -> anyhow::Result<Running> {
    let d = d.start().await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    d.get_until(&format!("{}/v1/admin/devices", d.base), &operator, |b| {
        b["devices"]
            .as_array()
            .is_some_and(|all| all.len() == n && all.iter().all(|d| d["status"] == "active"))
    })
    .await?;
    Ok(d)
}

async fn deployment(n: usize, key: &FirmwareKey) -> anyhow::Result<Running> {
    all_active(fleet(n, key), n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_lockers_update_in_three_waves_while_every_pickup_goes_through() -> anyhow::Result<()>
{
    let key = FirmwareKey::from_secret(rand::random());
    let d = deployment(50, &key).await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let all = stations(50);
    let names: Vec<&str> = all.iter().map(String::as_str).collect();
    let stocked = d.stock(&names, 60).await?;
    upload(
        &d,
        &operator,
        &key,
        "0.2.0",
        image("0.2.0", None, 300 * 1024),
    )
    .await?;

    let (status, started) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/rollouts", d.base))
                .bearer_auth(&operator)
                .json(&json!({
                    "model": MODEL,
                    "version": "0.2.0",
                    "waves": [
                        { "percent": 10, "soak_s": 1, "on_error": "abort" },
                        { "percent": 50, "soak_s": 1 },
                        { "percent": 100, "soak_s": 0 },
                    ],
                    "timeout_s": 150,
                    "max_parallel": 10,
                })),
        )
        .await?;
    anyhow::ensure!(status == 201, "rollout: {status} {started}");
    let id = started["id"].as_str().unwrap_or_default().to_owned();
    let sizes: Vec<u64> = started["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| w["counts"]["lockers"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(sizes, [5, 20, 25]);

    // Customers pick their parcels up, one after another, for as long as the rollout runs,
    // and couriers fill each compartment again; every pickup must go through.
    let url = format!("{}/v1/admin/rollouts/{id}", d.base);
    let mut waiting: std::collections::VecDeque<_> = stocked.into_iter().collect();
    let mut failures = Vec::new();
    let mut picked = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let (_, now) = d.send(d.http.get(&url).bearer_auth(&operator)).await?;
        if now["status"] == "completed" {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the rollout did not complete: {}",
            now["totals"]
        );
        let Some((parcel, code, compartment)) = waiting.pop_front() else {
            anyhow::bail!("no parcel left to pick up");
        };
        let station = compartment.as_str().split(':').next().unwrap_or_default();
        let pickup = async {
            let pressed = d
                .locker(station, &format!("press {}#", code.reveal()))
                .await?;
            anyhow::ensure!(pressed == "ok", "press: {pressed}");
            d.open_and_close(station, compartment.as_str()).await?;
            d.get_until(&format!("{}/v1/parcels/{parcel}", d.base), &operator, |p| {
                p["status"] == "picked_up"
            })
            .await?;
            Ok(())
        };
        match pickup.await {
            Ok(()) => picked += 1,
            Err(e) => failures.push(format!("{parcel} at {station}: {e}")),
        }
        waiting.push_back(
            d.restock(station, &format!("{picked}-{}", failures.len()))
                .await?,
        );
    }
    let done = rollout_until(&d, &operator, &id, |r| r["status"] == "completed").await?;
    assert!(failures.is_empty(), "pickups failed: {failures:?}");
    assert!(picked > 0, "no pickup ran during the rollout");
    println!("{picked} pickups during the rollout, none failed");
    assert_eq!(done["totals"]["confirmed"], 50, "{}", done["totals"]);
    assert_eq!(done["totals"]["failed"], 0);

    // Every locker runs what it booted, and the registry has it from the heartbeats.
    for station in &all {
        let status = d
            .locker_until(station, |s| s["firmware"] == "0.2.0")
            .await?;
        assert_eq!(status["on_trial"], false, "{station}: {status}");
    }
    d.get_until(&format!("{}/v1/admin/devices", d.base), &operator, |b| {
        b["devices"]
            .as_array()
            .is_some_and(|all| all.iter().all(|d| d["firmware"] == "0.2.0"))
    })
    .await?;
    let log = d.access_log(&operator).await?;
    let waves = log
        .iter()
        .filter(|e| e["action"] == "rollout_wave_started" && e["target"] == id.as_str())
        .count();
    assert_eq!(waves, 2, "two waves after the first");
    let metrics = d.metrics().await?;
    let confirmed =
        format!("lockergrid_rollout_lockers{{rollout=\"{id}\",state=\"confirmed\"}} 50");
    assert!(
        metrics.contains(&confirmed),
        "no {confirmed} in the metrics"
    );
    assert!(metrics.contains("lockergrid_firmware_bytes_sent_total"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_that_fails_its_health_check_goes_back_and_no_other_locker_installs()
-> anyhow::Result<()> {
    let key = FirmwareKey::from_secret(rand::random());
    let d = deployment(10, &key).await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let broken = image("0.3.0", Some("lockergrid-sim-fault: self-test"), 100 * 1024);
    upload(&d, &operator, &key, "0.3.0", broken).await?;
    let waves = json!([
        { "percent": 10, "soak_s": 1, "on_error": "abort" },
        { "percent": 100, "soak_s": 1 },
    ]);
    let aborted = roll(&d, &operator, "0.3.0", waves, |r| {
        r["status"] == "aborted" && r["totals"]["cancelled"] == 9
    })
    .await?;
    assert!(
        aborted["reason"]
            .as_str()
            .is_some_and(|r| r.contains("wave 1")),
        "{aborted}"
    );
    let lockers = aborted["lockers"].as_array().cloned().unwrap_or_default();
    let canary: Vec<&Value> = lockers.iter().filter(|t| t["state"] == "failed").collect();
    assert_eq!(canary.len(), 1, "{lockers:?}");
    assert_eq!(canary[0]["reason"], "health-check-failed");
    let canary = canary[0]["station"].as_str().unwrap_or_default().to_owned();

    // The canary went back to the image it ran, by itself: a second boot, not on trial.
    let status = d
        .locker_until(&canary, |s| {
            s["firmware"] == "0.1.0" && s["on_trial"] == false && s["boots"] == 3
        })
        .await?;
    assert_eq!(status["connected"], true, "{status}");
    // No other locker ever booted it: each still on its first boot of the factory image.
    for station in stations(10).iter().filter(|s| **s != canary) {
        let status = d.locker(station, "status").await?;
        let status: Value = serde_json::from_str(status.trim_start_matches("ok "))?;
        assert_eq!(
            (status["firmware"].as_str(), status["boots"].as_u64()),
            (Some("0.1.0"), Some(1)),
            "{station}: {status}"
        );
    }
    let log = d.access_log(&operator).await?;
    let firmware_events: Vec<&Value> = log.iter().filter(|e| e["action"] == "firmware").collect();
    assert!(
        firmware_events.iter().all(|e| e["actor"]["subject"]
            .as_str()
            .is_some_and(|s| s.ends_with(&canary))),
        "a locker outside the canary reported an install: {firmware_events:?}"
    );
    assert!(
        firmware_events
            .iter()
            .any(|e| e["outcome"] == "rolled_back: health-check-failed"),
        "{firmware_events:?}"
    );
    let alerts = d
        .get_until(&format!("{}/v1/admin/alerts", d.base), &operator, |a| {
            a["alerts"]
                .as_array()
                .is_some_and(|all| all.iter().any(|a| a["code"] == "firmware-failed"))
        })
        .await?;
    assert!(alerts["alerts"][0]["station"].is_string());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockers_behind_an_edge_node_fetch_the_image_from_its_cache_once() -> anyhow::Result<()> {
    let key = FirmwareKey::from_secret(rand::random());
    let d = all_active(
        fleet(4, &key).edge("edge-a", &["st-01", "st-02", "st-03"]),
        4,
    )
    .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let size = 256 * 1024;
    upload(&d, &operator, &key, "0.2.0", image("0.2.0", None, size)).await?;
    let one_wave = json!([{ "percent": 100, "soak_s": 0 }]);
    let done = roll(&d, &operator, "0.2.0", one_wave, |r| {
        r["status"] == "completed"
    })
    .await?;
    assert_eq!(done["totals"]["confirmed"], 4, "{}", done["totals"]);
    for station in stations(4) {
        d.locker_until(&station, |s| {
            s["firmware"] == "0.2.0" && s["on_trial"] == false
        })
        .await?;
    }
    // The gateway sent the image to its own locker and once to the edge node, which served its
    // three lockers from its cache: about twice the image, never once per locker.
    let metrics = d.metrics().await?;
    let sent: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lockergrid_firmware_bytes_sent_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        sent >= 2 * size as u64 && sent < 3 * size as u64,
        "{sent} bytes sent for a {size}-byte image to one locker and one edge node"
    );
    Ok(())
}

/// Starts a rollout of `version` in `waves` and waits until `done` holds for it.
async fn roll(
    d: &Running,
    operator: &str,
    version: &str,
    waves: Value,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let (status, started) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/rollouts", d.base))
                .bearer_auth(operator)
                .json(&json!({ "model": MODEL, "version": version, "waves": waves })),
        )
        .await?;
    anyhow::ensure!(status == 201, "rollout: {status} {started}");
    let id = started["id"].as_str().unwrap_or_default().to_owned();
    rollout_until(d, operator, &id, done).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locker_refuses_an_image_below_its_anti_rollback_counter_whatever_its_version()
-> anyhow::Result<()> {
    let key = FirmwareKey::from_secret(rand::random());
    let d = deployment(2, &key).await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    upload_counted(
        &d,
        &operator,
        &key,
        "0.2.0",
        3,
        image("0.2.0", None, 64 * 1024),
    )
    .await?;
    let one_wave = json!([{ "percent": 100, "soak_s": 0 }]);
    roll(&d, &operator, "0.2.0", one_wave, |r| {
        r["status"] == "completed"
    })
    .await?;
    // A newer version signed with the same key but an older counter: the vulnerable build
    // re-released under a new number.
    upload_counted(
        &d,
        &operator,
        &key,
        "0.3.0",
        2,
        image("0.3.0", None, 64 * 1024),
    )
    .await?;
    let waves = json!([
        { "percent": 50, "soak_s": 0, "on_error": "abort" },
        { "percent": 100, "soak_s": 0 },
    ]);
    let aborted = roll(&d, &operator, "0.3.0", waves, |r| r["status"] == "aborted").await?;
    let lockers = aborted["lockers"].as_array().cloned().unwrap_or_default();
    let refused: Vec<&Value> = lockers.iter().filter(|t| t["state"] == "failed").collect();
    assert_eq!(refused.len(), 1, "{lockers:?}");
    assert_eq!(refused[0]["reason"], "downgrade", "{lockers:?}");
    for station in stations(2) {
        let status = d
            .locker_until(&station, |s| s["firmware"] == "0.2.0")
            .await?;
        assert_eq!(status["boots"], 2, "{station} never booted 0.3.0: {status}");
    }
    let log = d.access_log(&operator).await?;
    assert!(
        log.iter()
            .any(|e| e["action"] == "firmware" && e["outcome"] == "refused: downgrade"),
        "the locker's refusal is in the access log"
    );
    Ok(())
}

/// Bytes of `station`'s staged image, if it is receiving one.
fn staged(d: &Running, station: &str) -> u64 {
    let path = d
        .gateway
        .data_dir
        .join("lockers")
        .join(station)
        .join("state/firmware/staged.img");
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The image bytes the gateway has sent so far.
async fn bytes_sent(d: &Running) -> anyhow::Result<u64> {
    Ok(d.metrics()
        .await?
        .lines()
        .find_map(|l| l.strip_prefix("lockergrid_firmware_bytes_sent_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// Cuts `station`'s locker's power and starts it again on its own disk.
async fn power_cycle(d: &mut Running, station: &str) -> anyhow::Result<()> {
    let at = d
        .lockers
        .iter()
        .position(|l| l.station.as_str() == station)
        .ok_or_else(|| anyhow::anyhow!("no locker at {station}"))?;
    d.lockers[at].power.abort();
    let seed = d
        .deployment
        .stations
        .iter()
        .find(|s| s.record.id.as_str() == station)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no station {station}"))?;
    let simulation = d
        .gateway
        .simulation(Duration::from_millis(200))?
        .behind(&d.edges[0]);
    let mut started =
        lockergrid_gateway::simulated::start(&[seed], &d.gateway.data_dir, simulation).await?;
    d.lockers[at] = started.remove(0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locker_whose_power_is_cut_mid_download_and_on_trial_resumes_and_ends_updated()
-> anyhow::Result<()> {
    let key = FirmwareKey::from_secret(rand::random());
    let mut d = all_active(fleet(2, &key).edge("edge-a", &["st-01"]), 2).await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let size = 8 * 1024 * 1024;
    // The new image takes three seconds to start: time to cut the power on its first boot.
    let bytes = image("0.2.0", Some("lockergrid-sim-start-ms: 3000"), size);
    let sha256 = lockergrid_protocol::firmware::sha256_hex(&bytes);
    upload(&d, &operator, &key, "0.2.0", bytes).await?;
    let (status, started) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/rollouts", d.base))
                .bearer_auth(&operator)
                .json(&json!({
                    "model": MODEL,
                    "version": "0.2.0",
                    "stations": ["st-01"],
                    "waves": [{ "percent": 100, "soak_s": 0 }],
                })),
        )
        .await?;
    anyhow::ensure!(status == 201, "rollout: {status} {started}");
    let id = started["id"].as_str().unwrap_or_default().to_owned();

    // The edge node fetches the image a mebibyte at a time, as its locker asks: cut its uplink
    // once the locker has its first chunk, and the download stalls where the edge's cache ends.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while staged(&d, "st-01") == 0 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no download began");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    d.cut_uplink("edge-a").await?;
    let part = d
        .gateway
        .data_dir
        .join("edges/edge-a/firmware-cache")
        .join(format!("{sha256}.part"));
    let cached = std::fs::metadata(&part)?.len();
    anyhow::ensure!(
        cached < size as u64,
        "the edge node had it all before the cut"
    );
    while staged(&d, "st-01") < cached {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the locker never reached {cached}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Power cut mid-download: it comes back on the factory image with the staged bytes kept.
    power_cycle(&mut d, "st-01").await?;
    let back = d.locker_until("st-01", |s| s["connected"] == true).await?;
    assert_eq!(
        (back["firmware"].as_str(), back["on_trial"].as_bool()),
        (Some("0.1.0"), Some(false))
    );
    assert_eq!(
        staged(&d, "st-01"),
        cached,
        "it resumes where it stopped, not from 0"
    );
    d.uplink("edge-a")?.restore();

    // Power cut on its first boot of the new image, before or during the health check.
    d.locker_until("st-01", |s| {
        s["firmware"] == "0.2.0" && s["on_trial"] == true
    })
    .await
    .or_else(|_| anyhow::bail!("never booted the new image on trial"))?;
    power_cycle(&mut d, "st-01").await?;
    let done = rollout_until(&d, &operator, &id, |r| r["status"] == "completed").await?;
    assert_eq!(done["totals"]["confirmed"], 1, "{}", done["totals"]);
    let status = d
        .locker_until("st-01", |s| {
            s["firmware"] == "0.2.0" && s["on_trial"] == false
        })
        .await?;
    assert_eq!(
        status["boots"], 1,
        "after the last cut it booted the new image once: {status}"
    );
    assert_eq!(
        bytes_sent(&d).await?,
        size as u64,
        "the edge node fetched every byte once"
    );
    Ok(())
}
