//! `kill -9` of the gateway in the middle of a firmware rollout, twice: once while its first
//! wave's lockers fetch the image, once during the second wave. The gateway is a `lockergrid
//! gateway` child; six lockers (the real shim agent with simulated hardware, in this process)
//! reconnect to it after each restart. The rollout carries on from where it was and completes:
//! every locker runs the new version, none failed, and no wave was started twice.

use crate::process::{issue_token, provision_locker, start_gateway_with, write_deployment};
use base64::Engine as _;
use lockergrid_firmware_shim::agent::{self, AgentOptions, FirmwareOptions, Status};
use lockergrid_firmware_shim::sim::SimLocker;
use lockergrid_firmware_shim::tls::client_config;
use lockergrid_gateway::config::split_compartments;
use lockergrid_gateway::secrets::Secrets;
use lockergrid_protocol::firmware::{FirmwareKey, FirmwareManifest, FirmwareVersion};
use lockergrid_protocol::size::Size;
use lockergrid_protocol::{CompartmentId, LockerId};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

const LOCKERS: usize = 6;
/// The model `lockergrid device provision` registers in these tests.
const MODEL: &str = "test-locker";

async fn until<T>(
    what: &str,
    mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "gave up: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `lockergrid` with `args`.
async fn cli(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Ok(tokio::process::Command::new(crate::process::binary())
        .args(args)
        .output()
        .await?)
}

/// Reads `url`; a gateway that is down or restarting answers nothing, which is `None`.
async fn get(http: &reqwest::Client, url: &str, token: &str) -> Option<Value> {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()
}

/// Station `st-{i}`'s locker: provisioned through the gateway as a technician would, trusting
/// `key`'s firmware, connected to `node`.
async fn start_locker(
    (base, operator): (&str, &str),
    data: &Path,
    node: SocketAddr,
    dir: &Path,
    i: usize,
    key: &FirmwareKey,
) -> anyhow::Result<watch::Receiver<Status>> {
    let id = format!("st-{i}");
    let certs = dir.join(&id).join("certs");
    provision_locker(base, operator, &id, &certs).await?;
    let split = split_compartments(4);
    let mut compartments = Vec::new();
    for size in Size::ALL {
        for n in 1..=split[size.index()] {
            compartments.push(CompartmentId::numbered(&id, size, n)?);
        }
    }
    let sim = Arc::new(Mutex::new(SimLocker::new(compartments)));
    let (status_tx, status) = watch::channel(Status::default());
    let options = AgentOptions {
        locker: LockerId::new(&id)?,
        host: node.ip().to_string(),
        port: node.port(),
        tls: client_config(
            &certs.join("ca.pem"),
            &certs.join(format!("{id}.pem")),
            &certs.join(format!("{id}.key.pem")),
        )?,
        command_key: Secrets::load_or_create(data)?.command_key().public(),
        state_dir: dir.join(&id).join("state"),
        heartbeat: Duration::from_millis(300),
        clock: agent::system_clock(),
        firmware: FirmwareOptions {
            model: MODEL.into(),
            trusted: vec![key.public()],
            health_window: Duration::from_secs(60),
        },
    };
    tokio::spawn(async move {
        if let Err(e) = agent::run(options, sim, status_tx).await {
            eprintln!("locker {id} stopped: {e}");
        }
    });
    Ok(status)
}

/// An image of about 1 MiB: sixteen chunks, so a locker is fetching long enough to be caught.
fn image() -> Vec<u8> {
    let mut bytes = b"lockergrid-shim 0.2.0 for test-locker\n".to_vec();
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    while bytes.len() < 1024 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push((x >> 56) as u8);
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_twice_mid_rollout_carries_on_from_where_it_was() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let devices = lockergrid_tests::fixed_port()?;
    let config = write_deployment(dir.path(), LOCKERS, 4);
    let key = FirmwareKey::from_secret(rand::random());
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str(&format!(
        "[firmware]\ntrusted_keys = [\"{}\"]\n",
        key.public().to_hex()
    ));
    std::fs::write(&config, text)?;
    let devices_arg = devices.to_string();
    let args = ["--devices", devices_arg.as_str()];
    let operator = issue_token(&config, "operator", &[]).await?;
    let mut gateway = start_gateway_with(&config, &args).await?;
    let http = reqwest::Client::new();
    let data = dir.path().join("data");
    let mut lockers = Vec::new();
    for i in 0..LOCKERS {
        let at = (gateway.base.as_str(), operator.as_str());
        lockers.push(start_locker(at, &data, devices, dir.path(), i, &key).await?);
    }
    let base = gateway.base.clone();
    until("every locker active", async || {
        let body = get(&http, &format!("{base}/v1/admin/devices"), &operator).await;
        Ok(body
            .filter(|b| {
                b["devices"].as_array().is_some_and(|all| {
                    all.len() == LOCKERS && all.iter().all(|d| d["status"] == "active")
                })
            })
            .map(|_| ()))
    })
    .await?;

    let bytes = image();
    let manifest = FirmwareManifest::of(
        &bytes,
        FirmwareVersion(0, 2, 0),
        MODEL.into(),
        FirmwareVersion(0, 1, 0),
        1,
    )
    .sign(&key);
    let header = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&manifest)?);
    let uploaded = http
        .post(format!("{base}/v1/admin/firmware"))
        .bearer_auth(&operator)
        .header("lockergrid-manifest", header)
        .body(bytes)
        .send()
        .await?;
    anyhow::ensure!(uploaded.status() == 201, "upload: {}", uploaded.status());
    // Started with the CLI, as an operator would.
    let started = cli(&[
        "firmware",
        "rollout",
        "start",
        "--gateway",
        &base,
        "--token",
        &operator,
        "--model",
        MODEL,
        "--version",
        "0.2.0",
        "--waves",
        "34,100",
        "--soak",
        "1s",
        "--timeout",
        "120s",
        "--parallel",
        "2",
    ])
    .await?;
    anyhow::ensure!(started.status.success(), "rollout start: {started:?}");
    let said = String::from_utf8(started.stdout)?;
    let id = said
        .strip_prefix("rollout ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_default()
        .to_owned();
    anyhow::ensure!(said.contains("6 lockers in 2 waves"), "{said}");

    // Two kill points: a locker of the first wave fetching, then one of the second.
    for wave in [1, 2] {
        let base = gateway.base.clone();
        let url = format!("{base}/v1/admin/rollouts/{id}");
        until("a locker offered in this wave", async || {
            Ok(get(&http, &url, &operator).await.filter(|r| {
                r["wave"] == wave && r["waves"][wave - 1]["counts"]["in_flight"].as_u64() > Some(0)
            }))
        })
        .await?;
        gateway.child.kill().await?;
        gateway = start_gateway_with(&config, &args).await?;
    }

    let base = gateway.base.clone();
    let url = format!("{base}/v1/admin/rollouts/{id}");
    let done = until("the rollout completes", async || {
        Ok(get(&http, &url, &operator)
            .await
            .filter(|r| r["status"] == "completed"))
    })
    .await?;
    assert_eq!(done["totals"]["confirmed"], LOCKERS, "{}", done["totals"]);
    assert_eq!(done["totals"]["failed"], 0, "{}", done["totals"]);
    for (i, status) in lockers.iter_mut().enumerate() {
        let booted = status
            .wait_for(|s| s.firmware == "0.2.0" && !s.on_trial)
            .await?;
        assert_eq!(
            booted.boots, 2,
            "st-{i} booted the new image once: {booted:?}"
        );
    }
    let log: Value = get(
        &http,
        &format!("{base}/v1/admin/access-log?from=1&limit=1000"),
        &operator,
    )
    .await
    .unwrap_or_default();
    let entries = log["entries"].as_array().cloned().unwrap_or_default();
    let waves = entries
        .iter()
        .filter(|e| e["action"] == "rollout_wave_started" && e["target"] == id.as_str())
        .count();
    assert_eq!(waves, 1, "the second wave started once");
    let status = cli(&[
        "firmware",
        "rollout",
        "status",
        "--gateway",
        &base,
        "--token",
        &operator,
        &id,
        "--watch",
    ])
    .await?;
    assert!(status.status.success(), "{status:?}");
    let shown = String::from_utf8(status.stdout)?;
    assert!(
        shown.contains("completed")
            && shown.contains("wave 1: 3/3")
            && shown.contains("wave 2: 3/3"),
        "{shown}"
    );
    // Pausing a completed rollout is refused, with one line and exit 64.
    let pause = cli(&[
        "firmware",
        "rollout",
        "pause",
        "--gateway",
        &base,
        "--token",
        &operator,
        &id,
        "--reason",
        "too late",
    ])
    .await?;
    let refused = String::from_utf8(pause.stderr)?;
    assert_eq!(pause.status.code(), Some(64), "{refused}");
    assert!(refused.contains("completed"), "{refused}");
    gateway.child.kill().await?;
    Ok(())
}
