//! Fleet benchmarks.
//!
//! 13. A firmware rollout to `n` simulated lockers: a `lockergrid gateway` child (release build
//!     beside this binary), the lockers (the real shim agent with simulated hardware) in this
//!     process, each provisioned through the API, a signed 1 MiB image in four waves. Reports the
//!     time from the rollout's start to its completion, the image bytes the gateway sent and the
//!     CPU time the gateway process used (from /proc, in USER_HZ = 100 ticks a second).
//! 14. Telemetry ingest with the site rules (`assess`) and the time series on: lockers publishing
//!     heartbeats to a full in-process gateway, counted once stored in its time series; the
//!     mosquitto peer of benchmark 8 runs the same load in the same run.

use crate::latency::Report;
use base64::Engine as _;
use lockergrid_device_plane::{DeviceKey, write_credentials};
use lockergrid_firmware_shim::agent::{self, AgentOptions, FirmwareOptions, Status};
use lockergrid_firmware_shim::sim::SimLocker;
use lockergrid_firmware_shim::tls::client_config;
use lockergrid_gateway::secrets::Secrets;
use lockergrid_protocol::firmware::{FirmwareKey, FirmwareManifest, FirmwareVersion};
use lockergrid_protocol::size::Size;
use lockergrid_protocol::{CompartmentId, LockerId};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::watch;

const MODEL: &str = "bench-locker";

/// What the rollout benchmark measured.
pub struct RolloutRun {
    /// Lockers updated.
    pub lockers: usize,
    /// From the rollout's start to its completion.
    pub took: Duration,
    /// Image bytes the gateway sent.
    pub bytes: u64,
    /// The image's size.
    pub image: usize,
    /// CPU seconds the gateway process used meanwhile.
    pub cpu: f64,
}

fn lockergrid() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe
        .parent()
        .map(|d| d.join("lockergrid"))
        .ok_or_else(|| anyhow::anyhow!("no directory for {exe:?}"))?;
    anyhow::ensure!(
        path.exists(),
        "{path:?} missing: build it with `cargo build --release --bin lockergrid`"
    );
    Ok(path)
}

/// The gateway's CPU time so far, seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command may hold spaces; the fields after it start past the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("odd /proc stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command.
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

fn image(len: usize) -> Vec<u8> {
    let mut bytes = b"lockergrid-shim 0.2.0 for bench-locker\n".to_vec();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.push((x >> 56) as u8);
    }
    bytes
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(url)
        .bearer_auth(token)
        .send()
        .await?
        .json()
        .await?)
}

/// Benchmark 13.
pub async fn rollout(lockers: usize, image_len: usize) -> anyhow::Result<RolloutRun> {
    let binary = lockergrid()?;
    let dir = tempfile::tempdir()?;
    let devices: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let key = FirmwareKey::from_secret(rand::random());
    let mut text = String::from(
        "version = 1\n[region]\nid = \"b\"\nname = \"B\"\n[gateway]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n",
    );
    text.push_str(&format!("devices = \"{devices}\"\n"));
    text.push_str(&format!(
        "[firmware]\ntrusted_keys = [\"{}\"]\n",
        key.public().to_hex()
    ));
    for i in 0..lockers {
        text.push_str(&format!(
            "[[station]]\nid = \"b-{i:03}\"\nname = \"B{i}\"\nkind = \"urban\"\nlat = 52.3\nlon = 4.{i:03}\ncompartments = 4\n"
        ));
    }
    let config = dir.path().join("deploy.toml");
    std::fs::write(&config, text)?;
    let token = tokio::process::Command::new(&binary)
        .args([
            "token",
            "issue",
            "--role",
            "operator",
            "--subject",
            "bench",
            "--config",
        ])
        .arg(&config)
        .output()
        .await?;
    anyhow::ensure!(token.status.success(), "token issue: {token:?}");
    let operator = String::from_utf8(token.stdout)?.trim().to_owned();
    let mut child = tokio::process::Command::new(&binary)
        .args(["gateway", "--config"])
        .arg(&config)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| anyhow::anyhow!("no gateway pid"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow::anyhow!("the gateway exited"))?;
        if let Some(rest) = line.strip_prefix("lockergrid gateway listening on ") {
            break rest.trim().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let http = reqwest::Client::new();
    let data = dir.path().join("data");
    let command_key = Secrets::load_or_create(&data)?.command_key().public();
    let mut statuses = Vec::with_capacity(lockers);
    // The lockers end with the row: left running, they retry a gateway that is gone and take
    // CPU from every row after this one.
    let mut agents = tokio::task::JoinSet::new();
    for i in 0..lockers {
        let id = format!("b-{i:03}");
        let device = DeviceKey::generate()?;
        let provisioned: Value = http
            .post(format!("{base}/v1/admin/devices"))
            .bearer_auth(&operator)
            .json(
                &json!({ "station": id, "model": MODEL, "public_key_pem": device.public_key_pem }),
            )
            .send()
            .await?
            .json()
            .await?;
        let certs = dir.path().join("lockers").join(&id);
        write_credentials(
            &certs,
            &id,
            provisioned["certificate_pem"].as_str().unwrap_or_default(),
            &device.key_pem,
            provisioned["ca_pem"].as_str().unwrap_or_default(),
        )?;
        let compartments = Size::ALL
            .into_iter()
            .map(|size| CompartmentId::numbered(&id, size, 1))
            .collect::<Result<Vec<_>, _>>()?;
        let sim = Arc::new(Mutex::new(SimLocker::new(compartments)));
        let (status_tx, status) = watch::channel(Status::default());
        let options = AgentOptions {
            locker: LockerId::new(&id)?,
            host: devices.ip().to_string(),
            port: devices.port(),
            tls: client_config(
                &certs.join("ca.pem"),
                &certs.join(format!("{id}.pem")),
                &certs.join(format!("{id}.key.pem")),
            )?,
            command_key,
            state_dir: certs.join("state"),
            heartbeat: Duration::from_secs(5),
            clock: agent::system_clock(),
            firmware: FirmwareOptions {
                model: MODEL.into(),
                trusted: vec![key.public()],
                health_window: Duration::from_secs(300),
            },
        };
        agents.spawn(async move {
            if let Err(e) = agent::run(options, sim, status_tx).await {
                eprintln!("locker {id} stopped: {e}");
            }
        });
        statuses.push(status);
    }
    let devices_url = format!("{base}/v1/admin/devices");
    wait(Duration::from_secs(300), async || {
        let body = get(&http, &devices_url, &operator).await?;
        Ok(body["devices"].as_array().is_some_and(|all| {
            all.len() == lockers
                && all
                    .iter()
                    .all(|d| d["status"] == "active" && d["online"] == true)
        }))
    })
    .await?;

    let bytes = image(image_len);
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
    let cpu_before = cpu_seconds(pid)?;
    let started = Instant::now();
    let rollout: Value = http
        .post(format!("{base}/v1/admin/rollouts"))
        .bearer_auth(&operator)
        .json(&json!({
            "model": MODEL,
            "version": "0.2.0",
            "waves": [
                { "percent": 1, "soak_s": 0, "on_error": "abort" },
                { "percent": 10, "soak_s": 0 },
                { "percent": 50, "soak_s": 0 },
                { "percent": 100, "soak_s": 0 },
            ],
            "timeout_s": 600,
            "max_parallel": 100,
        }))
        .send()
        .await?
        .json()
        .await?;
    let url = format!(
        "{base}/v1/admin/rollouts/{}",
        rollout["id"].as_str().unwrap_or_default()
    );
    wait(Duration::from_secs(900), async || {
        let body = get(&http, &url, &operator).await?;
        anyhow::ensure!(body["status"] != "aborted", "rollout aborted: {body}");
        Ok(body["status"] == "completed")
    })
    .await?;
    let took = started.elapsed();
    let cpu = cpu_seconds(pid)? - cpu_before;
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let sent = metrics
        .lines()
        .find_map(|l| l.strip_prefix("lockergrid_firmware_bytes_sent_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    for status in &mut statuses {
        status.wait_for(|s| s.firmware == "0.2.0").await?;
    }
    agents.shutdown().await;
    child.kill().await?;
    Ok(RolloutRun {
        lockers,
        took,
        bytes: sent,
        image: image_len,
        cpu,
    })
}

async fn wait(
    within: Duration,
    mut done: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if done().await? {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "gave up after {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The table row of benchmark 13.
pub fn rollout_table(run: &RolloutRun) -> String {
    format!(
        "| lockers | image | rollout start → completed | image bytes sent | per locker | gateway CPU |\n|---|---|---|---|---|---|\n| {} | {} KiB | {:.1} s | {:.1} MiB | {:.2}× the image | {:.1} s ({:.0} % of one core) |",
        run.lockers,
        run.image / 1024,
        run.took.as_secs_f64(),
        run.bytes as f64 / (1024.0 * 1024.0),
        run.bytes as f64 / (run.lockers * run.image) as f64,
        run.cpu,
        100.0 * run.cpu / run.took.as_secs_f64()
    )
}

/// Benchmark 14: `lockers` lockers, `per_locker` heartbeats each, into a full gateway.
pub async fn telemetry_gateway(lockers: usize, per_locker: usize) -> anyhow::Result<Report> {
    let mut deployment = lockergrid_tests::Deployment::new();
    let ids: Vec<String> = (0..lockers).map(|i| format!("bench-{i:03}")).collect();
    for id in &ids {
        deployment = deployment.station(id, 4);
    }
    let d = deployment.start().await?;
    for id in &ids {
        lockergrid_gateway::simulated::provision(
            &d.gateway.app.fleet,
            &lockergrid_protocol::StationId::new(id)?,
            &d.gateway.data_dir,
        )
        .await?;
    }
    let certs = |id: &str| d.gateway.data_dir.join("lockers").join(id).join("certs");
    let tls: Vec<(String, Arc<rustls::ClientConfig>)> = ids
        .iter()
        .map(|id| {
            let dir = certs(id);
            Ok((
                id.clone(),
                client_config(
                    &dir.join("ca.pem"),
                    &dir.join(format!("{id}.pem")),
                    &dir.join(format!("{id}.key.pem")),
                )?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    let store = d.gateway.app.store.clone();
    let from = store.now();
    let total = lockers * per_locker;
    let started = Instant::now();
    crate::devices::publish_heartbeats(&tls, d.gateway.devices_addr, per_locker, from).await?;
    // Stored once the assessment wrote them (a flush a second); settled when nothing more comes.
    let mut last = (0, Instant::now());
    let stored = loop {
        let mut n = 0;
        for id in &ids {
            let station = lockergrid_protocol::StationId::new(id)?;
            let to = lockergrid_protocol::Timestamp(from.millis() + 10_000_000);
            n += match store.telemetry(&station, (from, to), lockergrid_store::Step::Raw, total)? {
                lockergrid_store::Series::Raw(samples) => samples.len(),
                lockergrid_store::Series::Rollups(_) => 0,
            };
        }
        if n != last.0 {
            last = (n, Instant::now());
        }
        if n >= total || last.1.elapsed() > Duration::from_secs(5) {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Until the last sample was seen stored (within the 50 ms poll and the 1 s flush).
    let elapsed = last.1 - started;
    let skipped = d.gateway.app.devices.metrics().assess_skipped.get();
    d.stop().await?;
    let name = format!(
        "telemetry ingest with assess and the time series, full gateway ({lockers} lockers; {skipped} skipped as the assessment fell behind)"
    );
    Ok(Report {
        name: if stored < total {
            format!("{name}; {} of {total} not stored", total - stored)
        } else {
            name
        },
        ops: stored,
        per_second: stored as f64 / elapsed.as_secs_f64(),
        p50: Duration::ZERO,
        p99: Duration::ZERO,
    })
}
