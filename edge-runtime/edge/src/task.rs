//! The edge node's task: its uplink to the gateway (sync batches applied in order, status
//! reported), and the lockers of its stations behind its own TLS front. Their events, telemetry
//! and command acknowledgements go up unchanged; the gateway's commands for them come down as
//! requests that the edge node signs with its own key and counter (see
//! [`LockerDownlink`](lockergrid_model::LockerDownlink)).

use super::drain::Drain;
use super::firmware::FirmwareCache;
use super::plugins::EdgePlugins;
use crate::uplink::{Link, MAX_UPLINK};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use lockergrid_device_plane::{Audit, NodeLink, Notification};
use lockergrid_files::{Mode, write_atomic};
use lockergrid_model::{CommandRecord, CommandStatus};
use lockergrid_model::{
    EdgeDownlink, EdgeStatus, EdgeUplink, LeaseHeld, LockerDownlink, RelayedChannel, SYNC_VERSION,
    SyncItem, UplinkBody,
};
use lockergrid_node::{CACHE_CHECK, CodeCaches, Node};
use lockergrid_node::{ack_for, command_event, locker_actor, record_audit, sign_unlock};
use lockergrid_protocol::command::{CommandKey, SignedCommand};
use lockergrid_protocol::message::{
    AckMessage, Downlink, FirmwareDownlink, MESSAGE_VERSION, TelemetryMessage,
};
use lockergrid_protocol::topic::{Channel, Root, Topic};
use lockergrid_protocol::{LockerId, StationId};
use lockergrid_store::Store;
use rumqttc::{AsyncClient, Packet, QoS};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use std::time::Instant;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Room in an uplink packet for its MQTT header and topic.
const UPLINK_HEADROOM: usize = 1_024;

/// The edge node's state while it runs.
pub(super) struct EdgeTask {
    pub edge: String,
    pub store: Store,
    pub client: AsyncClient,
    pub lockers: NodeLink,
    pub key: CommandKey,
    pub connected: watch::Sender<bool>,
    /// Where its front reads the revocation list from.
    pub crl: PathBuf,
    /// When the outbox is sent next, and the wait after that.
    pub drain: Drain,
    /// The lockers connected now, each with the code cache last sent to it.
    pub caches: CodeCaches,
    /// Its plugin host and the plugins the gateway sent.
    pub plugins: EdgePlugins,
    /// What it decides itself: code entries and doors while its uplink is down, and the doors
    /// of its own unlocks.
    pub node: Arc<Node>,
    /// The firmware images its lockers fetch.
    pub firmware: FirmwareCache,
}

impl EdgeTask {
    pub(super) async fn run(
        mut self,
        mut uplink: mpsc::Receiver<Link>,
        heartbeat: Duration,
        shutdown: CancellationToken,
    ) {
        for channel in [
            Channel::Events,
            Channel::Telemetry,
            Channel::Acks,
            Channel::Firmware,
        ] {
            if let Err(e) = self
                .lockers
                .tx
                .subscribe(Topic::every(Root::Locker, channel))
            {
                tracing::error!(error = %e, "edge node: cannot hear its lockers");
                return;
            }
        }
        let mut heartbeat = tokio::time::interval(heartbeat);
        let mut drain_tick = tokio::time::interval(Duration::from_millis(100));
        let mut cache_tick = tokio::time::interval(CACHE_CHECK);
        cache_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                packet = uplink.recv() => match packet {
                    Some(Link::Packet(Packet::ConnAck(_))) => {
                        let commands = self.topic(Channel::Commands);
                        self.client.try_subscribe(commands, QoS::AtLeastOnce).ok();
                    }
                    Some(Link::Packet(Packet::SubAck(_))) => {
                        self.connected.send_replace(true);
                        tracing::info!(edge = %self.edge, "uplink connected");
                        self.drain = Drain::default();
                        self.send_outbox();
                        self.report();
                    }
                    Some(Link::Packet(Packet::Publish(publish))) => {
                        self.downlink(&publish.payload).await;
                    }
                    Some(Link::Packet(_)) => {}
                    Some(Link::Lost) => {
                        if self.connected.send_replace(false) {
                            tracing::warn!(edge = %self.edge, "uplink lost");
                        }
                    }
                    None => break,
                },
                audit = self.lockers.audit.recv() => match audit {
                    Some(audit) => self.audit(audit).await,
                    None => break,
                },
                notification = self.lockers.rx.next() => match notification {
                    Ok(Some(Notification::Forward(forward))) => {
                        let topic = String::from_utf8_lossy(&forward.publish.topic).into_owned();
                        self.heard(&topic, &forward.publish.payload).await;
                    }
                    Ok(Some(Notification::Unschedule)) => {
                        if self.lockers.rx.wake().await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "edge node: the broker link closed");
                        break;
                    }
                },
                _ = heartbeat.tick() => {
                    if *self.connected.borrow() {
                        self.report();
                    }
                }
                _ = drain_tick.tick() => {
                    if *self.connected.borrow() && Instant::now() >= self.drain.next {
                        self.send_outbox();
                    }
                }
                _ = cache_tick.tick() => self.refresh_caches().await,
            }
        }
    }

    pub(super) fn topic(&self, channel: Channel) -> String {
        Topic {
            root: Root::Edge,
            id: &self.edge,
            channel,
        }
        .to_string()
    }

    /// Whether `locker` belongs to a station this edge node mirrors.
    pub(super) fn serves(&self, locker: &LockerId) -> bool {
        serves(&self.store, locker)
    }

    /// Sends each connected locker of its stations its station's active codes and code key
    /// whenever they differ from what it was sent last.
    async fn refresh_caches(&mut self) {
        let store = self.store.clone();
        let due = self
            .caches
            .due(&store, &self.key, |locker| serves(&store, locker))
            .await;
        for (locker, command) in due {
            self.tell_locker(&locker, Some(command), Vec::new(), None);
        }
    }

    /// Applies the gateway's sync batches in order, then passes its commands and
    /// acknowledgements on to the lockers, then reports where the store stands.
    async fn downlink(&mut self, payload: &[u8]) {
        let downlink: EdgeDownlink = match serde_json::from_slice(payload) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable downlink ignored");
                return;
            }
        };
        if downlink.v != SYNC_VERSION {
            tracing::warn!(
                version = downlink.v,
                "downlink of an unknown version ignored"
            );
            return;
        }
        if let Some(seq) = downlink.decisions_applied {
            match self.store.drained(seq).await {
                Ok(()) => {
                    self.drain = Drain::default();
                    self.send_outbox();
                    if self.store.edge_outbox_depth().is_ok_and(|n| n == 0) {
                        // Sync waited for the outbox; the report makes the gateway send it.
                        self.report();
                    }
                }
                Err(e) => tracing::error!(error = %e, "confirmed decisions not dropped"),
            }
        }
        let synced = !downlink.sync.is_empty();
        for batch in downlink.sync {
            // The list is written before the batch that carries it is recorded as applied, so a
            // crash in between only means writing it again.
            if batch.applies_on(self.store.sync_position().ok().flatten().as_ref())
                && let Some(pem) = batch.items.iter().find_map(|item| match item {
                    SyncItem::Crl { pem } => Some(pem),
                    _ => None,
                })
                && let Err(e) = self.write_crl(pem)
            {
                tracing::error!(error = %e, "revocation list not written; batch not applied");
                break;
            }
            let (version, full) = (batch.version, batch.full);
            match self.store.apply_sync(batch).await {
                Ok(true) => {
                    tracing::debug!(version, full, "sync applied");
                    self.plugins.changed();
                }
                Ok(false) => tracing::debug!(version, "sync batch does not fit; skipped"),
                Err(e) => {
                    tracing::error!(error = %e, "sync batch not applied");
                    break;
                }
            }
        }
        for locker in downlink.lockers {
            self.pass_down(locker).await;
        }
        if let Some(bytes) = downlink.firmware {
            self.firmware_bytes(bytes);
        }
        if synced {
            self.report();
        }
    }

    fn write_crl(&self, pem: &str) -> std::io::Result<()> {
        let (Some(dir), Some(name)) = (self.crl.parent(), self.crl.file_name()) else {
            return Err(std::io::Error::other("no revocation list path"));
        };
        let dir = Dir::open_ambient_dir(dir, ambient_authority())?;
        write_atomic(&dir, &name.to_string_lossy(), pem.as_bytes(), Mode::Public)
    }

    /// One locker's share of a downlink: the command signed with the edge node's counter (or
    /// the locker's recorded answer, if it has answered already), and the acknowledgements.
    async fn pass_down(&mut self, downlink: LockerDownlink) {
        if !self.serves(&downlink.locker) {
            tracing::warn!(locker = %downlink.locker, "downlink for a locker this edge node does not serve");
            return;
        }
        let mut down = Downlink {
            v: MESSAGE_VERSION,
            command: None,
            acked_events: downlink.acked_events,
            firmware: downlink.firmware,
        };
        if let Some(command) = downlink.command {
            match self.store.relay_command(command).await {
                Ok(record) if record.status == CommandStatus::Pending => {
                    down.command = Some(sign_unlock(&self.key, &downlink.locker, &record));
                }
                Ok(record) => self.answer(&downlink.locker, &record),
                Err(e) => {
                    tracing::error!(error = %e, "command not recorded; the gateway sends it again")
                }
            }
        }
        if down.command.is_none() && down.acked_events.is_empty() && down.firmware.is_none() {
            return;
        }
        self.tell_locker(
            &downlink.locker,
            down.command,
            down.acked_events,
            down.firmware,
        );
    }

    /// Tells the gateway again what the locker answered to a command it sends once more.
    fn answer(&self, locker: &LockerId, record: &CommandRecord) {
        let Some(ack) = ack_for(record) else {
            return;
        };
        match serde_json::to_value(&ack) {
            Ok(message) => self.up(locker.clone(), RelayedChannel::Acks, message),
            Err(e) => tracing::error!(error = %e, "answer not encoded"),
        }
    }

    /// A locker's message: recorded if it answers a command, then passed up unchanged.
    async fn heard(&mut self, topic: &str, payload: &[u8]) {
        let Some(topic) = Topic::parse(topic) else {
            return;
        };
        if topic.channel == Channel::Firmware {
            match LockerId::new(topic.id) {
                Ok(locker) if self.serves(&locker) => self.firmware_request(locker, payload),
                _ => tracing::warn!(
                    locker = topic.id,
                    "a firmware request of a locker this edge node does not serve; ignored"
                ),
            }
            return;
        }
        let (Ok(locker), Some(channel)) =
            (LockerId::new(topic.id), RelayedChannel::of(topic.channel))
        else {
            return;
        };
        if !self.serves(&locker) {
            tracing::warn!(%locker, "a locker this edge node does not serve; ignored");
            return;
        }
        let message: serde_json::Value = match serde_json::from_slice(payload) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(%locker, error = %e, "unreadable locker message");
                return;
            }
        };
        if channel == RelayedChannel::Acks {
            // Only answers to commands the edge node holds pending go up: the gateway's, the
            // first time. The edge node's own cache updates are not recorded, and a repeated
            // answer adds nothing.
            if !self.settle(&locker, &message).await {
                return;
            }
        }
        if channel == RelayedChannel::Events && self.decide(&locker, &message).await {
            return;
        }
        if channel == RelayedChannel::Telemetry {
            self.counter_seen(&locker, &message).await;
            if !*self.connected.borrow() {
                self.assess(&locker, &message);
            }
        }
        self.up(locker, channel, message);
    }

    /// While the uplink is down the gateway hears no heartbeat: the edge node puts it to the
    /// station's site rules itself, off its task, and keeps the alerts in its own store (the
    /// gateway assesses the heartbeats again once they reach it).
    fn assess(&self, locker: &LockerId, message: &serde_json::Value) {
        let (Ok(station), Ok(telemetry)) = (
            StationId::new(locker.as_str()),
            serde_json::from_value::<TelemetryMessage>(message.clone()),
        ) else {
            return;
        };
        let node = self.node.clone();
        tokio::spawn(async move {
            match node.assess_telemetry(&station, &telemetry).await {
                Ok(changes) => {
                    for alert in &changes.raised {
                        tracing::warn!(%station, code = %alert.code, message = %alert.message, "alert while cut off");
                    }
                }
                Err(e) => tracing::error!(%station, error = %e, "telemetry not assessed"),
            }
        });
    }

    /// Takes in the counter a locker's heartbeat reports: this edge node signs its commands.
    async fn counter_seen(&self, locker: &LockerId, message: &serde_json::Value) {
        let (Ok(station), Some(last)) = (
            StationId::new(locker.as_str()),
            message
                .get("last_counter")
                .and_then(serde_json::Value::as_u64),
        ) else {
            return;
        };
        self.node.counter_seen(&station, last).await;
    }

    /// Sends a locker a command, acknowledgements and firmware on the local link.
    pub(super) fn tell_locker(
        &mut self,
        locker: &LockerId,
        command: Option<SignedCommand>,
        acked_events: Vec<String>,
        firmware: Option<FirmwareDownlink>,
    ) {
        let down = Downlink {
            v: MESSAGE_VERSION,
            command,
            acked_events,
            firmware,
        };
        let topic = Topic::locker(locker.as_str(), Channel::Commands).to_string();
        match serde_json::to_vec(&down) {
            Ok(json) => {
                if let Err(e) = self.lockers.tx.publish(topic, json) {
                    tracing::warn!(%locker, error = %e, "downlink not passed on");
                }
            }
            Err(e) => tracing::error!(error = %e, "downlink not encoded"),
        }
    }

    /// Records the locker's answer to a command, so the edge node can repeat it; `true` when it
    /// settled a command held pending here.
    async fn settle(&self, locker: &LockerId, message: &serde_json::Value) -> bool {
        let Ok(ack) = serde_json::from_value::<AckMessage>(message.clone()) else {
            return false;
        };
        let (event, detail) = command_event(ack.outcome);
        let actor = locker_actor(locker.as_str());
        match self
            .store
            .settle_command(ack.command, event, detail, actor)
            .await
        {
            Ok(settled) => settled.is_some(),
            Err(e) => {
                tracing::error!(%locker, error = %e, "command outcome not recorded");
                false
            }
        }
    }

    /// Sends a locker's message up; while the uplink is down it is dropped, and the locker,
    /// which keeps every event until the gateway acknowledges it, sends it again.
    fn up(&self, locker: LockerId, channel: RelayedChannel, message: serde_json::Value) {
        if !*self.connected.borrow() {
            return;
        }
        let uplink = EdgeUplink {
            v: SYNC_VERSION,
            body: UplinkBody::Relayed {
                locker,
                channel,
                message,
            },
        };
        if let Ok(json) = serde_json::to_vec(&uplink) {
            // The edge node's front takes a locker packet of up to 64 KiB and the uplink four
            // times that; only a message crafted to grow when re-encoded (numbers written short)
            // could outgrow it, and it would cost the uplink its connection.
            if json.len() + UPLINK_HEADROOM > MAX_UPLINK {
                tracing::warn!(
                    bytes = json.len(),
                    "a locker message too large to relay once wrapped; dropped"
                );
                return;
            }
            let qos = match channel {
                RelayedChannel::Telemetry => QoS::AtMostOnce,
                RelayedChannel::Events | RelayedChannel::Acks => QoS::AtLeastOnce,
            };
            if let Err(e) = self
                .client
                .try_publish(self.topic(Channel::Events), qos, false, json)
            {
                tracing::warn!(error = %e, "uplink busy; message dropped");
            }
        }
    }

    /// What the front saw, in the edge node's own access log.
    async fn audit(&mut self, audit: Audit) {
        self.caches.heard(&audit);
        record_audit(&self.store, &audit).await;
    }

    /// Publishes the edge node's status.
    fn report(&self) {
        let status = match (self.store.sync_position(), self.store.mirror_counts()) {
            (Ok(position), Ok(counts)) => EdgeStatus {
                v: SYNC_VERSION,
                at: self.store.now(),
                position,
                stations: self
                    .store
                    .snapshot()
                    .stations
                    .iter()
                    .map(|s| s.record.id.clone())
                    .collect(),
                compartments: counts.compartments,
                codes: counts.codes,
                outbox: self.store.edge_outbox_depth().unwrap_or_default(),
                plugins: self.plugins.report(),
                leases: self
                    .store
                    .all_leases()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| LeaseHeld {
                        station: l.station,
                        epoch: l.epoch,
                    })
                    .collect(),
            },
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "store unreadable; no status sent");
                return;
            }
        };
        if let Ok(json) = serde_json::to_vec(&status) {
            let _ = self.client.try_publish(
                self.topic(Channel::Telemetry),
                QoS::AtLeastOnce,
                false,
                json,
            );
        }
    }
}

/// Whether `locker` belongs to a station `store` mirrors (a locker has its station's id).
fn serves(store: &Store, locker: &LockerId) -> bool {
    StationId::new(locker.as_str())
        .is_ok_and(|station| store.snapshot().station(&station).is_some())
}
