//! A running gateway: the store opened in the data directory and seeded from the deployment, the
//! expiry sweep, the device plane (CA, TLS front, embedded broker) admitting what the device
//! registry holds, and the HTTP API on its
//! listener. Everything it starts stops when it is stopped
//! or dropped.

use crate::api::{self, App, AppParts, Limits};
use crate::auth::keyring::Keyring;
use crate::auth::revocations::Revocations;
use crate::config::DeployConfig;
use crate::devices::{self, Devices};
use crate::fleet::Fleet;
use crate::plugins::PluginStore;
use crate::secrets::Secrets;
use anyhow::Context;
use lockergrid_device_plane::{Admit, DevicePlane, Identity, Kind};
use lockergrid_model::{Clock, SystemClock};
use lockergrid_model::{PluginSigner, Trust};
use lockergrid_node::{Authority, Node, NodeOptions};
use lockergrid_plugin_host::{HostOptions, PluginHost};
use lockergrid_store::{Store, StoreOptions};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Name of the store file in the data directory.
pub const STORE_FILE: &str = "gateway.redb";

/// How to run a gateway beyond what the deployment file says.
#[derive(Clone)]
pub struct GatewayOptions {
    /// The clock; tests pass a manual one.
    pub clock: Arc<dyn Clock>,
    /// Overrides the deployment's listen address (e.g. `127.0.0.1:0`).
    pub listen: Option<SocketAddr>,
    /// Overrides the deployment's data directory.
    pub data_dir: Option<std::path::PathBuf>,
    /// Request limits.
    pub limits: Limits,
    /// How often expired holds and pickup windows are swept.
    pub sweep_every: Duration,
    /// How often the notification sender plans new messages and attempts due ones.
    pub notify_every: Duration,
    /// Overrides the deployment's device listener (e.g. `127.0.0.1:0`).
    pub devices: Option<SocketAddr>,
}

impl Default for GatewayOptions {
    fn default() -> Self {
        GatewayOptions {
            clock: Arc::new(SystemClock),
            listen: None,
            data_dir: None,
            limits: Limits::default(),
            sweep_every: Duration::from_secs(1),
            notify_every: Duration::from_millis(100),
            devices: None,
        }
    }
}

/// A gateway that is serving.
pub struct RunningGateway {
    /// Where the API listens.
    pub addr: SocketAddr,
    /// The API's shared state (store, token key, metrics).
    pub app: Arc<App>,
    /// The data directory.
    pub data_dir: std::path::PathBuf,
    /// Where lockers connect (MQTT over TLS 1.3).
    pub devices_addr: SocketAddr,
    shutdown: CancellationToken,
    device_plane: Option<DevicePlane>,
    device_task: Option<JoinHandle<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
    sweeper: Option<JoinHandle<()>>,
    rollouts: Option<JoinHandle<()>>,
    planner: Option<JoinHandle<()>>,
    admission: Option<JoinHandle<()>>,
}

/// Opens the store, seeds it from the deployment, starts the sweep and the API.
pub async fn start(
    deployment: &DeployConfig,
    options: GatewayOptions,
) -> anyhow::Result<RunningGateway> {
    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| deployment.data_dir.clone());
    lockergrid_files::private_dir(&data_dir)
        .with_context(|| format!("cannot create data directory {data_dir:?}"))?;
    let secrets = Secrets::load_or_create(&data_dir)?;
    let store = Store::open(
        &data_dir.join(STORE_FILE),
        StoreOptions {
            clock: options.clock.clone(),
            code_key: secrets.code_key(),
            commit_observer: None,
            edge: false,
            sealer: Some(Arc::new(secrets.contact_keys())),
            integrators: deployment
                .notifications
                .webhooks
                .iter()
                .map(|w| w.merchant.clone())
                .collect(),
        },
    )
    .with_context(|| format!("cannot open the store in {data_dir:?}"))?;
    let seeded = store.seed(deployment.stations.clone()).await?;
    if seeded.compartments_added > 0 {
        tracing::info!(
            stations = seeded.stations_added,
            compartments = seeded.compartments_added,
            "seeded from deployment"
        );
    }
    let listen = options.listen.unwrap_or(deployment.listen);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let plugins = start_plugins(deployment, &data_dir, &secrets).await?;
    let device_options = devices::prepare(
        deployment,
        &data_dir,
        options.devices.unwrap_or(deployment.devices),
    )?;
    let fleet = Arc::new(Fleet::new(
        store.clone(),
        data_dir.join("pki"),
        plugins.0.clone(),
    ));
    let adopted = fleet.adopt_legacy(&deployment.stations).await?;
    if adopted > 0 {
        tracing::info!(
            devices = adopted,
            "lockers that served before the device registry taken in as active"
        );
    }
    let shutdown = CancellationToken::new();
    let admission = tokio::spawn(lockergrid_node::follow_registry(
        store.clone(),
        device_options.admission.clone(),
        admitted_edges(deployment)?,
        shutdown.clone(),
    ));
    let (health, outbox) = Devices::new();
    let (plugins, plugin_store) = (plugins.0, Arc::new(plugins.1));
    let node = Arc::new(Node::new(NodeOptions {
        store: store.clone(),
        plugins: plugins.clone(),
        utc_offset_minutes: deployment.utc_offset_minutes,
        authority: Authority::Gateway,
    }));
    let firmware = Arc::new(
        crate::firmware::FirmwareStore::open(&data_dir, deployment.firmware_keys.clone())
            .context("cannot open the firmware store")?,
    );
    let rollouts = Arc::new(crate::rollouts::Rollouts::new(
        store.clone(),
        health.clone(),
        firmware.clone(),
        plugins.clone(),
        deployment.utc_offset_minutes,
    ));
    let app = App::new(AppParts {
        store: store.clone(),
        tokens: Keyring::open(&data_dir)?,
        revocations: Revocations::new(store.revocations()?),
        contacts: secrets.contact_keys(),
        hold: deployment.hold,
        plugins,
        plugin_store: plugin_store.clone(),
        node: node.clone(),
        devices: health.clone(),
        fleet,
        firmware: firmware.clone(),
        rollouts: rollouts.clone(),
        notifications: Arc::new(
            crate::notifications::Channels::new(deployment)
                .context("cannot start the notification channels")?,
        ),
    });
    let parts = devices::LockerParts {
        node,
        devices: health.clone(),
        plugin_store,
        firmware,
    };
    let (device_plane, device_task) = devices::start(
        device_options,
        parts,
        outbox,
        secrets.command_key(),
        &deployment.edges,
        shutdown.clone(),
    )
    .await?;
    let devices_addr = device_plane.addr();
    let sweeper = tokio::spawn(sweep(store, options.sweep_every, shutdown.clone()));
    let rollouts = tokio::spawn(rollouts.run(shutdown.clone()));
    let planner = tokio::spawn(crate::notifications::run(
        app.clone(),
        app.notifications.clone(),
        options.notify_every,
        shutdown.clone(),
    ));
    let server = tokio::spawn(api::serve(
        listener,
        app.clone(),
        options.limits,
        shutdown.clone().cancelled_owned(),
    ));
    tracing::info!(%addr, "gateway listening");
    Ok(RunningGateway {
        addr,
        app,
        data_dir,
        devices_addr,
        shutdown,
        device_plane: Some(device_plane),
        device_task: Some(device_task),
        server: Some(server),
        sweeper: Some(sweeper),
        rollouts: Some(rollouts),
        planner: Some(planner),
        admission: Some(admission),
    })
}

/// The deployment's edge nodes: the gateway's device front admits each with any certificate the
/// CA issued it (the gateway issues them itself at enrolment).
fn admitted_edges(deployment: &DeployConfig) -> anyhow::Result<Vec<(Identity, Admit)>> {
    deployment
        .edges
        .iter()
        .map(|edge| Ok((Identity::new(Kind::Edge, &edge.id)?, Admit::AnyCertificate)))
        .collect()
}

/// The plugin host with the policy in force loaded; on first start, the policy is installed from
/// the deployment's template with the bundled default plugins.
async fn start_plugins(
    deployment: &DeployConfig,
    data_dir: &Path,
    secrets: &Secrets,
) -> anyhow::Result<(Arc<PluginHost>, PluginStore)> {
    let options = HostOptions {
        region: Some(deployment.region_id.clone()),
        ..HostOptions::default()
    };
    let host = Arc::new(PluginHost::new(options, Trust::default())?);
    let plugin_store = PluginStore::open(data_dir)?;
    let signer = PluginSigner::from_secret(secrets.plugin_signing_secret());
    let resigned = plugin_store.sign_legacy(&signer)?;
    if resigned > 0 {
        tracing::info!(
            plugins = resigned,
            "the deployment's plugins signed again over their bindings"
        );
    }
    let policy = match (plugin_store.policy()?, &deployment.plugin_policy) {
        (Some(policy), _) => Some(policy),
        (None, Some(template)) => {
            let policy = plugin_store.install_defaults(template, &signer)?;
            tracing::info!(template = %template.display(), plugins = policy.plugins.len(), "default plugins installed");
            Some(policy)
        }
        (None, None) => None,
    };
    if let Some(policy) = policy {
        host.set_trust(policy.trust()?);
        let loaded = crate::plugins::load_all(&plugin_store, &host, &policy).await;
        let ok = loaded.iter().filter(|(_, r)| r.is_ok()).count();
        tracing::info!(loaded = ok, bound = loaded.len(), "plugins loaded");
    }
    Ok((host, plugin_store))
}

async fn sweep(store: Store, every: Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match store.expire_due().await {
            Ok(report) if report != Default::default() => {
                tracing::info!(
                    holds = report.holds_expired,
                    parcels = report.parcels_expired,
                    keys = report.keys_forgotten,
                    drop_offs = report.drop_offs_abandoned,
                    returns = report.returns_expired,
                    "expired"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "expiry sweep failed"),
        }
    }
}

impl RunningGateway {
    /// Issues a token with this gateway's signing key, valid as long as its role allows.
    pub fn token(
        &self,
        subject: &str,
        role: crate::auth::Role,
        stations: Vec<lockergrid_protocol::StationId>,
    ) -> Result<String, crate::auth::IssueError> {
        let tokens = self
            .app
            .tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (token, _) = tokens.signing_key().issue(
            subject,
            role,
            stations,
            self.app.store.now(),
            role.max_lifetime(),
        )?;
        Ok(token)
    }

    /// How simulated lockers reach this gateway: its device listener, its command key, its
    /// clock, and heartbeats every `heartbeat`.
    pub fn simulation(&self, heartbeat: Duration) -> anyhow::Result<crate::simulated::Simulation> {
        let store = self.app.store.clone();
        Ok(crate::simulated::Simulation {
            fleet: self.app.fleet.clone(),
            node: self.devices_addr,
            command_key: Secrets::load_or_create(&self.data_dir)?
                .command_key()
                .public(),
            heartbeat,
            clock: Arc::new(move || store.now()),
            firmware: lockergrid_firmware_shim::agent::FirmwareOptions {
                trusted: self.app.firmware.trusted().to_vec(),
                ..Default::default()
            },
        })
    }

    /// Resolves when the gateway has been asked to stop.
    pub async fn stopped(&self) {
        self.shutdown.cancelled().await;
    }

    /// Stops accepting requests, finishes those in flight, and stops the sweep.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await??;
        }
        if let Some(sweeper) = self.sweeper.take() {
            sweeper.await?;
        }
        if let Some(rollouts) = self.rollouts.take() {
            rollouts.await?;
        }
        if let Some(planner) = self.planner.take() {
            planner.await?;
        }
        if let Some(task) = self.device_task.take() {
            task.await?;
        }
        if let Some(task) = self.admission.take() {
            task.await?;
        }
        drop(self.device_plane.take());
        Ok(())
    }
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
