//! An edge node killed (`kill -9`) again and again while its uplink is down. The gateway runs in
//! this process; the edge node is a `lockergrid edge` child whose uplink points at a port where
//! nothing listens (the partition) until the end; the locker (the real shim agent with a
//! simulated locker, in this process) connects to the edge node's fixed device port over TLS.
//! Every pickup and every return drop-off (into a compartment of the edge node's lease) is
//! decided at the edge, across kills at every point of the flow; when the edge node finally
//! reaches the gateway, every one of them is there exactly once.

use crate::process::start_until;
use lockergrid_gateway::auth::Role;
use lockergrid_gateway::config::DeployConfig;
use lockergrid_gateway::edge::EdgeLaunch;
use lockergrid_gateway::run::{self, GatewayOptions, RunningGateway};
use lockergrid_gateway::simulated::{self, SimulatedLocker, Simulation};
use lockergrid_model::{Actor, DeviceStatus, ReturnStatus};
use lockergrid_protocol::{LockerId, OrderId, ParcelSpec, ParcelStatus, Size, StationId, Tier};
use lockergrid_store::{ReserveRequest, ReturnRequest, Target};
use serde_json::Value;
use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Child;

const PARCELS: usize = 12;
/// Return drop-offs, within the default lease (two small, two medium and one large compartment),
/// one per kill point; the last ends with a kill, as the pickups do, so its door events reach the
/// edge node while it is still cut off.
const DROP_OFFS: usize = 3;

/// `lockergrid edge` with its uplink to `gateway`, once it says where its lockers connect.
async fn start_edge(config: &Path, data: &Path, gateway: SocketAddr) -> anyhow::Result<Child> {
    let gateway = gateway.to_string();
    let args: [&OsStr; 9] = [
        "edge".as_ref(),
        "--id".as_ref(),
        "edge-b".as_ref(),
        "--config".as_ref(),
        config.as_ref(),
        "--data-dir".as_ref(),
        data.as_ref(),
        "--gateway".as_ref(),
        gateway.as_ref(),
    ];
    Ok(start_until(&args, "lockergrid edge edge-b:").await?.0)
}

/// The gateway's view of the edge node, read until `done` holds (up to `within`).
async fn edge_until(
    gateway: &RunningGateway,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let operator = gateway.token("ops", Role::Operator, vec![])?;
    let url = format!("http://{}/v1/admin/edges", gateway.addr);
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let body: Value = http
            .get(&url)
            .bearer_auth(&operator)
            .send()
            .await?
            .json()
            .await?;
        let edge = body["edges"][0].clone();
        if done(&edge) {
            return Ok(edge);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "edge node: {edge}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn control(locker: &SimulatedLocker, line: &str) -> anyhow::Result<String> {
    let stream = tokio::net::TcpStream::connect(locker.control).await?;
    let (read, mut write) = stream.into_split();
    write.write_all(format!("{line}\n").as_bytes()).await?;
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await?;
    Ok(answer.trim_end().to_owned())
}

async fn status_until(
    locker: &SimulatedLocker,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let answer = control(locker, "status").await?;
        let status: Value = serde_json::from_str(answer.trim_start_matches("ok "))?;
        if done(&status) {
            return Ok(status);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "locker: {status}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn small_parcel() -> ParcelSpec {
    ParcelSpec {
        length_mm: 200,
        width_mm: 150,
        height_mm: 100,
        weight_g: 800,
    }
}

/// The `lockergrid edge` child and how to start it again.
struct EdgeProcess {
    child: Child,
    config: PathBuf,
    data: PathBuf,
    uplink: SocketAddr,
}

impl EdgeProcess {
    /// `kill -9`, then the same edge node again, until `locker` is back with it.
    async fn restart(&mut self, locker: &SimulatedLocker) -> anyhow::Result<()> {
        let before = status_until(locker, |_| true).await?["sessions"].clone();
        self.child.kill().await?;
        self.child = start_edge(&self.config, &self.data, self.uplink).await?;
        status_until(locker, |s| {
            s["connected"] == true && s["sessions"] != before
        })
        .await?;
        Ok(())
    }
}

/// A person at the locker types `code`, waits for a compartment to unlatch (`expected`, if it is
/// known), opens it and closes it again, while the edge node is killed and restarted at point
/// `kill_at` (0: after the code, 1: with the door open, 2: after the door closed); which
/// compartment it was.
async fn through_door(
    locker: &SimulatedLocker,
    edge: &mut EdgeProcess,
    code: &str,
    expected: Option<&str>,
    kill_at: usize,
) -> anyhow::Result<String> {
    assert_eq!(control(locker, &format!("press {code}#")).await?, "ok");
    if kill_at == 0 {
        edge.restart(locker).await?;
    }
    let status = status_until(locker, |s| {
        s["unlatched"]
            .as_array()
            .is_some_and(|u| expected.map_or(!u.is_empty(), |c| u.iter().any(|u| u == c)))
    })
    .await?;
    let compartment = match expected {
        Some(c) => c.to_owned(),
        None => status["unlatched"][0]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    };
    assert_eq!(control(locker, &format!("open {compartment}")).await?, "ok");
    if kill_at == 1 {
        edge.restart(locker).await?;
    }
    assert_eq!(
        control(locker, &format!("close {compartment}")).await?,
        "ok"
    );
    if kill_at == 2 {
        edge.restart(locker).await?;
    }
    Ok(compartment)
}

/// Stocks `PARCELS` parcels at st-b without doors; returns each parcel's id, code, compartment.
async fn stock(gateway: &RunningGateway) -> anyhow::Result<Vec<(String, String, String)>> {
    let store = &gateway.app.store;
    let actor = Actor {
        subject: "test".into(),
        role: "agent".into(),
    };
    let mut parcels = Vec::new();
    for n in 0..PARCELS {
        let request = ReserveRequest {
            order_id: OrderId::new(format!("kill-{n}"))?,
            parcel: small_parcel(),
            tier: Tier::Standard,
            target: Target::Station(StationId::new("st-b")?),
            hold: Duration::from_secs(3_600),
            idempotency: None,
            actor: actor.clone(),
            decided_by: None,
            recipient: None,
        };
        let held = store.reserve(request).await?.reservation;
        let deposit = store.deposit(held.id, actor.clone(), None).await?;
        parcels.push((
            deposit.parcel.id.to_string(),
            deposit.code.reveal().to_owned(),
            deposit.parcel.compartment_id.to_string(),
        ));
    }
    Ok(parcels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_node_killed_during_a_partition_loses_no_pickup_or_drop_off_and_applies_none_twice()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let edge_devices = lockergrid_tests::fixed_port()?;
    let config = dir.path().join("deploy.toml");
    std::fs::write(
        &config,
        format!(
            "version = 1\n[region]\nid = \"t\"\nname = \"T\"\n[gateway]\nlisten = \"127.0.0.1:0\"\ndevices = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[[station]]\nid = \"st-b\"\nname = \"B\"\nkind = \"urban\"\nlat = 52.3\nlon = 4.9\ncompartments = 40\n[[edge]]\nid = \"edge-b\"\nstations = [\"st-b\"]\ndevices = \"{edge_devices}\"\n"
        ),
    )?;
    let deployment = DeployConfig::load(&config)?;
    let gateway = run::start(&deployment, GatewayOptions::default()).await?;
    let parcels = stock(&gateway).await?;
    let mut returns = Vec::new();
    for n in 0..DROP_OFFS {
        let request = ReturnRequest {
            order_id: OrderId::new(format!("back-{n}"))?,
            station: StationId::new("st-b")?,
            spec: small_parcel(),
            size: Size::Small,
            valid: Duration::from_secs(86_400),
            actor: Actor {
                subject: "shop".into(),
                role: "checkout".into(),
            },
            recipient: None,
            idempotency: None,
        };
        let authorized = gateway.app.store.authorize_return(request).await?;
        returns.push((
            authorized.record.id,
            authorized.code.expect("a fresh code").reveal().to_owned(),
        ));
    }
    let edge_data = dir.path().join("edge");
    let mut launch = EdgeLaunch::new(&deployment, "edge-b")?;
    launch.data_dir = edge_data.clone();
    launch.enrol(&gateway.data_dir)?;
    let key = launch.command_key()?;
    // The locker is provisioned before the partition, so the edge node knows to admit it.
    let seed = deployment.stations[0].clone();
    simulated::provision(&gateway.app.fleet, &seed.record.id, &gateway.data_dir).await?;

    // Online first: the edge node mirrors the parcels, their codes, the returns and its lease,
    // and the locker's registry entry.
    let mut edge = start_edge(&config, &edge_data, gateway.devices_addr).await?;
    edge_until(&gateway, Duration::from_secs(30), |e| {
        let lease = &e["leases"][0];
        e["codes"] == PARCELS
            && e["lag"] == 0
            && lease["acked_epoch"] == lease["epoch"]
            && lease["sizes"]["small"] == 2
    })
    .await?;

    // The partition: from now on the edge node's uplink points where nothing listens.
    let nowhere = lockergrid_tests::fixed_port()?;
    edge.kill().await?;
    let edge = start_edge(&config, &edge_data, nowhere).await?;
    let store = gateway.app.store.clone();
    let lockers = simulated::start(
        std::slice::from_ref(&seed),
        &gateway.data_dir,
        Simulation {
            fleet: gateway.app.fleet.clone(),
            node: edge_devices,
            command_key: key,
            heartbeat: Duration::from_millis(500),
            clock: Arc::new(move || store.now()),
            firmware: Default::default(),
        },
    )
    .await?;
    let locker = &lockers[0];
    // Its own cache first: a locker with none yet refuses a code while no node answers.
    status_until(locker, |s| {
        s["connected"] == true && s["cached_codes"] == PARCELS
    })
    .await?;

    // Every pickup, then every drop-off, with the edge node killed at one point of each: between
    // the code and the unlock (or just after it), with the door open, or just after the door
    // closed (its event may or may not be applied yet).
    let mut cut_off = EdgeProcess {
        child: edge,
        config: config.clone(),
        data: edge_data.clone(),
        uplink: nowhere,
    };
    for (n, (_, code, compartment)) in parcels.iter().enumerate() {
        through_door(locker, &mut cut_off, code, Some(compartment), n % 3).await?;
    }
    let mut dropped = Vec::new();
    for (n, (_, code)) in returns.iter().enumerate() {
        dropped.push(through_door(locker, &mut cut_off, code, None, n % 3).await?);
    }
    // Everything is decided but its self-test: whether it goes active is the registry's, which
    // only the gateway writes, so the locker keeps that event until the link returns.
    let status = status_until(locker, |s| {
        s["connected"] == true && s["queued_events"] == 1
    })
    .await?;
    // A kill just after a code was typed can leave the locker without its node when it reads
    // the code: it then opens from its own cache (level 3), with no command, and its door's
    // closing is one more decision for the gateway. Only those pickups may lack an unlock.
    let executed = status["executed"].as_u64().unwrap_or_default() as usize;
    let alone = (PARCELS + DROP_OFFS)
        .checked_sub(executed)
        .expect("no more unlocks than entries");
    assert!(
        alone <= PARCELS.div_ceil(3),
        "one unlock per pickup and drop-off but those decided alone: {status}"
    );
    for (parcel, _, _) in &parcels {
        let id = lockergrid_protocol::ParcelId::new(parcel.as_str())?;
        let at_gateway = gateway.app.store.parcel(&id)?.map(|p| p.status);
        assert_eq!(at_gateway, Some(ParcelStatus::Stored), "not heard yet");
    }

    // The link returns (one more kill, then the real address): everything arrives, once.
    cut_off.uplink = gateway.devices_addr;
    cut_off.restart(locker).await?;
    let decisions = 2 * (PARCELS + DROP_OFFS) + alone;
    edge_until(&gateway, Duration::from_secs(60), |e| {
        e["decisions_applied"] == decisions && e["outbox"] == 0 && e["codes"] == 0
    })
    .await?;
    status_until(locker, |s| s["queued_events"] == 0).await?;
    let device = gateway
        .app
        .store
        .device(&LockerId::new(seed.record.id.as_str())?)?;
    assert_eq!(device.map(|d| d.status), Some(DeviceStatus::Active));
    let log = gateway.app.store.access_log(1, 10_000)?;
    for (parcel, _, _) in &parcels {
        let id = lockergrid_protocol::ParcelId::new(parcel.as_str())?;
        let status = gateway.app.store.parcel(&id)?.map(|p| p.status);
        assert_eq!(status, Some(ParcelStatus::PickedUp), "{parcel}");
        let pickups = log
            .iter()
            .filter(|e| e.action == "pickup" && e.target == parcel.as_str())
            .count();
        assert_eq!(pickups, 1, "{parcel} picked up once");
    }
    assert!(!log.iter().any(|e| e.action == "pickup_conflict"));
    for ((id, _), compartment) in returns.iter().zip(&dropped) {
        let record = gateway.app.store.return_record(id)?.expect("the return");
        assert_eq!(record.status, ReturnStatus::DroppedOff, "{id}");
        assert_eq!(
            record.compartment_id.as_ref().map(|c| c.as_str()),
            Some(compartment.as_str())
        );
        let drop_offs = log
            .iter()
            .filter(|e| e.action == "return_dropoff" && e.target == id.as_str())
            .count();
        assert_eq!(drop_offs, 1, "{id} dropped off once");
    }
    let distinct: std::collections::BTreeSet<&String> = dropped.iter().collect();
    assert_eq!(distinct.len(), DROP_OFFS, "a compartment per return");
    assert_eq!(
        gateway.app.store.decisions_applied("edge-b")?,
        decisions as u64
    );
    gateway.stop().await
}
