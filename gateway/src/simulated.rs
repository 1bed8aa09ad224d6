//! The default deployment's simulated lockers: one shim agent per station, in this process, each
//! with its own certificate from the deployment's CA, its own state directory
//! (`<data_dir>/lockers/<station>/`) and its own simulation control socket. They connect to the
//! gateway's device listener over TLS 1.3 exactly as a real locker would.

pub mod inbox;

use crate::config::DeployConfig;
use crate::fleet::Fleet;
use anyhow::Context;
use lockergrid_device_plane::{DeviceKey, write_credentials};
use lockergrid_edge::RunningEdge;
use lockergrid_firmware_shim::agent::{self, AgentOptions, Clock, FirmwareOptions, Status};
use lockergrid_firmware_shim::control;
use lockergrid_firmware_shim::sim::SimLocker;
use lockergrid_firmware_shim::tls::client_config;
use lockergrid_model::Actor;
use lockergrid_protocol::command::CommandPublicKey;
use lockergrid_protocol::size::Size;
use lockergrid_protocol::{CompartmentId, LockerId, StationId};
use lockergrid_store::StationSeed;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A simulated locker that is running.
#[derive(Debug, Clone)]
pub struct SimulatedLocker {
    /// Its station.
    pub station: StationId,
    /// Its simulation control socket (see `lockergrid_firmware_shim::control`).
    pub control: SocketAddr,
    /// The simulated hardware itself, for a person (or a benchmark) in this process.
    pub hardware: Arc<Mutex<SimLocker>>,
    /// Stops it, as if its power were cut.
    pub power: tokio::task::AbortHandle,
}

/// How the simulated lockers run.
#[derive(Clone)]
pub struct Simulation {
    /// The registry that provisions each locker on its first start.
    pub fleet: Arc<Fleet>,
    /// The node's device listener.
    pub node: SocketAddr,
    /// The key commands are signed with.
    pub command_key: CommandPublicKey,
    /// How often each sends a heartbeat.
    pub heartbeat: Duration,
    /// Their clock: the deployment's, as lockers keep theirs in step with the node's.
    pub clock: Clock,
    /// How they take firmware updates (the deployment's trusted firmware keys).
    pub firmware: FirmwareOptions,
}

impl Simulation {
    /// The same lockers behind `edge`: its device listener, its command key.
    pub fn behind(&self, edge: &RunningEdge) -> Simulation {
        Simulation {
            node: edge.devices_addr(),
            command_key: edge.command_key(),
            ..self.clone()
        }
    }
}

/// Starts a simulated locker for every station of `deployment`: those an edge node serves
/// connect to that edge node (`edges` names the running ones by id), the rest to the gateway.
pub async fn start_deployment(
    deployment: &DeployConfig,
    data_dir: &Path,
    gateway: Simulation,
    edges: &[(&str, &RunningEdge)],
) -> anyhow::Result<Vec<SimulatedLocker>> {
    let served_by = |station: &StationId| {
        deployment
            .edges
            .iter()
            .find(|e| e.stations.contains(station))
            .map(|e| e.id.as_str())
    };
    let direct: Vec<StationSeed> = deployment
        .stations
        .iter()
        .filter(|s| served_by(&s.record.id).is_none())
        .cloned()
        .collect();
    let mut lockers = start(&direct, data_dir, gateway.clone()).await?;
    for (id, edge) in edges {
        let behind: Vec<StationSeed> = deployment
            .stations
            .iter()
            .filter(|s| served_by(&s.record.id) == Some(*id))
            .cloned()
            .collect();
        lockers.extend(start(&behind, data_dir, gateway.behind(edge)).await?);
    }
    Ok(lockers)
}

/// The model simulated lockers report.
pub const SIMULATED_MODEL: &str = lockergrid_firmware_shim::agent::SIM_MODEL;

/// Where a simulated locker keeps its state and certificates under the data directory.
fn locker_dir(data_dir: &Path, station: &StationId) -> std::path::PathBuf {
    data_dir.join("lockers").join(station.as_str())
}

/// Provisions `station`'s simulated locker as a technician would, unless it has a certificate
/// already: a key of its own and a certificate over it from the registry, both written to its
/// directory under `data_dir`.
pub async fn provision(fleet: &Fleet, station: &StationId, data_dir: &Path) -> anyhow::Result<()> {
    let certs = locker_dir(data_dir, station).join("certs");
    if certs.join(format!("{station}.pem")).exists() {
        return Ok(());
    }
    let key = DeviceKey::generate()?;
    let actor = Actor {
        subject: "simulation".into(),
        role: "operator".into(),
    };
    let provisioned = fleet
        .provision(
            station.clone(),
            SIMULATED_MODEL.into(),
            &key.public_key_pem,
            actor,
        )
        .await?;
    write_credentials(
        &certs,
        station.as_str(),
        &provisioned.cert_pem,
        &key.key_pem,
        &provisioned.ca_pem,
    )?;
    Ok(())
}

/// Starts a simulated locker for each station, with its certificate and state under `data_dir`.
pub async fn start(
    stations: &[StationSeed],
    data_dir: &Path,
    simulation: Simulation,
) -> anyhow::Result<Vec<SimulatedLocker>> {
    let Simulation {
        fleet,
        node,
        command_key,
        heartbeat,
        clock,
        firmware,
    } = simulation;
    let mut started = Vec::with_capacity(stations.len());
    for seed in stations {
        let id = seed.record.id.as_str();
        let dir = locker_dir(data_dir, &seed.record.id);
        let certs = dir.join("certs");
        provision(&fleet, &seed.record.id, data_dir)
            .await
            .with_context(|| format!("provisioning locker {id}"))?;
        let tls = client_config(
            &certs.join("ca.pem"),
            &certs.join(format!("{id}.pem")),
            &certs.join(format!("{id}.key.pem")),
        )?;
        let mut compartments = Vec::new();
        for size in Size::ALL {
            for n in 1..=seed.compartments[size.index()] {
                compartments.push(CompartmentId::numbered(id, size, n)?);
            }
        }
        let sim = Arc::new(Mutex::new(SimLocker::new(compartments)));
        let (status_tx, status) = tokio::sync::watch::channel(Status::default());
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .context("simulation control socket")?;
        let control = listener.local_addr()?;
        tokio::spawn(control::serve(listener, sim.clone(), status));
        let hardware = sim.clone();
        let options = AgentOptions {
            locker: LockerId::new(id)?,
            host: node.ip().to_string(),
            port: node.port(),
            tls,
            command_key,
            state_dir: dir.join("state"),
            heartbeat,
            clock: clock.clone(),
            firmware: firmware.clone(),
        };
        let station = seed.record.id.clone();
        let name = station.clone();
        let power = tokio::spawn(async move {
            if let Err(e) = agent::run(options, sim, status_tx).await {
                tracing::error!(locker = %name, error = %e, "simulated locker stopped");
            }
        })
        .abort_handle();
        started.push(SimulatedLocker {
            station,
            control,
            hardware,
            power,
        });
    }
    Ok(started)
}
