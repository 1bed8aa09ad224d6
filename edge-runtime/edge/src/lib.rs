//! An edge node (DESIGN.md §7): its own store, mirroring the stations it serves and kept in step
//! with the gateway through its uplink (the sync messages of `lockergrid-model`), and its own
//! device plane, where the lockers of those stations connect. Commands reach those lockers signed
//! by the edge node alone.
//!
//! It owns what only an edge node does: its task (`task`: the uplink's sync applied in order,
//! lockers' messages relayed up, the gateway's commands signed down), its uplink (`uplink`), the
//! drain of the decisions it made offline (`offline`, `drain`) and the plugins it verifies with
//! its own trust (`plugins`). What it decides, and the code caches it keeps on its lockers, is the
//! node crate's, the same code the gateway runs. It must never depend on the gateway or on any
//! HTTP machinery.

mod drain;
mod firmware;
mod offline;
mod plugins;
mod task;
mod uplink;

use lockergrid_device_plane::{DeviceOptions, DevicePlane};
use lockergrid_model::Clock;
use lockergrid_model::Trust;
use lockergrid_node::{Authority, CodeCaches, Node, NodeOptions};
use lockergrid_plugin_host::{HostOptions, PluginError, PluginHost};
use lockergrid_protocol::CodeKey;
use lockergrid_protocol::command::{CommandKey, CommandPublicKey};
use lockergrid_store::{Store, StoreOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use task::EdgeTask;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
pub use uplink::UplinkOptions;

/// Name of the edge node's store file in its data directory.
pub const EDGE_STORE_FILE: &str = "edge.redb";

/// How to run an edge node.
pub struct EdgeOptions {
    /// Its data directory (the store lives here).
    pub data_dir: PathBuf,
    /// The uplink to the gateway.
    pub uplink: UplinkOptions,
    /// Where its lockers connect.
    pub devices: DeviceOptions,
    /// The key it signs its lockers' commands with.
    pub command_key: CommandKey,
    /// The key its own store hashes codes with. The codes it mirrors keep the gateway's keyed
    /// hashes.
    pub code_key: CodeKey,
    /// Its clock.
    pub clock: Arc<dyn Clock>,
    /// The keys whose plugin signatures it accepts: those it was enrolled with.
    pub plugin_trust: Trust,
    /// Its region, for plugins bound at `region:` scopes.
    pub region: String,
    /// Its stations' offset from UTC, minutes, for site rules with opening hours.
    pub utc_offset_minutes: i32,
}

/// Why an edge node did not start.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    /// Its store could not be opened.
    #[error(transparent)]
    Store(#[from] lockergrid_store::StoreError),
    /// Its device plane could not start.
    #[error(transparent)]
    Devices(#[from] lockergrid_device_plane::DeviceError),
    /// Its plugin host could not start.
    #[error(transparent)]
    Plugins(#[from] PluginError),
}

/// An edge node that is running; dropping it stops it.
pub struct RunningEdge {
    store: Store,
    connected: watch::Receiver<bool>,
    devices_addr: SocketAddr,
    command_key: CommandPublicKey,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
    loader: Option<JoinHandle<()>>,
    admission: Option<JoinHandle<()>>,
    _plane: DevicePlane,
}

/// Opens the edge node's store, starts its device plane and its uplink.
pub async fn start(options: EdgeOptions) -> Result<RunningEdge, EdgeError> {
    let store = Store::open(
        &options.data_dir.join(EDGE_STORE_FILE),
        StoreOptions {
            clock: options.clock,
            code_key: options.code_key,
            commit_observer: None,
            edge: true,
            sealer: None,
            integrators: Default::default(),
        },
    )?;
    let crl = options.devices.crl.clone();
    let shutdown = CancellationToken::new();
    // Its lockers are admitted by the registry entries the gateway mirrors to it, kept in its
    // store: after a restart while cut off it still admits exactly those.
    let admission = tokio::spawn(lockergrid_node::follow_registry(
        store.clone(),
        options.devices.admission.clone(),
        Vec::new(),
        shutdown.clone(),
    ));
    let (plane, lockers) = DevicePlane::start(options.devices).await?;
    let (connected_tx, connected) = watch::channel(false);
    let (client, uplink) = uplink::connect(&options.uplink);
    let command_key = options.command_key.public();
    let host = PluginHost::new(
        HostOptions {
            region: Some(options.region),
            ..HostOptions::default()
        },
        options.plugin_trust,
    )?;
    let plugins = plugins::EdgePlugins::new(Arc::new(host));
    let loader = tokio::spawn(plugins.clone().run(store.clone(), shutdown.clone()));
    let node = Arc::new(Node::new(NodeOptions {
        store: store.clone(),
        plugins: plugins.host.clone(),
        utc_offset_minutes: options.utc_offset_minutes,
        authority: Authority::Edge(connected.clone()),
    }));
    let task = EdgeTask {
        edge: options.uplink.edge.clone(),
        store: store.clone(),
        client,
        lockers,
        key: options.command_key,
        connected: connected_tx,
        crl,
        drain: drain::Drain::default(),
        caches: CodeCaches::default(),
        plugins,
        node,
        firmware: firmware::FirmwareCache::open(&options.data_dir),
    };
    let task = tokio::spawn(task.run(uplink, options.uplink.heartbeat, shutdown.clone()));
    Ok(RunningEdge {
        store,
        connected,
        devices_addr: plane.addr(),
        command_key,
        shutdown,
        task: Some(task),
        loader: Some(loader),
        admission: Some(admission),
        _plane: plane,
    })
}

impl RunningEdge {
    /// The edge node's store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether the uplink is connected now; changes as it comes and goes.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// Where its lockers connect.
    pub fn devices_addr(&self) -> SocketAddr {
        self.devices_addr
    }

    /// The key its lockers verify commands with.
    pub fn command_key(&self) -> CommandPublicKey {
        self.command_key
    }

    /// Stops the edge node and waits for its task.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let tasks = [self.task.take(), self.loader.take(), self.admission.take()];
        for task in tasks.into_iter().flatten() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningEdge {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
