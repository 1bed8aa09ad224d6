//! The gateway's device task: one task that hears every locker through the broker's local link,
//! hands their events to the gateway's node, which applies each once, and sends unlock commands
//! from the store's outbox — signed, in counter order, again every [`RESEND_EVERY`] — until each
//! is acknowledged or expires. What it adds to the node is the gateway's own: lockers' health and
//! alerts, answering the couriers who wait for a door, the code caches of the lockers wired to
//! it, and its edge nodes' sync and leases.

use super::assess::Assessor;
use super::edges::EdgeSync;
use super::metrics::{CommandLabels, EventLabels};
use super::registry::RegistryWatch;
use super::{Devices, DoorEnd, LockerParts, back_online, mark_offline};
use crate::config::EdgeNode;
use crate::firmware::FirmwareStore;
use crate::plugins::PluginStore;
use lockergrid_device_plane::Kind;
use lockergrid_device_plane::{Audit, NodeLink, Notification};
use lockergrid_model::{Actor, CommandEvent, CommandRecord, CommandStatus, UnlockFor};
use lockergrid_model::{
    Decision, EdgeDecision, EdgeDownlink, EdgeStatus, EdgeUplink, LockerDownlink, SYNC_VERSION,
    UplinkBody,
};
use lockergrid_node::{CodeCaches, Effect, Handled, Node, record_audit};
use lockergrid_node::{command_event, locker_actor, sign_unlock};
use lockergrid_protocol::command::{CommandKey, SignedCommand};
use lockergrid_protocol::message::{
    AckMessage, DeviceEvent, Downlink, EventMessage, FirmwareDownlink, MESSAGE_VERSION,
    TelemetryMessage,
};
use lockergrid_protocol::topic::{Channel, Root, Topic};
use lockergrid_protocol::{LockerId, StationId};
use lockergrid_store::{Applied, DoorClosed, LATCH_FAILURES, SelfTested, Store};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long the node waits for a command's acknowledgement before sending it again.
pub const RESEND_EVERY: Duration = Duration::from_secs(2);

/// A command on its way to a locker.
struct Outstanding {
    command: CommandRecord,
    /// Where it goes: the locker's commands topic, or its edge node's.
    topic: String,
    payload: Vec<u8>,
    next: Instant,
}

/// The gateway's device task.
pub(super) struct LockerTask {
    pub(super) link: NodeLink,
    node: Arc<Node>,
    devices: Arc<Devices>,
    plugin_store: Arc<PluginStore>,
    pub(super) firmware: Arc<FirmwareStore>,
    key: CommandKey,
    outstanding: HashMap<String, Outstanding>,
    edges: EdgeSync,
    /// The code caches of the lockers wired to the gateway.
    caches: CodeCaches,
    registry: RegistryWatch,
    /// Puts heartbeats to the site rules off this task.
    assessor: Assessor,
}

impl LockerTask {
    pub(super) fn new(
        link: NodeLink,
        parts: LockerParts,
        key: CommandKey,
        edges: &[EdgeNode],
        crl: PathBuf,
        assessor: Assessor,
    ) -> LockerTask {
        let edges = EdgeSync::new(edges, crl);
        parts.devices.register_edges(edges.states());
        LockerTask {
            link,
            node: parts.node,
            devices: parts.devices,
            plugin_store: parts.plugin_store,
            firmware: parts.firmware,
            key,
            outstanding: HashMap::new(),
            edges,
            caches: CodeCaches::default(),
            registry: RegistryWatch::default(),
            assessor,
        }
    }

    fn store(&self) -> &Store {
        self.node.store()
    }

    pub(super) fn devices(&self) -> &Devices {
        &self.devices
    }

    pub(super) async fn serve(mut self, mut commands: super::Outbox, shutdown: CancellationToken) {
        let topics = [
            Channel::Events,
            Channel::Telemetry,
            Channel::Acks,
            Channel::Firmware,
        ]
        .map(|channel| Topic::every(Root::Locker, channel))
        .into_iter()
        .chain([Channel::Telemetry, Channel::Events].map(|c| Topic::every(Root::Edge, c)));
        for topic in topics {
            if let Err(e) = self.link.tx.subscribe(topic) {
                tracing::error!(error = %e, "device plane: cannot subscribe; lockers will not be heard");
                return;
            }
        }
        match self.store().pending_commands() {
            Ok(pending) => pending.into_iter().for_each(|c| self.track(c)),
            Err(e) => tracing::error!(error = %e, "pending commands not loaded"),
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                audit = self.link.audit.recv() => match audit {
                    Some(audit) => {
                        self.edge_session(&audit);
                        self.caches.heard(&audit);
                        if let Audit::Takeover { identity, .. } = &audit {
                            self.registry.takeover(identity, &self.devices, self.node.store());
                        }
                        record_audit(self.store(), &audit).await;
                    }
                    None => break,
                },
                command = commands.commands.recv() => {
                    if let Some(command) = command {
                        self.track(command);
                        self.flush();
                    }
                }
                Some((station, firmware)) = commands.firmware.recv() => {
                    self.send_firmware(&station, firmware);
                }
                notification = self.link.rx.next() => match notification {
                    Ok(Some(Notification::Forward(forward))) => {
                        let topic = String::from_utf8_lossy(&forward.publish.topic).into_owned();
                        self.handle(&topic, &forward.publish.payload).await;
                    }
                    Ok(Some(Notification::Unschedule)) => {
                        if self.link.rx.wake().await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "device plane: the broker link closed");
                        break;
                    }
                },
                _ = tick.tick() => {
                    mark_offline(self.store(), self.devices()).await;
                    self.expire().await;
                    self.flush();
                    self.edges.tick(
                        self.node.store(),
                        &self.plugin_store,
                        &mut self.link.tx,
                        &self.devices,
                    );
                    self.maintain_leases().await;
                    self.refresh_caches().await;
                }
            }
        }
    }

    /// Queues `command` for sending now: signed, to the locker's own topic, or as a request to
    /// the edge node that serves its station, which signs it for the locker itself.
    fn track(&mut self, command: CommandRecord) {
        match self.route(&command.station_id, Some(&command), Vec::new(), None) {
            Ok((topic, payload)) => {
                self.outstanding.insert(
                    command.id.clone(),
                    Outstanding {
                        command,
                        topic,
                        payload,
                        next: Instant::now(),
                    },
                );
                self.count_pending();
            }
            Err(e) => tracing::error!(error = %e, "command not encoded"),
        }
    }

    /// The topic and bytes that take a command and event acknowledgements to `station`'s
    /// locker: signed, on its own commands topic, or on its edge node's.
    pub(super) fn route(
        &self,
        station: &StationId,
        command: Option<&CommandRecord>,
        acked_events: Vec<String>,
        firmware: Option<FirmwareDownlink>,
    ) -> anyhow::Result<(String, Vec<u8>)> {
        let locker = LockerId::new(station.as_str())?;
        if let Some(edge) = self.edges.edge_of(station) {
            let topic = Topic {
                root: Root::Edge,
                id: edge,
                channel: Channel::Commands,
            };
            let message = EdgeDownlink {
                v: SYNC_VERSION,
                decisions_applied: None,
                sync: Vec::new(),
                lockers: vec![LockerDownlink {
                    locker,
                    command: command.cloned(),
                    acked_events,
                    firmware,
                }],
                firmware: None,
            };
            return Ok((topic.to_string(), serde_json::to_vec(&message)?));
        }
        let command = command.map(|c| sign_unlock(&self.key, &locker, c));
        Ok(direct(&locker, command, acked_events, firmware)?)
    }

    fn count_pending(&self) {
        let pending = i64::try_from(self.outstanding.len()).unwrap_or(i64::MAX);
        self.devices.metrics().commands_pending.set(pending);
    }

    /// Sends every command that is due, per locker in counter order (a locker refuses a counter
    /// lower than one it has seen).
    fn flush(&mut self) {
        let now = Instant::now();
        let mut due: Vec<&mut Outstanding> = self
            .outstanding
            .values_mut()
            .filter(|o| o.next <= now)
            .collect();
        due.sort_by(|a, b| {
            (&a.command.station_id, a.command.counter)
                .cmp(&(&b.command.station_id, b.command.counter))
        });
        for o in due {
            if let Err(e) = self.link.tx.publish(o.topic.clone(), o.payload.clone()) {
                tracing::warn!(command = %o.command.id, error = %e, "command not sent; retrying");
            }
            o.next = now + RESEND_EVERY;
        }
    }

    /// Takes expired commands out of the outbox.
    async fn expire(&mut self) {
        let now = self.store().now();
        let expired: Vec<String> = self
            .outstanding
            .values()
            .filter(|o| o.command.expires_at <= now)
            .map(|o| o.command.id.clone())
            .collect();
        for id in expired {
            self.settle(id, CommandEvent::Expired, None, Actor::system())
                .await;
        }
    }

    async fn settle(
        &mut self,
        id: String,
        event: CommandEvent,
        detail: Option<String>,
        actor: Actor,
    ) {
        match self
            .store()
            .settle_command(id.clone(), event, detail, actor)
            .await
        {
            Ok(settled) => {
                self.outstanding.remove(&id);
                self.count_pending();
                if let Some(command) = &settled {
                    let outcome = command.status.as_str();
                    self.devices
                        .metrics()
                        .commands
                        .get_or_create(&CommandLabels { outcome })
                        .inc();
                    if command.status == CommandStatus::Failed {
                        self.latch_failed(command);
                    }
                }
                if let Some(command) = settled
                    && command.status != CommandStatus::Executed
                    && matches!(
                        command.unlock_for,
                        UnlockFor::Deposit { .. } | UnlockFor::ReturnCollection { .. }
                    )
                {
                    self.devices()
                        .finish_door(&id, DoorEnd::NotUnlocked(command));
                }
            }
            Err(e) => tracing::error!(command = %id, error = %e, "command outcome not recorded"),
        }
    }

    /// Raises an alert when a failed unlock is the one that makes its compartment's latch due
    /// for maintenance (the store takes the compartment out of service once it is empty).
    fn latch_failed(&self, command: &CommandRecord) {
        match self.store().latch_faults(&command.compartment_id) {
            Ok(Some(faults)) if faults.consecutive == LATCH_FAILURES => {
                let detail = format!(
                    "the latch of {} failed {LATCH_FAILURES} unlocks in a row ({}); it goes to maintenance once empty",
                    command.compartment_id,
                    faults.last_reason.as_deref().unwrap_or("no reason given")
                );
                let now = self.store().now();
                self.devices()
                    .alert(&command.station_id, now, "latch-failing", detail);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(compartment = %command.compartment_id, error = %e, "latch faults unreadable")
            }
        }
    }

    /// Sends each locker wired to the gateway its station's active codes and code key whenever
    /// they differ from what it was sent last, so it can check codes itself when the gateway is
    /// out of reach. An update waits while the locker has a command outstanding: its counter
    /// must not overtake one still to arrive, which the locker would then refuse.
    async fn refresh_caches(&mut self) {
        let busy: HashSet<&StationId> = self
            .outstanding
            .values()
            .map(|o| &o.command.station_id)
            .collect();
        let edges = &self.edges;
        let wired = |locker: &LockerId| {
            StationId::new(locker.as_str())
                .is_ok_and(|station| edges.edge_of(&station).is_none() && !busy.contains(&station))
        };
        let due = self.caches.due(self.node.store(), &self.key, wired).await;
        for (locker, command) in due {
            match direct(&locker, Some(command), Vec::new(), None) {
                Ok((topic, payload)) => {
                    if let Err(e) = self.link.tx.publish(topic, payload) {
                        tracing::warn!(%locker, error = %e, "code cache not sent");
                    }
                }
                Err(e) => tracing::error!(error = %e, "code cache not encoded"),
            }
        }
    }

    /// Renews, shrinks and releases the edge nodes' leases when they need it (a read first, so
    /// the writer commits only when something changes).
    async fn maintain_leases(&self) {
        let wants = self.edges.lease_wants();
        match self.store().leases_due(&wants) {
            Ok(false) => {}
            Ok(true) => {
                if let Err(e) = self.store().maintain_leases(wants).await {
                    tracing::error!(error = %e, "leases not maintained");
                }
            }
            Err(e) => tracing::error!(error = %e, "leases not readable"),
        }
    }

    /// An edge node's session began or ended at the front.
    fn edge_session(&mut self, audit: &Audit) {
        let Some((identity, connected)) = lockergrid_node::session_change(audit) else {
            return;
        };
        if identity.kind == Kind::Edge {
            self.edges.session(&identity.id, connected, &self.devices);
        }
    }

    /// An edge node's report on `edges/{id}/telemetry`.
    fn edge_report(&mut self, id: &str, payload: &[u8]) {
        match serde_json::from_slice::<EdgeStatus>(payload) {
            Ok(status) if status.v == SYNC_VERSION => {
                let now = self.node.store().now();
                self.edges
                    .report(id, status, now, &mut self.link.tx, &self.devices);
            }
            Ok(other) => tracing::warn!(
                edge = id,
                version = other.v,
                "edge report of an unknown version"
            ),
            Err(e) => tracing::warn!(edge = id, error = %e, "unreadable edge report"),
        }
    }

    async fn handle(&mut self, topic: &str, payload: &[u8]) {
        let Some(topic) = Topic::parse(topic) else {
            return;
        };
        match (topic.root, topic.channel) {
            (Root::Edge, Channel::Telemetry) => self.edge_report(topic.id, payload),
            (Root::Edge, Channel::Events) => self.relayed(topic.id, payload).await,
            (Root::Edge, _) => {}
            // The front lets a locker publish only under its own id, so the topic names the
            // sender — unless the station is served by an edge node, whose lockers speak only
            // through it.
            (Root::Locker, channel) => match StationId::new(topic.id) {
                Ok(station) if self.edges.edge_of(&station).is_none() => {
                    self.locker_said(station, channel, payload).await;
                }
                Ok(station) => {
                    tracing::warn!(%station, "a locker of an edge node's station connected to the gateway; ignored");
                }
                Err(_) => {}
            },
        }
    }

    /// A locker's message relayed by edge node `edge`, for a station that edge node serves.
    async fn relayed(&mut self, edge: &str, payload: &[u8]) {
        let uplink = match serde_json::from_slice::<EdgeUplink>(payload) {
            Ok(uplink) if uplink.v == SYNC_VERSION => uplink,
            Ok(other) => {
                tracing::warn!(
                    edge,
                    version = other.v,
                    "relayed message of an unknown version"
                );
                return;
            }
            Err(e) => {
                tracing::warn!(edge, error = %e, "unreadable relayed message");
                return;
            }
        };
        let (locker, channel, message) = match uplink.body {
            UplinkBody::Relayed {
                locker,
                channel,
                message,
            } => (locker, channel, message),
            UplinkBody::Decisions { decisions } => return self.decisions(edge, decisions).await,
            UplinkBody::FirmwareRequest {
                sha256,
                offset,
                len,
            } => return self.edge_firmware_request(edge, &sha256, offset, len),
        };
        let Ok(station) = StationId::new(locker.as_str()) else {
            return;
        };
        if self.edges.edge_of(&station) != Some(edge) {
            tracing::warn!(edge, %station, "relayed message for a station the edge node does not serve; ignored");
            return;
        }
        match serde_json::to_vec(&message) {
            Ok(message) => {
                self.locker_said(station, channel.channel(), &message).await;
            }
            Err(e) => tracing::warn!(edge, error = %e, "relayed message not re-encoded"),
        }
    }

    /// Decisions edge node `edge` made while it could not reach the gateway: each applied once,
    /// in sequence order, then confirmed so it can drop them. A decision about a station the
    /// edge node does not serve is refused and stops the batch.
    async fn decisions(&mut self, edge: &str, mut decisions: Vec<EdgeDecision>) {
        let store = self.store().clone();
        let station = |d: &EdgeDecision| match &d.decision {
            Decision::PickedUp { station, .. }
            | Decision::ReturnDroppedOff { station, .. }
            | Decision::ForwardedDoorClosed { station, .. }
            | Decision::CodeRejected { station, .. }
            | Decision::Recorded { station, .. } => station.clone(),
        };
        if let Some(foreign) = decisions
            .iter()
            .position(|d| self.edges.edge_of(&station(d)) != Some(edge))
        {
            tracing::warn!(
                edge,
                seq = decisions[foreign].seq,
                "decision about a station the edge node does not serve; refused with what follows it"
            );
            decisions.truncate(foreign);
        }
        let stations: Vec<StationId> = decisions.iter().map(station).collect();
        match store.apply_decisions(edge.to_owned(), decisions).await {
            Ok(results) => {
                for (station, applied) in stations.iter().zip(results) {
                    match applied {
                        Applied::Applied | Applied::Duplicate => {}
                        Applied::Conflict(why) => {
                            self.devices
                                .alert(station, store.now(), "edge-conflict", why);
                        }
                        Applied::OutOfOrder { expected } => {
                            tracing::warn!(
                                edge,
                                expected,
                                "edge decisions out of order; waiting for the gap"
                            );
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::error!(edge, error = %e, "edge decisions not applied"),
        }
        let applied = match store.decisions_applied(edge) {
            Ok(applied) => applied,
            Err(e) => {
                tracing::error!(edge, error = %e, "edge inbox unreadable");
                return;
            }
        };
        self.devices
            .update_edge(edge, |s| s.decisions_applied = applied);
        let confirm = EdgeDownlink {
            v: SYNC_VERSION,
            decisions_applied: Some(applied),
            sync: Vec::new(),
            lockers: Vec::new(),
            firmware: None,
        };
        let topic = Topic {
            root: Root::Edge,
            id: edge,
            channel: Channel::Commands,
        };
        match serde_json::to_vec(&confirm) {
            Ok(json) => {
                if let Err(e) = self.link.tx.publish(topic.to_string(), json) {
                    tracing::warn!(edge, error = %e, "confirmation not sent; the edge node sends again");
                }
            }
            Err(e) => tracing::error!(error = %e, "confirmation not encoded"),
        }
    }

    /// A locker's message, from its own session or relayed by its edge node.
    async fn locker_said(&mut self, station: StationId, channel: Channel, payload: &[u8]) {
        let store = self.node.store();
        let now = store.now();
        match channel {
            Channel::Telemetry => match serde_json::from_slice::<TelemetryMessage>(payload) {
                Ok(telemetry) if telemetry.v == MESSAGE_VERSION => {
                    // The gateway signs the commands of the lockers wired to it alone; an edge
                    // node keeps the counters of its own.
                    if self.edges.edge_of(&station).is_none() {
                        self.node
                            .counter_seen(&station, telemetry.last_counter)
                            .await;
                    }
                    self.registry
                        .heartbeat(store, &station, &telemetry.firmware)
                        .await;
                    self.assessor
                        .heard(&station, &telemetry, self.devices.metrics());
                    self.devices().update(&station, |h| {
                        h.last_seen = Some(now);
                        h.telemetry = Some(telemetry);
                    });
                    back_online(store, self.devices(), &station).await;
                }
                Ok(other) => {
                    tracing::warn!(%station, version = other.v, "telemetry of an unknown version")
                }
                Err(e) => tracing::warn!(%station, error = %e, "unreadable telemetry"),
            },
            Channel::Events => match serde_json::from_slice::<EventMessage>(payload) {
                Ok(event)
                    if event.v == MESSAGE_VERSION && event.locker.as_str() == station.as_str() =>
                {
                    self.devices().update(&station, |h| h.last_seen = Some(now));
                    back_online(store, self.devices(), &station).await;
                    let id = event.id.clone();
                    if self.apply(&station, event).await {
                        self.acknowledge(&station, id);
                    }
                }
                Ok(other) => {
                    tracing::warn!(%station, id = %other.id, "event of an unknown version or locker")
                }
                Err(e) => tracing::warn!(%station, error = %e, "unreadable event"),
            },
            Channel::Acks => match serde_json::from_slice::<AckMessage>(payload) {
                Ok(ack) if ack.v == MESSAGE_VERSION => {
                    let ours = self
                        .outstanding
                        .get(&ack.command)
                        .is_some_and(|o| o.command.station_id == station);
                    if ours {
                        let (event, detail) = command_event(ack.outcome);
                        let actor = locker_actor(station.as_str());
                        self.settle(ack.command, event, detail, actor).await;
                    }
                }
                Ok(other) => {
                    tracing::warn!(%station, version = other.v, "ack of an unknown version")
                }
                Err(e) => tracing::warn!(%station, error = %e, "unreadable ack"),
            },
            Channel::Firmware => self.firmware_request(&station, payload),
            Channel::Commands => {}
        }
    }

    fn acknowledge(&mut self, station: &StationId, event: String) {
        match self.route(station, None, vec![event], None) {
            Ok((topic, payload)) => {
                if let Err(e) = self.link.tx.publish(topic, payload) {
                    tracing::warn!(%station, error = %e, "event acknowledgement not sent");
                }
            }
            Err(e) => tracing::error!(error = %e, "event acknowledgement not encoded"),
        }
    }

    /// Hands an event to the node, which applies it once; `true` when it is safely recorded and
    /// the locker may forget it.
    async fn apply(&mut self, station: &StationId, event: EventMessage) -> bool {
        let kind = match &event.event {
            DeviceEvent::DoorOpened { .. } => "door_opened",
            DeviceEvent::DoorClosed { .. } => "door_closed",
            DeviceEvent::CodeEntered { .. } => "code_entered",
            DeviceEvent::CodeHashed { .. } => "code_hashed",
            DeviceEvent::Tamper { .. } => "tamper",
            DeviceEvent::OfflinePickup { .. } => "offline_pickup",
            DeviceEvent::CodeRejectedOffline { .. } => "code_rejected_offline",
            DeviceEvent::SelfTest { .. } => "self_test",
            DeviceEvent::Firmware { .. } => "firmware",
        };
        let id = event.id.clone();
        let result = match self.node.on_event(station, event).await {
            Handled::Duplicate => "duplicate",
            Handled::Applied(effect) => {
                self.follow_up(station, &id, effect);
                "applied"
            }
            Handled::NotOurs => {
                tracing::error!(%station, %id, "the gateway decides every event of its lockers");
                return false;
            }
            Handled::Failed(e) => {
                tracing::error!(%station, %id, error = %e, "event not applied");
                return false;
            }
        };
        self.devices
            .metrics()
            .events
            .get_or_create(&EventLabels {
                event: kind,
                result,
            })
            .inc();
        true
    }

    /// What the gateway does about an applied event beyond its store: send the unlock a code
    /// opened, answer whoever waits for a door, raise alerts.
    fn follow_up(&mut self, station: &StationId, event: &str, effect: Effect) {
        let now = self.store().now();
        match effect {
            Effect::None => {}
            Effect::Unlock(command) => {
                self.track(command);
                self.flush();
            }
            Effect::DoorClosed { command, closed } => {
                if let Some(command) = command {
                    self.door_closed(station, &command, closed);
                }
            }
            Effect::OfflineConflict(why) => {
                self.devices().alert(station, now, "offline-conflict", why);
            }
            Effect::Tamper { tripped: true } => self.devices().alert(
                station,
                now,
                "tamper",
                format!("tamper switch tripped (event {event})"),
            ),
            Effect::Tamper { tripped: false } => self.devices().alert(
                station,
                now,
                "tamper-reset",
                format!("tamper switch reset (event {event})"),
            ),
            Effect::SelfTest(SelfTested::Recorded { device, activated }) => {
                if activated {
                    tracing::info!(%station, serial = %device.serial, "device passed its acceptance test; active");
                } else if !device.self_test_failures.is_empty() {
                    let detail =
                        format!("self-test failed: {}", device.self_test_failures.join("; "));
                    self.devices().alert(station, now, "self-test", detail);
                }
            }
            Effect::SelfTest(SelfTested::Unregistered) => self.devices().alert(
                station,
                now,
                "unregistered",
                format!("a locker not in the registry reported a self-test (event {event})"),
            ),
            Effect::SelfTest(SelfTested::Duplicate) => {}
            // Recorded, with its alert, by the node; the rollouts read it from the store.
            Effect::Firmware {
                version,
                outcome,
                reason,
                ..
            } => {
                tracing::info!(%station, %version, outcome = outcome.as_str(), ?reason, "firmware update");
            }
        }
    }

    fn door_closed(&self, station: &StationId, command: &str, done: DoorClosed) {
        match done {
            DoorClosed::Deposited(deposit) => {
                self.devices()
                    .finish_door(command, DoorEnd::Deposited(deposit));
            }
            DoorClosed::Conflict(reason) => {
                self.devices().alert(
                    station,
                    self.store().now(),
                    "door-conflict",
                    format!("door closed after command {command}: {reason}"),
                );
                self.devices()
                    .finish_door(command, DoorEnd::Conflict(reason));
            }
            DoorClosed::ReturnCollected(record) => {
                self.devices()
                    .finish_door(command, DoorEnd::Collected(record));
            }
            DoorClosed::ParcelCollected(parcel) => {
                self.devices()
                    .finish_door(command, DoorEnd::ParcelReturned(parcel));
            }
            DoorClosed::PickedUp(_)
            | DoorClosed::ReturnDroppedOff(_)
            | DoorClosed::Recorded
            | DoorClosed::Duplicate => {}
        }
    }
}

/// The topic and bytes that take a command and event acknowledgements to a locker wired to the
/// gateway.
pub(super) fn direct(
    locker: &LockerId,
    command: Option<SignedCommand>,
    acked_events: Vec<String>,
    firmware: Option<FirmwareDownlink>,
) -> serde_json::Result<(String, Vec<u8>)> {
    let downlink = Downlink {
        v: MESSAGE_VERSION,
        command,
        acked_events,
        firmware,
    };
    let topic = Topic::locker(locker.as_str(), Channel::Commands);
    Ok((topic.to_string(), serde_json::to_vec(&downlink)?))
}
