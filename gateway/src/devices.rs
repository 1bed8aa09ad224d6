//! The gateway's device plane: its certificate authority and device listener, and what it does
//! with what lockers say — heartbeats keep a station online, missed ones take it offline (and out
//! of discovery) until it reports again, a tamper alarm raises an alert and takes the station out
//! of service, and everything the TLS front refuses or cuts goes to the access log.

use crate::config::Deployment;
use anyhow::Context;
use lockergrid_edge_runtime::Store;
use lockergrid_edge_runtime::device::{Audit, DeviceOptions, DevicePlane, NodeLink, Notification};
use lockergrid_edge_runtime::pki::{Authority, Identity, Kind};
use lockergrid_edge_runtime::store::StatusChange;
use lockergrid_edge_runtime::store::records::{Actor, StationStatus};
use lockergrid_protocol::message::{
    DeviceEvent, Downlink, EventMessage, MESSAGE_VERSION, TelemetryMessage,
};
use lockergrid_protocol::topic::{Channel, Root, Topic};
use lockergrid_protocol::{StationId, Timestamp};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The gateway's id in its own device certificate.
const NODE_ID: &str = "gateway";
/// A station whose locker has not reported for this long is offline.
pub const OFFLINE_AFTER: Duration = Duration::from_secs(30);
/// Alerts kept per station for the health view.
const ALERTS_KEPT: usize = 32;

/// An alert raised by a locker's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
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
    pub alerts: VecDeque<Alert>,
}

impl Health {
    /// Whether the locker reported within [`OFFLINE_AFTER`] of `now`.
    pub fn online(&self, now: Timestamp) -> bool {
        self.last_seen.is_some_and(|seen| {
            now.millis().saturating_sub(seen.millis()) <= OFFLINE_AFTER.as_millis() as u64
        })
    }
}

/// Health of every station's locker, shared with the API.
#[derive(Debug, Default)]
pub struct Devices {
    health: Mutex<HashMap<StationId, Health>>,
}

impl Devices {
    /// The health of `station`'s locker (empty when it never reported).
    pub fn health(&self, station: &StationId) -> Health {
        self.health
            .lock()
            .expect("health lock")
            .get(station)
            .cloned()
            .unwrap_or_default()
    }

    fn update(&self, station: &StationId, change: impl FnOnce(&mut Health)) {
        let mut health = self.health.lock().expect("health lock");
        change(health.entry(station.clone()).or_default());
    }

    fn alert(&self, station: &StationId, at: Timestamp, kind: &str, detail: String) {
        tracing::warn!(%station, kind, %detail, "locker alert");
        self.update(station, |h| {
            h.alerts.push_back(Alert {
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
    deployment: &Deployment,
    data_dir: &Path,
    listen: SocketAddr,
) -> anyhow::Result<DeviceOptions> {
    let pki = data_dir.join("pki");
    let (mut ca, created) =
        Authority::open_or_create(&pki, &format!("{} device CA", deployment.region_name))
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

/// Starts the device plane and the task that serves the node's side of it.
pub async fn start(
    options: DeviceOptions,
    store: Store,
    devices: Arc<Devices>,
    shutdown: CancellationToken,
) -> anyhow::Result<(DevicePlane, tokio::task::JoinHandle<()>)> {
    let (plane, link) = DevicePlane::start(options).await.context("device plane")?;
    tracing::info!(addr = %plane.addr(), "device listener (MQTT over TLS 1.3)");
    let task = tokio::spawn(serve(link, store, devices, shutdown));
    Ok((plane, task))
}

fn device_actor(identity: Option<&Identity>) -> Actor {
    Actor {
        subject: identity.map_or_else(
            || "unknown-device".into(),
            |i| format!("{}:{}", i.kind, i.id),
        ),
        role: "device".into(),
    }
}

async fn serve(
    mut link: NodeLink,
    store: Store,
    devices: Arc<Devices>,
    shutdown: CancellationToken,
) {
    for channel in [Channel::Events, Channel::Telemetry, Channel::Acks] {
        if let Err(e) = link.tx.subscribe(Topic::every(Root::Locker, channel)) {
            tracing::error!(error = %e, "device plane: cannot subscribe; lockers will not be heard");
            return;
        }
    }
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            audit = link.audit.recv() => match audit {
                Some(audit) => record_audit(&store, audit).await,
                None => break,
            },
            notification = link.rx.next() => match notification {
                Ok(Some(Notification::Forward(forward))) => {
                    let topic = String::from_utf8_lossy(&forward.publish.topic).into_owned();
                    handle(&mut link, &store, &devices, &topic, &forward.publish.payload).await;
                }
                Ok(Some(Notification::Unschedule)) => {
                    if link.rx.wake().await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "device plane: the broker link closed");
                    break;
                }
            },
            _ = sweep.tick() => mark_offline(&store, &devices).await,
        }
    }
}

async fn record_audit(store: &Store, audit: Audit) {
    let (identity, action, target, outcome) = match &audit {
        Audit::Refused {
            peer,
            identity,
            reason,
        } => (
            identity.as_ref(),
            "device_refused",
            peer.to_string(),
            reason.clone(),
        ),
        Audit::Connected { identity, serial } => (
            Some(identity),
            "device_connected",
            identity.id.clone(),
            format!("serial {serial}"),
        ),
        Audit::Violation { identity, attempt } => (
            Some(identity),
            "device_violation",
            identity.id.clone(),
            format!("disconnected: {attempt}"),
        ),
        Audit::Revoked { identity, serial } => (
            Some(identity),
            "device_revoked",
            identity.id.clone(),
            format!("session cut: serial {serial} revoked"),
        ),
        Audit::Disconnected { identity } => (
            Some(identity),
            "device_disconnected",
            identity.id.clone(),
            "closed".into(),
        ),
    };
    if let Err(e) = store
        .record(device_actor(identity), action, &target, &outcome, None)
        .await
    {
        tracing::error!(error = %e, ?audit, "device audit not recorded");
    }
}

async fn handle(
    link: &mut NodeLink,
    store: &Store,
    devices: &Devices,
    topic: &str,
    payload: &[u8],
) {
    let Some(topic) = Topic::parse(topic) else {
        return;
    };
    // The front lets a locker publish only under its own id, so the topic names the sender.
    let Ok(station) = StationId::new(topic.id) else {
        return;
    };
    let now = store.now();
    match topic.channel {
        Channel::Telemetry => match serde_json::from_slice::<TelemetryMessage>(payload) {
            Ok(telemetry) if telemetry.v == MESSAGE_VERSION => {
                devices.update(&station, |h| {
                    h.last_seen = Some(now);
                    h.telemetry = Some(telemetry);
                });
                back_online(store, devices, &station).await;
            }
            Ok(other) => {
                tracing::warn!(%station, version = other.v, "telemetry of an unknown version")
            }
            Err(e) => tracing::warn!(%station, error = %e, "unreadable telemetry"),
        },
        Channel::Events => match serde_json::from_slice::<EventMessage>(payload) {
            Ok(event) if event.v == MESSAGE_VERSION && event.locker.as_str() == topic.id => {
                devices.update(&station, |h| h.last_seen = Some(now));
                back_online(store, devices, &station).await;
                if apply_event(store, devices, &station, &event).await {
                    let ack = Downlink {
                        v: MESSAGE_VERSION,
                        command: None,
                        acked_events: vec![event.id],
                    };
                    if let Ok(json) = serde_json::to_vec(&ack) {
                        let commands = Topic::locker(topic.id, Channel::Commands).to_string();
                        if let Err(e) = link.tx.publish(commands, json) {
                            tracing::warn!(%station, error = %e, "event acknowledgement not sent");
                        }
                    }
                }
            }
            Ok(other) => {
                tracing::warn!(%station, id = %other.id, "event of an unknown version or locker")
            }
            Err(e) => tracing::warn!(%station, error = %e, "unreadable event"),
        },
        Channel::Acks | Channel::Commands => {}
    }
}

/// Applies an event; `true` when it is safely recorded and the locker may forget it. Events the
/// gateway does not act on yet stay in the locker's queue.
async fn apply_event(
    store: &Store,
    devices: &Devices,
    station: &StationId,
    event: &EventMessage,
) -> bool {
    match &event.event {
        DeviceEvent::Tamper { tripped: true } => {
            devices.alert(
                station,
                store.now(),
                "tamper",
                format!("tamper switch tripped (event {})", event.id),
            );
            let change = StatusChange {
                station: station.clone(),
                from: vec![StationStatus::Active, StationStatus::Offline],
                to: StationStatus::OutOfService,
                actor: device_actor(Some(&Identity {
                    kind: Kind::Locker,
                    id: station.to_string(),
                })),
                reason: format!("tamper alarm, event {}", event.id),
            };
            match store.set_station_status(change).await {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!(%station, error = %e, "tamper alarm not recorded");
                    false
                }
            }
        }
        DeviceEvent::Tamper { tripped: false } => {
            devices.alert(
                station,
                store.now(),
                "tamper-reset",
                format!("tamper switch reset (event {})", event.id),
            );
            true
        }
        DeviceEvent::DoorOpened { .. }
        | DeviceEvent::DoorClosed { .. }
        | DeviceEvent::CodeEntered { .. } => false,
    }
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
