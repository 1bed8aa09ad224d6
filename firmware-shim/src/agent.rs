//! The shim's main loop: one MQTT connection over TLS 1.3 with the locker's certificate, commands
//! verified by the gate before any latch moves, hardware events into the durable retry queue and
//! out to the node until acknowledged, and a heartbeat with the locker's readings.

use crate::hardware::{Door, Hardware, Sensed};
use crate::queue::{EventQueue, QueueError};
use crate::slots::{SlotError, Slots};
use crate::state::write_atomic;
use crate::update::{AbortOnDrop, Update};
use crate::verify::{CommandGate, GateError};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use lockergrid_protocol::command::{Action, CachedCode, CommandPublicKey, SignedCommand};
use lockergrid_protocol::firmware::{FirmwarePublicKey, FirmwareVersion};
use lockergrid_protocol::message::{
    AckMessage, DeviceEvent, Downlink, MESSAGE_VERSION, Outcome, TelemetryMessage,
};
use lockergrid_protocol::topic::{Channel, Topic};
use lockergrid_protocol::{
    CompartmentId, LockerId, Lockout, PickupCode, StationCodeKey, Timestamp,
};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// The file holding the cache of active code hashes.
const CODES_FILE: &str = "codes.json";
/// The largest message the locker accepts from its node (a full code cache).
const MAX_DOWNLINK: usize = 4 * 1024 * 1024;
/// How often the hardware is asked what happened, besides its own signal
/// ([`Hardware::changed`]), and how often an update's next step is looked at.
const HARDWARE_POLL: Duration = Duration::from_millis(10);

/// How a locker connects and what it knows.
#[derive(Clone)]
pub struct AgentOptions {
    /// This locker (its certificate's id and its client id).
    pub locker: LockerId,
    /// The node's device listener host (name or address, as its certificate names it).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TLS client configuration with the locker's certificate ([`crate::tls::client_config`]).
    pub tls: Arc<rustls::ClientConfig>,
    /// The node's command-signing public key.
    pub command_key: CommandPublicKey,
    /// Where the counter, the event queue and the code cache live.
    pub state_dir: PathBuf,
    /// How often a heartbeat goes out.
    pub heartbeat: Duration,
    /// The locker's clock, which command windows are checked against ([`system_clock`] on a
    /// real controller; a simulation may follow its deployment's clock).
    pub clock: Clock,
    /// What it needs to take firmware updates.
    pub firmware: FirmwareOptions,
}

/// How a locker takes firmware updates.
#[derive(Clone, Debug)]
pub struct FirmwareOptions {
    /// Its hardware model: an image for another is refused.
    pub model: String,
    /// The firmware keys whose manifests it installs (none: it installs nothing).
    pub trusted: Vec<FirmwarePublicKey>,
    /// How long a new image has, from its boot, to pass its health check.
    pub health_window: Duration,
}

/// The simulated locker's hardware model.
pub const SIM_MODEL: &str = "lockergrid-sim-1";

impl Default for FirmwareOptions {
    fn default() -> FirmwareOptions {
        FirmwareOptions {
            model: SIM_MODEL.into(),
            trusted: Vec::new(),
            health_window: Duration::from_secs(120),
        }
    }
}

/// The version of the factory image: this build.
pub fn factory_version() -> FirmwareVersion {
    env!("CARGO_PKG_VERSION")
        .parse()
        .unwrap_or(FirmwareVersion(0, 0, 0))
}

/// A source of the current time.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system's clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let millis = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Timestamp(millis)
    })
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The command gate's state cannot be used.
    #[error(transparent)]
    Gate(#[from] GateError),
    /// The event queue cannot be used.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// The state directory cannot be used.
    #[error("state directory: {0}")]
    State(std::io::Error),
    /// The firmware slots cannot be used.
    #[error(transparent)]
    Slots(#[from] SlotError),
}

/// What the locker is doing, for its heartbeat and for a person watching the simulation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// Connected to the node and subscribed to its commands.
    pub connected: bool,
    /// Sessions with a node since start (each connect that reached the subscription).
    pub sessions: u64,
    /// Events not yet acknowledged.
    pub queued_events: usize,
    /// Unlock and service commands executed since start (code cache updates are counted in
    /// `cached_codes`).
    pub executed: u64,
    /// Active codes in the locker's own cache.
    pub cached_codes: usize,
    /// Commands refused since start.
    pub refused: u64,
    /// Codes refused at the keypad while no node answered, since start (wrong, or unchecked
    /// while the station waited after wrong codes).
    pub refused_codes: u64,
    /// Out of service by the node's command.
    pub out_of_service: bool,
    /// The firmware version it booted.
    pub firmware: String,
    /// The image it booted is on trial (not yet confirmed by its health check).
    pub on_trial: bool,
    /// Boots since start (the first included).
    pub boots: u64,
}

/// A locker's cache of its station's active codes and the key they are hashed with, as the last
/// `sync_codes` set it, and the station's wrong-code count. While no node answers, a code entered
/// at the keypad is checked here, under the same lock-out as at a node.
#[derive(Debug, Default, Serialize, Deserialize)]
struct CodeCache {
    key: Option<String>,
    codes: Vec<CachedCode>,
    #[serde(default)]
    lockout: Lockout,
    /// Opens nothing from the cache: the tamper switch tripped here, or the node said the
    /// station is locked down. Only a node's word lifts it, kept across restarts so a power cut
    /// does not.
    #[serde(default)]
    locked_down: bool,
}

pub(crate) struct Agent<H> {
    pub(crate) options: AgentOptions,
    pub(crate) hardware: Arc<Mutex<H>>,
    gate: CommandGate,
    pub(crate) queue: EventQueue,
    state: Dir,
    codes: CodeCache,
    pub(crate) client: AsyncClient,
    /// The unlock command that released each compartment whose door has not closed yet.
    pub(crate) unlocked: HashMap<CompartmentId, String>,
    /// Compartments the locker released for a code it checked itself, door not closed yet.
    released_offline: HashSet<CompartmentId>,
    tamper: bool,
    mains: bool,
    temperatures: BTreeMap<CompartmentId, f32>,
    heartbeat_seq: u64,
    pub(crate) status: watch::Sender<Status>,
    /// The firmware slots, the image it booted, and the update under way.
    pub(crate) update: Update,
}

/// What the connection task reports.
enum Link {
    /// A packet from the node.
    Packet(Packet),
    /// The connection failed; it is being re-established.
    Lost,
}

/// Polls the MQTT event loop until the agent goes away, reconnecting with exponential backoff
/// (250 ms doubling to 30 s) while the node is unreachable.
async fn drive(mut events: EventLoop, to_agent: tokio::sync::mpsc::Sender<Link>) {
    let mut retry = Duration::from_millis(250);
    let mut was_connected = false;
    loop {
        let link = match events.poll().await {
            Ok(Event::Incoming(packet)) => {
                if matches!(packet, Packet::ConnAck(_)) {
                    retry = Duration::from_millis(250);
                    was_connected = true;
                }
                Link::Packet(packet)
            }
            Ok(Event::Outgoing(_)) => continue,
            Err(e) => {
                if was_connected {
                    tracing::warn!(error = %e, "connection to the node lost");
                    was_connected = false;
                }
                if to_agent.send(Link::Lost).await.is_err() {
                    return;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if to_agent.send(link).await.is_err() {
            return;
        }
    }
}

/// Resolves when the hardware signals something to drain; never without such a signal.
async fn interrupt(sensors: Option<&tokio::sync::Notify>) {
    match sensors {
        Some(sensors) => sensors.notified().await,
        None => std::future::pending().await,
    }
}

/// Runs the locker until the process ends; returns only when its state directory fails.
/// `status` reports what it is doing. Each boot runs the slot the boot record names; a new
/// image that passes its health check is confirmed, one that does not goes back by itself.
pub async fn run<H: Hardware + 'static>(
    options: AgentOptions,
    hardware: Arc<Mutex<H>>,
    status: watch::Sender<Status>,
) -> Result<(), AgentError> {
    // Only the controller reads this: its station's code key and the command counter live here.
    lockergrid_files::private_dir(&options.state_dir).map_err(AgentError::State)?;
    let state = Dir::open_ambient_dir(&options.state_dir, ambient_authority())
        .map_err(AgentError::State)?;
    let mut slots = Slots::open(
        &state,
        &options.firmware.model,
        factory_version(),
        options.firmware.trusted.clone(),
    )?;
    loop {
        let booted = slots.boot()?;
        tracing::info!(slot = ?booted.slot, version = %booted.image.version, on_trial = booted.on_trial, "booted");
        status.send_modify(|s| {
            s.firmware = booted.image.version.to_string();
            s.on_trial = booted.on_trial;
            s.boots += 1;
            s.connected = false;
        });
        let image = slots.image_bytes(booted.slot);
        let runs = hardware
            .lock()
            .expect("hardware lock")
            .booted(image.as_deref());
        let update = Update::new(slots, booted, runs);
        slots = boot(&options, &hardware, &status, &state, update).await?;
    }
}

/// One boot of the locker, until it reboots into another slot.
async fn boot<H: Hardware + 'static>(
    options: &AgentOptions,
    hardware: &Arc<Mutex<H>>,
    status: &watch::Sender<Status>,
    state: &Dir,
    update: Update,
) -> Result<Slots, AgentError> {
    let options = options.clone();
    let hardware = hardware.clone();
    let status = status.clone();
    let state = state.try_clone().map_err(AgentError::State)?;
    let codes = match state.read(CODES_FILE) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "code cache unreadable; starting empty until the next sync");
            CodeCache::default()
        }),
        Err(_) => CodeCache::default(),
    };
    let gate = CommandGate::open(
        options.locker.clone(),
        options.command_key,
        &options.state_dir,
    )?;
    let queue = EventQueue::open(options.locker.clone(), &options.state_dir)?;
    status.send_modify(|s| s.cached_codes = codes.codes.len());
    let mut mqtt = MqttOptions::new(options.locker.as_str(), &options.host, options.port);
    mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        options.tls.clone(),
    )));
    mqtt.set_keep_alive(Duration::from_secs(15));
    mqtt.set_clean_session(true);
    // A code cache for a busy station is far beyond rumqttc's default 10 KiB.
    mqtt.set_max_packet_size(MAX_DOWNLINK, 64 * 1024);
    let (client, mut events) = AsyncClient::new(mqtt, 256);
    // Events, acknowledgements and heartbeats are small writes that must not wait for the
    // previous one's TCP acknowledgement (Nagle's algorithm would hold them up to 40 ms).
    let mut network = events.network_options();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
    let mut agent = Agent {
        options,
        hardware,
        gate,
        queue,
        state,
        codes,
        client,
        unlocked: HashMap::new(),
        released_offline: HashSet::new(),
        tamper: false,
        mains: true,
        temperatures: BTreeMap::new(),
        heartbeat_seq: 0,
        status,
        update,
    };
    agent.report_updates()?;
    if agent.update.crashed() {
        // The image it booted cannot run: the controller resets, spending an attempt.
        return Ok(agent.update.into_slots());
    }
    agent.self_test()?;
    agent.resume_update()?;
    agent.run(events).await?;
    let _ = agent.client.try_disconnect();
    Ok(agent.update.into_slots())
}

impl<H: Hardware> Agent<H> {
    pub(crate) fn now(&self) -> Timestamp {
        (self.options.clock)()
    }

    pub(crate) fn topic(&self, channel: Channel) -> String {
        Topic::locker(self.options.locker.as_str(), channel).to_string()
    }

    /// Serves the node until this boot ends (a reboot into another slot).
    async fn run(&mut self, events: EventLoop) -> Result<(), AgentError> {
        // The event loop gets a task of its own: its poll must not be cancelled by the other
        // branches below, or a TLS handshake in progress would be dropped every tick.
        let (incoming, mut connection) = tokio::sync::mpsc::channel(64);
        let driver = AbortOnDrop(tokio::spawn(drive(events, incoming)));
        let mut hardware_tick = tokio::time::interval(HARDWARE_POLL);
        hardware_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let sensors = self.hardware.lock().expect("hardware lock").changed();
        let mut heartbeat = tokio::time::interval(self.options.heartbeat);
        let mut resend = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                packet = connection.recv() => match packet {
                    Some(Link::Packet(Packet::ConnAck(_))) => {
                        self.client
                            .try_subscribe(self.topic(Channel::Commands), QoS::AtLeastOnce)
                            .ok();
                    }
                    // Online once commands can reach the locker: its subscription is in place.
                    Some(Link::Packet(Packet::SubAck(_))) => {
                        self.queue.reset();
                        self.status.send_modify(|s| {
                            s.connected = true;
                            s.sessions += 1;
                        });
                        let sent = self.heartbeat();
                        self.send_due();
                        self.health_check(sent)?;
                        self.request_firmware(true);
                    }
                    Some(Link::Packet(Packet::Publish(publish))) => {
                        self.downlink(&publish.payload)?;
                    }
                    Some(Link::Packet(_)) => {}
                    Some(Link::Lost) => self.status.send_modify(|s| s.connected = false),
                    None => return Ok(()),
                },
                () = interrupt(sensors.as_deref()) => self.sense()?,
                _ = hardware_tick.tick() => {
                    self.sense()?;
                    if self.update_step()? {
                        break;
                    }
                }
                _ = heartbeat.tick() => {
                    let sent = self.heartbeat();
                    self.health_check(sent)?;
                }
                _ = resend.tick() => {
                    self.send_due();
                    self.request_firmware(false);
                }
            }
        }
        drop(driver);
        Ok(())
    }

    /// Turns what the hardware noticed into events (queued durably) and readings.
    fn sense(&mut self) -> Result<(), AgentError> {
        let sensed = self.hardware.lock().expect("hardware lock").drain();
        if sensed.is_empty() {
            return Ok(());
        }
        let mut heartbeat = false;
        for s in sensed {
            let event = match s {
                Sensed::DoorOpened(compartment) => DeviceEvent::DoorOpened {
                    unreleased: !self.unlocked.contains_key(&compartment)
                        && !self.released_offline.contains(&compartment),
                    compartment,
                },
                Sensed::DoorClosed(compartment) => {
                    self.released_offline.remove(&compartment);
                    DeviceEvent::DoorClosed {
                        unlocked_by: self.unlocked.remove(&compartment),
                        compartment,
                    }
                }
                Sensed::CodeEntered(code) | Sensed::QrRead(code) => self.keypad(&code)?,
                Sensed::Tamper(tripped) => {
                    self.tamper = tripped;
                    heartbeat = true;
                    if tripped {
                        self.codes.locked_down = true;
                        self.save_codes()?;
                    }
                    DeviceEvent::Tamper { tripped }
                }
                Sensed::Temperature(compartment, celsius) => {
                    self.temperatures.insert(compartment, celsius);
                    continue;
                }
                Sensed::MainsPower(on) => {
                    self.mains = on;
                    heartbeat = true;
                    continue;
                }
            };
            self.queue.push(self.now(), event)?;
        }
        self.status
            .send_modify(|s| s.queued_events = self.queue.len());
        if heartbeat {
            self.heartbeat();
        }
        self.send_due();
        Ok(())
    }

    /// The power-on self-test: every latch and door sensor asked to answer, the result queued
    /// as an event (a provisioned locker goes active when it passes).
    fn self_test(&mut self) -> Result<(), AgentError> {
        let failures = self.hardware.lock().expect("hardware lock").self_test();
        if !failures.is_empty() {
            tracing::warn!(?failures, "self-test failed");
        }
        self.update.self_tested(failures.is_empty());
        self.queue
            .push(self.now(), DeviceEvent::SelfTest { failures })?;
        self.status
            .send_modify(|s| s.queued_events = self.queue.len());
        Ok(())
    }

    /// Sends the events that are due; a full request channel leaves them for the next round.
    pub(crate) fn send_due(&mut self) {
        if !self.status.borrow().connected {
            return;
        }
        let topic = self.topic(Channel::Events);
        for (_, json) in self.queue.due(Instant::now()) {
            if self
                .client
                .try_publish(&topic, QoS::AtLeastOnce, false, json)
                .is_err()
            {
                break;
            }
        }
    }

    /// Sends a heartbeat; whether it went out.
    fn heartbeat(&mut self) -> bool {
        self.heartbeat_seq += 1;
        let (doors_open, battery_percent) = {
            let hardware = self.hardware.lock().expect("hardware lock");
            let open = hardware
                .compartments()
                .into_iter()
                .filter(|c| hardware.door(c) == Ok(Door::Open))
                .collect();
            (open, hardware.battery_percent())
        };
        let message = TelemetryMessage {
            v: MESSAGE_VERSION,
            locker: self.options.locker.clone(),
            seq: self.heartbeat_seq,
            at: self.now(),
            firmware: self.update.version().to_string(),
            on_trial: self.update.on_trial(),
            mains: self.mains,
            battery_percent,
            tamper: self.tamper,
            out_of_service: self.status.borrow().out_of_service,
            doors_open,
            temperatures: self
                .temperatures
                .iter()
                .map(|(c, t)| (c.clone(), *t))
                .collect(),
            queued_events: u32::try_from(self.queue.len()).unwrap_or(u32::MAX),
            last_counter: self.gate.last_counter(),
        };
        let Ok(json) = serde_json::to_vec(&message) else {
            return false;
        };
        // Telemetry is not queued: a heartbeat that cannot go out is replaced by the next.
        self.status.borrow().connected
            && self
                .client
                .try_publish(self.topic(Channel::Telemetry), QoS::AtMostOnce, false, json)
                .is_ok()
    }

    /// Handles what the node sent on the commands topic. Only a broken state directory is an
    /// error; a bad message is logged and refused.
    fn downlink(&mut self, payload: &[u8]) -> Result<(), AgentError> {
        let downlink: Downlink = match serde_json::from_slice(payload) {
            Ok(downlink) => downlink,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable downlink ignored");
                return Ok(());
            }
        };
        if downlink.v != MESSAGE_VERSION {
            tracing::warn!(
                version = downlink.v,
                "downlink of an unknown version ignored"
            );
            return Ok(());
        }
        if !downlink.acked_events.is_empty() {
            self.queue.ack(&downlink.acked_events)?;
            self.status
                .send_modify(|s| s.queued_events = self.queue.len());
        }
        if let Some(firmware) = downlink.firmware {
            self.firmware_downlink(firmware)?;
        }
        if let Some(command) = downlink.command {
            let outcome = self.execute(&command)?;
            let ack = AckMessage {
                v: MESSAGE_VERSION,
                command: command.command.id.clone(),
                outcome,
            };
            if let Ok(json) = serde_json::to_vec(&ack) {
                let _ = self.client.try_publish(
                    self.topic(Channel::Acks),
                    QoS::AtLeastOnce,
                    false,
                    json,
                );
            }
        }
        Ok(())
    }

    fn save_codes(&self) -> Result<(), AgentError> {
        let json = serde_json::to_vec(&self.codes).unwrap_or_default();
        write_atomic(&self.state, CODES_FILE, &json).map_err(AgentError::State)
    }

    /// What a code entered at the keypad becomes. Hashed with the station's key (the code itself
    /// is never queued or sent) and left to the node while one answers. While none does, it is
    /// checked against the cache under the station's lock-out, counted before the code is looked
    /// at and durably, as at a node: a match is spent and its compartment released, and the
    /// pickup becomes the event; a code the cache does not hold (a drop-off code, one newer than
    /// the cache) is queued hashed for the node to decide once one answers; one entered while
    /// the station waits is refused unchecked.
    fn keypad(&mut self, code: &str) -> Result<DeviceEvent, AgentError> {
        let key = self
            .codes
            .key
            .as_deref()
            .and_then(lockergrid_protocol::from_hex::<32>)
            .map(StationCodeKey::from_bytes);
        let parsed = PickupCode::parse(code);
        if self.status.borrow().connected {
            return Ok(match (key, parsed) {
                (Some(key), Ok(code)) => DeviceEvent::CodeHashed {
                    code_hash: key.hash(&code).to_hex(),
                },
                // No key yet (before the node's first cache), or no code at all: the node
                // decides and counts it as typed.
                _ => DeviceEvent::CodeEntered {
                    code: code.to_owned(),
                },
            });
        }
        if self.codes.locked_down {
            tracing::info!("code refused offline: the station is locked down");
            return Ok(self.refused(true));
        }
        let now = self.now();
        if self.codes.lockout.admit(now).is_err() {
            tracing::info!("code refused offline: the station waits after wrong codes");
            return Ok(self.refused(true));
        }
        self.save_codes()?;
        let (Some(key), Ok(code)) = (key, parsed) else {
            return Ok(self.refused(false));
        };
        let hash = key.hash(&code).to_hex();
        let Some(at) = self
            .codes
            .codes
            .iter()
            .position(|c| c.hash == hash && c.expires_at > now)
        else {
            return Ok(DeviceEvent::CodeHashed { code_hash: hash });
        };
        let cached = self.codes.codes.remove(at);
        self.codes.lockout.give_back();
        self.save_codes()?;
        self.status
            .send_modify(|s| s.cached_codes = self.codes.codes.len());
        let unlocked = self
            .hardware
            .lock()
            .expect("hardware lock")
            .unlock(&cached.compartment);
        if let Err(e) = unlocked {
            tracing::warn!(compartment = %cached.compartment, error = %e, "offline unlock failed; the code is kept");
            self.codes.codes.push(cached);
            self.save_codes()?;
            return Ok(self.refused(false));
        }
        tracing::info!(compartment = %cached.compartment, "code checked offline; released");
        self.released_offline.insert(cached.compartment.clone());
        Ok(DeviceEvent::OfflinePickup {
            compartment: cached.compartment,
            code_hash: hash,
        })
    }

    /// The event of a code refused offline, with the count as it now stands.
    fn refused(&mut self, locked_out: bool) -> DeviceEvent {
        self.status.send_modify(|s| s.refused_codes += 1);
        DeviceEvent::CodeRejectedOffline {
            lockout: self.codes.lockout,
            locked_out,
        }
    }

    fn execute(&mut self, command: &SignedCommand) -> Result<Outcome, AgentError> {
        match self.gate.admit(command, self.now()) {
            Ok(()) => {}
            Err(GateError::Refused(refusal)) => {
                self.status.send_modify(|s| s.refused += 1);
                tracing::warn!(%refusal, id = %command.command.id, "command refused");
                return Ok(Outcome::Refused {
                    reason: refusal.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        }
        let compartment = &command.command.compartment;
        let outcome = match &command.command.action {
            Action::Unlock => {
                if self.status.borrow().out_of_service {
                    Outcome::Refused {
                        reason: "out of service".into(),
                    }
                } else {
                    match self
                        .hardware
                        .lock()
                        .expect("hardware lock")
                        .unlock(compartment)
                    {
                        Ok(()) => {
                            self.unlocked
                                .insert(compartment.clone(), command.command.id.clone());
                            Outcome::Executed
                        }
                        Err(e) => Outcome::Failed {
                            reason: e.to_string(),
                        },
                    }
                }
            }
            Action::SetOutOfService { out_of_service } => {
                let out_of_service = *out_of_service;
                self.status
                    .send_modify(|s| s.out_of_service = out_of_service);
                self.heartbeat();
                Outcome::Executed
            }
            Action::SyncCodes {
                key,
                codes,
                lockout,
                locked_down,
            } => {
                // With nothing of its own still queued, the node has heard every attempt the
                // locker counted and its count is the station's; otherwise the locker keeps
                // whichever count is higher until its queue has drained.
                // A tamper alarm still queued is one the node has not heard: its lock-down holds.
                let mut merged = *lockout;
                let mut locked = *locked_down;
                if !self.queue.is_empty() {
                    merged.merge(&self.codes.lockout);
                    locked |= self.codes.locked_down;
                }
                self.codes = CodeCache {
                    key: Some(key.clone()),
                    codes: codes.clone(),
                    lockout: merged,
                    locked_down: locked,
                };
                self.save_codes()?;
                self.status.send_modify(|s| s.cached_codes = codes.len());
                return Ok(Outcome::Executed);
            }
        };
        self.status.send_modify(|s| s.executed += 1);
        Ok(outcome)
    }
}
