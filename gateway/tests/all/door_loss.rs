//! `kill -9` between a door-closed event and its acknowledgement, twenty times. A locker (the real
//! shim agent with a simulated locker, in this process) talks to a `lockergrid gateway` child over
//! TLS through a loopback relay that can hold back what the gateway sends. Each round the agent's
//! deposit releases a door, the relay holds the gateway's answers, the door closes, the deposit is
//! recorded, and the gateway is killed before its acknowledgement can reach the locker. After the
//! restart the locker sends the event again; the deposit is recorded exactly once.

use crate::process::{issue_token, provision_locker, start_gateway_with, write_deployment};
use lockergrid_firmware_shim::agent::{self, AgentOptions, Status};
use lockergrid_firmware_shim::sim::SimLocker;
use lockergrid_firmware_shim::tls::client_config;
use lockergrid_gateway::config::split_compartments;
use lockergrid_gateway::secrets::Secrets;
use lockergrid_protocol::size::Size;
use lockergrid_protocol::{CompartmentId, LockerId};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

const KILLS: usize = 20;
/// 24 of them small, one for each round's parcel.
const COMPARTMENTS: u32 = 60;

/// A TCP relay on loopback: bytes from the locker go through at once; bytes from the gateway are
/// held while `hold` is set; `cut` drops every connection with whatever it holds.
struct Relay {
    addr: SocketAddr,
    hold: watch::Sender<bool>,
    connections: Arc<tokio::sync::Mutex<JoinSet<()>>>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> anyhow::Result<Relay> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (hold, held) = watch::channel(false);
        let connections = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        let tasks = connections.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let held = held.clone();
                tasks.lock().await.spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay(client, server, held).await;
                    }
                });
            }
        });
        Ok(Relay {
            addr,
            hold,
            connections,
        })
    }

    async fn cut(&self) {
        self.connections.lock().await.abort_all();
    }
}

async fn relay(client: TcpStream, server: TcpStream, mut held: watch::Receiver<bool>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if held.wait_for(|hold| !*hold).await.is_err() {
                return;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Starts the locker of station `st-0`: provisioned through the gateway at `base` as a
/// technician would, the agent over TLS to `node`, a simulated locker.
async fn start_locker(
    (base, operator): (&str, &str),
    data: &Path,
    node: SocketAddr,
    dir: &Path,
) -> anyhow::Result<(Arc<Mutex<SimLocker>>, watch::Receiver<Status>)> {
    let certs = dir.join("certs");
    provision_locker(base, operator, "st-0", &certs).await?;
    let split = split_compartments(COMPARTMENTS);
    let mut compartments = Vec::new();
    for size in Size::ALL {
        for n in 1..=split[size.index()] {
            compartments.push(CompartmentId::numbered("st-0", size, n)?);
        }
    }
    let sim = Arc::new(Mutex::new(SimLocker::new(compartments)));
    let (status_tx, status) = watch::channel(Status::default());
    let options = AgentOptions {
        locker: LockerId::new("st-0")?,
        host: node.ip().to_string(),
        port: node.port(),
        tls: client_config(
            &certs.join("ca.pem"),
            &certs.join("st-0.pem"),
            &certs.join("st-0.key.pem"),
        )?,
        command_key: Secrets::load_or_create(data)?.command_key().public(),
        state_dir: dir.join("state"),
        heartbeat: Duration::from_secs(1),
        clock: agent::system_clock(),
        firmware: Default::default(),
    };
    let hardware = sim.clone();
    tokio::spawn(async move {
        if let Err(e) = agent::run(options, hardware, status_tx).await {
            eprintln!("the locker stopped: {e}");
        }
    });
    Ok((sim, status))
}

async fn until<T>(
    what: &str,
    mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "gave up: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
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

/// Reserves a compartment at `st-0` and asks for its deposit without waiting for the door;
/// once the locker has released its latch, the compartment and the parcel.
async fn released(
    http: &reqwest::Client,
    base: &str,
    checkout: &str,
    agent: &str,
    sim: &Mutex<SimLocker>,
    key: &str,
) -> anyhow::Result<(CompartmentId, String)> {
    let reservation: Value = http
        .post(format!("{base}/v1/reservations"))
        .bearer_auth(checkout)
        .header("idempotency-key", key)
        .json(&json!({
            "order_id": format!("order-{key}"),
            "parcel": { "length_mm": 200, "width_mm": 150, "height_mm": 100, "weight_g": 500 },
            "tier": "standard",
            "station_id": "st-0",
        }))
        .send()
        .await?
        .json()
        .await?;
    let id = reservation["id"].as_str().expect("reservation id");
    let compartment =
        CompartmentId::new(reservation["compartment_id"].as_str().expect("compartment"))?;
    let parcel = reservation["parcel_id"]
        .as_str()
        .expect("parcel")
        .to_owned();
    let deposit = http
        .post(format!("{base}/v1/reservations/{id}/deposit"))
        .bearer_auth(agent)
        .header("prefer", "wait=0")
        .send()
        .await?;
    anyhow::ensure!(
        deposit.status() == 202,
        "{key}: deposit answered {}",
        deposit.status()
    );
    until("the latch released", async || {
        Ok(sim
            .lock()
            .unwrap()
            .unlatched()
            .contains(&compartment)
            .then_some(()))
    })
    .await?;
    Ok((compartment, parcel))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_before_acknowledging_a_closed_door_records_the_deposit_once()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let devices = lockergrid_tests::fixed_port()?;
    let config = write_deployment(dir.path(), 1, COMPARTMENTS);
    let devices_arg = devices.to_string();
    let args = ["--devices", devices_arg.as_str()];
    let checkout = issue_token(&config, "checkout", &[]).await?;
    let agent = issue_token(&config, "agent", &["--station", "st-0"]).await?;
    let operator = issue_token(&config, "operator", &[]).await?;
    let mut gateway = start_gateway_with(&config, &args).await?;
    let relay = Relay::start(devices).await?;
    let gateway_at = (gateway.base.as_str(), operator.as_str());
    let (sim, status) =
        start_locker(gateway_at, &dir.path().join("data"), relay.addr, dir.path()).await?;
    let http = reqwest::Client::new();

    for round in 0..KILLS {
        relay.hold.send_replace(false);
        let base = gateway.base.clone();
        let mut connected = status.clone();
        connected.wait_for(|s| s.connected).await?;
        let health = format!("{base}/v1/stations/st-0/health");
        until("the gateway hears the locker", async || {
            Ok((get(&http, &health, &operator).await?["online"] == true).then_some(()))
        })
        .await?;
        let (compartment, parcel) = released(
            &http,
            &base,
            &checkout,
            &agent,
            &sim,
            &format!("round-{round}"),
        )
        .await?;

        // From here on the gateway's answers stay in the relay.
        relay.hold.send_replace(true);
        sim.lock().unwrap().open_door(&compartment)?;
        sim.lock().unwrap().close_door(&compartment)?;
        let url = format!("{base}/v1/parcels/{parcel}");
        until("the deposit recorded", async || {
            Ok((get(&http, &url, &checkout).await?["status"] == "stored").then_some(()))
        })
        .await?;
        assert!(
            status.borrow().queued_events > 0,
            "round {round}: the locker still waits for the acknowledgement"
        );
        gateway.child.start_kill()?;
        gateway.child.wait().await?;
        relay.cut().await;

        gateway = start_gateway_with(&config, &args).await?;
        relay.hold.send_replace(false);
        let mut drained = status.clone();
        tokio::time::timeout(
            Duration::from_secs(60),
            drained.wait_for(|s| s.connected && s.queued_events == 0),
        )
        .await??;
        let p = get(
            &http,
            &format!("{}/v1/parcels/{parcel}", gateway.base),
            &checkout,
        )
        .await?;
        assert_eq!(p["status"], "stored", "round {round}: {p}");
    }

    // Every deposit is in the log exactly once, and the locker's counters never repeated.
    let mut entries = Vec::new();
    let mut from = 1;
    loop {
        let page = get(
            &http,
            &format!(
                "{}/v1/admin/access-log?from={from}&limit=1000",
                gateway.base
            ),
            &operator,
        )
        .await?;
        let batch = page["entries"].as_array().cloned().unwrap_or_default();
        if batch.is_empty() {
            break;
        }
        entries.extend(batch);
        from = page["next"].as_u64().expect("next");
    }
    let deposits = entries.iter().filter(|e| e["action"] == "deposit").count();
    assert_eq!(deposits, KILLS, "each deposit recorded once");
    let station: Value = get(
        &http,
        &format!("{}/v1/stations/st-0", gateway.base),
        &checkout,
    )
    .await?;
    assert_eq!(
        station["sizes"]["small"]["states"]["occupied"],
        json!(KILLS),
        "{station}"
    );
    assert_eq!(status.borrow().refused, 0, "no command was refused");
    gateway.child.start_kill()?;
    gateway.child.wait().await?;
    Ok(())
}

/// Opens and closes the released `compartment` and waits until the parcel is stored.
async fn put_in(
    http: &reqwest::Client,
    base: &str,
    checkout: &str,
    sim: &Mutex<SimLocker>,
    (compartment, parcel): (CompartmentId, String),
) -> anyhow::Result<()> {
    sim.lock().unwrap().open_door(&compartment)?;
    sim.lock().unwrap().close_door(&compartment)?;
    let url = format!("{base}/v1/parcels/{parcel}");
    until("the deposit recorded", async || {
        Ok((get(http, &url, checkout).await?["status"] == "stored").then_some(()))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_restored_from_an_older_backup_takes_up_the_lockers_counter() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let devices = lockergrid_tests::fixed_port()?;
    let config = write_deployment(dir.path(), 1, COMPARTMENTS);
    let devices_arg = devices.to_string();
    let args = ["--devices", devices_arg.as_str()];
    let checkout = issue_token(&config, "checkout", &[]).await?;
    let agent = issue_token(&config, "agent", &["--station", "st-0"]).await?;
    let operator = issue_token(&config, "operator", &[]).await?;
    let data = dir.path().join("data");
    let store = data.join("gateway.redb");
    let backup = dir.path().join("gateway.redb.backup");
    let mut gateway = start_gateway_with(&config, &args).await?;
    let gateway_at = (gateway.base.as_str(), operator.as_str());
    let (sim, status) = start_locker(gateway_at, &data, devices, dir.path()).await?;
    let http = reqwest::Client::new();
    let online = async |base: &str| {
        let health = format!("{base}/v1/stations/st-0/health");
        until("the gateway hears the locker", async || {
            Ok((get(&http, &health, &operator).await?["online"] == true).then_some(()))
        })
        .await
    };
    online(&gateway.base).await?;
    let first = released(&http, &gateway.base, &checkout, &agent, &sim, "first").await?;
    put_in(&http, &gateway.base, &checkout, &sim, first).await?;
    gateway.child.start_kill()?;
    gateway.child.wait().await?;
    std::fs::copy(&store, &backup)?;

    // Two more unlocks after the backup: the locker's counter moves past the backup's.
    gateway = start_gateway_with(&config, &args).await?;
    online(&gateway.base).await?;
    for key in ["second", "third"] {
        let opened = released(&http, &gateway.base, &checkout, &agent, &sim, key).await?;
        put_in(&http, &gateway.base, &checkout, &sim, opened).await?;
    }
    gateway.child.start_kill()?;
    gateway.child.wait().await?;
    std::fs::copy(&backup, &store)?;

    gateway = start_gateway_with(&config, &args).await?;
    let log = format!("{}/v1/admin/access-log?limit=1000", gateway.base);
    let raised = until("the counter raised to the locker's", async || {
        let page = get(&http, &log, &operator).await?;
        Ok(page["entries"].as_array().and_then(|entries| {
            entries
                .iter()
                .find(|e| e["action"] == "command_counter_raised")
                .cloned()
        }))
    })
    .await?;
    assert!(
        raised["outcome"]
            .as_str()
            .is_some_and(|o| o.starts_with("raised from 1 to 3")),
        "{raised}"
    );
    let fourth = released(&http, &gateway.base, &checkout, &agent, &sim, "fourth").await?;
    put_in(&http, &gateway.base, &checkout, &sim, fourth).await?;
    assert_eq!(
        status.borrow().refused,
        0,
        "no command was refused as a replay"
    );
    gateway.child.start_kill()?;
    gateway.child.wait().await?;
    Ok(())
}
