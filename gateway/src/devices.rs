//! The gateway's device plane: its certificate authority and device listener, and what it does
//! with what lockers say. Heartbeats keep a station online, missed ones take it offline (and out
//! of discovery) until it reports again, a tamper alarm raises an alert and takes the station out
//! of service, and everything the TLS front refuses or cuts goes to the access log. Unlock
//! commands for deposits and pickups go out signed from the store's command outbox until the
//! locker acknowledges them; the door-closed event that names one completes its deposit or
//! pickup, applied once.

mod assess;
mod edges;
mod firmware;
mod lockers;
mod metrics;
mod registry;

use crate::config::{DeployConfig, EdgeNode};
use crate::plugins::PluginStore;
use anyhow::Context;
pub use edges::EdgeState;
use lockergrid_device_plane::{CertificateAuthority, Identity, Kind};
use lockergrid_device_plane::{DeviceOptions, DevicePlane};
use lockergrid_model::{Actor, CommandRecord, Parcel, ReturnRecord, StationStatus};
use lockergrid_node::Node;
use lockergrid_protocol::command::CommandKey;
use lockergrid_protocol::message::{FirmwareDownlink, TelemetryMessage};
use lockergrid_protocol::{StationId, Timestamp};
use lockergrid_store::Store;
use lockergrid_store::{Deposit, StatusChange};
use lockers::LockerTask;
pub use metrics::{DeviceMetrics, RolloutIdLabel, RolloutLabels};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// The gateway's id in its own device certificate.
const NODE_ID: &str = "gateway";
/// A station whose locker has not reported for this long is offline.
pub const OFFLINE_AFTER: Duration = Duration::from_secs(30);
/// Alerts kept per station for the health view.
const ALERTS_KEPT: usize = 32;

/// An alert raised by a locker's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StationAlert {
    /// When the node raised it.
    pub at: Timestamp,
    /// What kind: `tamper`, `offline`, …
    pub kind: String,
    /// For people.
    pub detail: String,
}

/// What the gateway knows of one station's locker.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// When the node last heard from it.
    pub last_seen: Option<Timestamp>,
    /// Its latest heartbeat.
    pub telemetry: Option<TelemetryMessage>,
    /// Recent alerts, newest last.
    pub alerts: VecDeque<StationAlert>,
}

impl Health {
    /// Whether the locker reported within [`OFFLINE_AFTER`] of `now`.
    pub fn online(&self, now: Timestamp) -> bool {
        self.last_seen.is_some_and(|seen| {
            now.millis().saturating_sub(seen.millis()) <= OFFLINE_AFTER.as_millis() as u64
        })
    }
}

/// How a deposit's or a return collection's unlock command ended, for the agent's or carrier's
/// request waiting on it.
#[derive(Debug)]
pub enum DoorEnd {
    /// The door closed: the parcel is stored and its code issued.
    Deposited(Deposit),
    /// The door closed: the carrier took the return away.
    Collected(ReturnRecord),
    /// The door closed: the carrier took the expired parcel back to its sender.
    ParcelReturned(Parcel),
    /// The locker refused or failed the unlock, or never acknowledged it before it expired.
    NotUnlocked(CommandRecord),
    /// The door closed but the deposit or collection was no longer possible.
    Conflict(String),
}

/// The lockers as the API sees them: their health, the way to their command outbox, the
/// agents' requests waiting for a door to close, and the device task's metrics.
#[derive(Debug)]
pub struct Devices {
    metrics: DeviceMetrics,
    health: Mutex<HashMap<StationId, Health>>,
    commands: mpsc::UnboundedSender<CommandRecord>,
    firmware: mpsc::UnboundedSender<(StationId, FirmwareDownlink)>,
    doors: Mutex<HashMap<String, oneshot::Sender<DoorEnd>>>,
    edges: Mutex<BTreeMap<String, EdgeState>>,
}

/// Commands the API issued and firmware offers of rollouts, on their way to the node's
/// command loop.
#[derive(Debug)]
pub struct Outbox {
    commands: mpsc::UnboundedReceiver<CommandRecord>,
    firmware: mpsc::UnboundedReceiver<(StationId, FirmwareDownlink)>,
}

impl Devices {
    /// The shared state and the receiving end of its command outbox.
    pub fn new() -> (Arc<Devices>, Outbox) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (firmware, firmware_rx) = mpsc::unbounded_channel();
        let devices = Devices {
            metrics: DeviceMetrics::default(),
            health: Mutex::default(),
            commands,
            firmware,
            doors: Mutex::default(),
            edges: Mutex::default(),
        };
        let outbox = Outbox {
            commands: command_rx,
            firmware: firmware_rx,
        };
        (Arc::new(devices), outbox)
    }

    /// What the device task counts.
    pub fn metrics(&self) -> &DeviceMetrics {
        &self.metrics
    }

    /// The health of `station`'s locker (empty when it never reported).
    pub fn health(&self, station: &StationId) -> Health {
        self.health
            .lock()
            .expect("health lock")
            .get(station)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether `station`'s locker reported within [`OFFLINE_AFTER`] of `now`: an unlock sent to it
    /// now can be expected to arrive.
    pub fn online(&self, station: &StationId, now: Timestamp) -> bool {
        self.health
            .lock()
            .expect("health lock")
            .get(station)
            .is_some_and(|h| h.online(now))
    }

    /// How many lockers reported within [`OFFLINE_AFTER`] of `now`.
    pub fn online_count(&self, now: Timestamp) -> usize {
        self.health
            .lock()
            .expect("health lock")
            .values()
            .filter(|h| h.online(now))
            .count()
    }

    /// Hands a command the store has recorded to the node, which sends it until the locker
    /// acknowledges it or it expires. A command that does not get here (the node stopping) is
    /// sent after the next start, from the store.
    pub fn send(&self, command: CommandRecord) {
        if self.commands.send(command).is_err() {
            tracing::warn!("the device plane has stopped; the command waits for the next start");
        }
    }

    /// Sends `station`'s locker a firmware offer or cancellation (directly or through its edge
    /// node); a locker that is not connected hears nothing, and its rollout offers again.
    pub fn send_firmware(&self, station: StationId, firmware: FirmwareDownlink) {
        if self.firmware.send((station, firmware)).is_err() {
            tracing::warn!(
                "the device plane has stopped; the firmware offer waits for the next start"
            );
        }
    }

    /// Tells the caller how the deposit or collection unlock `command` ends.
    pub fn watch_door(&self, command: &str) -> oneshot::Receiver<DoorEnd> {
        let (tx, rx) = oneshot::channel();
        self.doors
            .lock()
            .expect("doors lock")
            .insert(command.to_owned(), tx);
        rx
    }

    /// Stops telling anyone about `command`.
    pub fn forget_door(&self, command: &str) {
        self.doors.lock().expect("doors lock").remove(command);
    }

    fn finish_door(&self, command: &str, end: DoorEnd) {
        let waiting = self.doors.lock().expect("doors lock").remove(command);
        if let Some(tx) = waiting {
            let _ = tx.send(end);
        }
    }

    /// What the gateway knows of each edge node, by id.
    pub fn edges(&self) -> Vec<EdgeState> {
        self.edges
            .lock()
            .expect("edges lock")
            .values()
            .cloned()
            .collect()
    }

    fn update_edge(&self, id: &str, change: impl FnOnce(&mut EdgeState)) {
        if let Some(state) = self.edges.lock().expect("edges lock").get_mut(id) {
            change(state);
        }
    }

    fn register_edges(&self, states: Vec<EdgeState>) {
        let mut edges = self.edges.lock().expect("edges lock");
        for state in states {
            edges.insert(state.id.clone(), state);
        }
    }

    fn update(&self, station: &StationId, change: impl FnOnce(&mut Health)) {
        let mut health = self.health.lock().expect("health lock");
        change(health.entry(station.clone()).or_default());
    }

    fn alert(&self, station: &StationId, at: Timestamp, kind: &str, detail: String) {
        tracing::warn!(%station, kind, %detail, "locker alert");
        self.update(station, |h| {
            h.alerts.push_back(StationAlert {
                at,
                kind: kind.into(),
                detail,
            });
            while h.alerts.len() > ALERTS_KEPT {
                h.alerts.pop_front();
            }
        });
    }
}

/// Where the gateway's device TLS material lives: `<data_dir>/pki` for the CA and
/// `<data_dir>/pki/nodes/` for its own certificate.
fn node_files(pki: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let dir = pki.join("nodes");
    (
        dir.clone(),
        dir.join(format!("{NODE_ID}.pem")),
        dir.join(format!("{NODE_ID}.key.pem")),
    )
}

/// Creates the deployment's CA on first start and the gateway's own certificate for its device
/// listener if it has none, and returns the device plane's options.
pub fn prepare(
    deployment: &DeployConfig,
    data_dir: &Path,
    listen: SocketAddr,
) -> anyhow::Result<DeviceOptions> {
    let pki = data_dir.join("pki");
    let (mut ca, created) = CertificateAuthority::open_or_create(
        &pki,
        &format!("{} device CA", deployment.region_name),
    )
    .context("device CA")?;
    if created {
        tracing::info!(dir = %pki.display(), "device CA created");
    }
    let (dir, cert, key) = node_files(&pki);
    if !cert.exists() || !key.exists() {
        let mut hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
            hosts.push(listen.ip().to_string());
        }
        ca.issue(&Identity::new(Kind::Node, NODE_ID)?, &hosts, 825)
            .and_then(|bundle| bundle.write_to(&dir, NODE_ID, ca.ca_pem()))
            .context("the gateway's device certificate")?;
    }
    Ok(DeviceOptions::new(listen, pki, cert, key))
}

/// What the device task works with: the node that decides its lockers' events, the lockers'
/// shared state, and the plugin directory whose site rules travel to edge nodes.
pub struct LockerParts {
    /// The gateway's node.
    pub node: Arc<Node>,
    /// The lockers' shared state.
    pub devices: Arc<Devices>,
    /// The plugin directory.
    pub plugin_store: Arc<PluginStore>,
    /// The firmware images lockers and edge nodes fetch.
    pub firmware: Arc<crate::firmware::FirmwareStore>,
}

/// Starts the device plane and the task that serves the node's side of it: commands from the
/// outbox signed with `key`, events applied once through the store.
pub async fn start(
    options: DeviceOptions,
    parts: LockerParts,
    commands: Outbox,
    key: CommandKey,
    edges: &[EdgeNode],
    shutdown: CancellationToken,
) -> anyhow::Result<(DevicePlane, tokio::task::JoinHandle<()>)> {
    let crl = options.crl.clone();
    let (plane, link) = DevicePlane::start(options).await.context("device plane")?;
    tracing::info!(addr = %plane.addr(), "device listener (MQTT over TLS 1.3)");
    let (assessor, assessing) =
        assess::Assessor::start(parts.node.clone(), parts.devices.clone(), shutdown.clone());
    let task = LockerTask::new(link, parts, key, edges, crl, assessor);
    let serving = tokio::spawn(async move {
        task.serve(commands, shutdown).await;
        if let Err(e) = assessing.await {
            tracing::error!(error = %e, "telemetry assessment task failed");
        }
    });
    Ok((plane, serving))
}

/// A station's status as the availability snapshot has it: read without a store round trip, so
/// heartbeats and the sweep write only when a status really changes.
fn status(store: &Store, station: &StationId) -> Option<StationStatus> {
    store
        .snapshot()
        .station(station)
        .map(|view| view.record.status)
}

async fn back_online(store: &Store, devices: &Devices, station: &StationId) {
    if status(store, station) != Some(StationStatus::Offline) {
        return;
    }
    let change = StatusChange {
        station: station.clone(),
        from: vec![StationStatus::Offline],
        to: StationStatus::Active,
        actor: Actor::system(),
        reason: "the locker reports again".into(),
    };
    match store.set_station_status(change).await {
        Ok(true) => devices.alert(
            station,
            store.now(),
            "online",
            "the locker reports again".into(),
        ),
        Ok(false) => {}
        Err(e) => tracing::error!(%station, error = %e, "station not marked online"),
    }
}

/// Takes offline every active station whose locker reported once and then went quiet for
/// [`OFFLINE_AFTER`]. A station that never reported stays as it is.
async fn mark_offline(store: &Store, devices: &Devices) {
    let now = store.now();
    let quiet: Vec<StationId> = devices
        .health
        .lock()
        .expect("health lock")
        .iter()
        .filter(|(id, h)| {
            h.last_seen.is_some()
                && !h.online(now)
                && status(store, id) == Some(StationStatus::Active)
        })
        .map(|(id, _)| id.clone())
        .collect();
    for station in quiet {
        let change = StatusChange {
            station: station.clone(),
            from: vec![StationStatus::Active],
            to: StationStatus::Offline,
            actor: Actor::system(),
            reason: format!("no heartbeat for {} s", OFFLINE_AFTER.as_secs()),
        };
        match store.set_station_status(change).await {
            Ok(true) => devices.alert(
                &station,
                now,
                "offline",
                format!("no heartbeat for {} s", OFFLINE_AFTER.as_secs()),
            ),
            Ok(false) => {}
            Err(e) => tracing::error!(%station, error = %e, "station not marked offline"),
        }
    }
}
