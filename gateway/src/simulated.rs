//! The default deployment's simulated lockers: one shim agent per station, in this process, each
//! with its own certificate from the deployment's CA, its own state directory
//! (`<data_dir>/lockers/<station>/`) and its own simulation control socket. They connect to the
//! gateway's device listener over TLS 1.3 exactly as a real locker would.

use anyhow::Context;
use lockergrid_edge_runtime::pki::{Authority, Identity, Kind};
use lockergrid_edge_runtime::store::StationSeed;
use lockergrid_firmware_shim::agent::{self, AgentOptions, Status};
use lockergrid_firmware_shim::control;
use lockergrid_firmware_shim::sim::SimLocker;
use lockergrid_firmware_shim::tls::client_config;
use lockergrid_protocol::command::CommandPublicKey;
use lockergrid_protocol::size::Size;
use lockergrid_protocol::{CompartmentId, LockerId, StationId};
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
    /// Stops it, as if its power were cut.
    pub power: tokio::task::AbortHandle,
}

/// Starts a simulated locker for each station, connecting to `node` (the device listener),
/// trusting commands signed by `command_key`, with heartbeats every `heartbeat`.
pub async fn start(
    stations: &[StationSeed],
    data_dir: &Path,
    node: SocketAddr,
    command_key: CommandPublicKey,
    heartbeat: Duration,
) -> anyhow::Result<Vec<SimulatedLocker>> {
    let mut ca = Authority::open(&data_dir.join("pki")).context("device CA")?;
    let mut started = Vec::with_capacity(stations.len());
    for seed in stations {
        let id = seed.record.id.as_str();
        let dir = data_dir.join("lockers").join(id);
        let certs = dir.join("certs");
        if !certs.join(format!("{id}.pem")).exists() {
            ca.issue(&Identity::new(Kind::Locker, id)?, &[], 825)
                .and_then(|bundle| bundle.write_to(&certs, id, ca.ca_pem()))
                .with_context(|| format!("certificate for locker {id}"))?;
        }
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
        let options = AgentOptions {
            locker: LockerId::new(id)?,
            host: node.ip().to_string(),
            port: node.port(),
            tls,
            command_key,
            state_dir: dir.join("state"),
            heartbeat,
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
            power,
        });
    }
    Ok(started)
}
