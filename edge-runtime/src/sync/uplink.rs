//! The edge node's uplink: one MQTT connection to the gateway's device listener over TLS 1.3 with
//! the edge node's own certificate, reconnecting with exponential backoff while the gateway is
//! unreachable. It applies the gateway's sync batches in order to the edge node's store and
//! reports the version it holds.

use super::{EdgeDownlink, EdgeStatus, SYNC_VERSION};
use crate::store::Store;
use lockergrid_protocol::topic::{Channel, Root, Topic};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// The largest sync message the edge node accepts: a full resync of a large cluster.
const MAX_DOWNLINK: usize = 16 * 1024 * 1024;
/// First reconnect delay; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest reconnect delay.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How the uplink connects.
#[derive(Clone)]
pub struct UplinkOptions {
    /// The edge node's id (its certificate's and its MQTT client id).
    pub edge: String,
    /// The gateway's device listener host, as its certificate names it.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TLS 1.3 client configuration with the edge node's certificate.
    pub tls: Arc<rustls::ClientConfig>,
    /// How often the edge node reports its status.
    pub heartbeat: Duration,
}

/// What the connection task hands the uplink.
enum Link {
    Packet(Packet),
    Lost,
}

/// Polls the connection, reconnecting with backoff; ends when the uplink is gone.
async fn drive(mut events: EventLoop, to_uplink: mpsc::Sender<Link>) {
    let mut retry = FIRST_BACKOFF;
    loop {
        let link = match events.poll().await {
            Ok(Event::Incoming(packet)) => {
                if matches!(packet, Packet::ConnAck(_)) {
                    retry = FIRST_BACKOFF;
                }
                Link::Packet(packet)
            }
            Ok(Event::Outgoing(_)) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "uplink down");
                if to_uplink.send(Link::Lost).await.is_err() {
                    return;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if to_uplink.send(link).await.is_err() {
            return;
        }
    }
}

/// Runs the uplink until `shutdown`; `connected` says whether the gateway is reachable now.
pub async fn run(
    options: UplinkOptions,
    store: Store,
    connected: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut mqtt = MqttOptions::new(options.edge.as_str(), &options.host, options.port);
    mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        options.tls.clone(),
    )));
    mqtt.set_keep_alive(Duration::from_secs(15));
    mqtt.set_clean_session(true);
    mqtt.set_max_packet_size(MAX_DOWNLINK, 64 * 1024);
    let (client, mut events) = AsyncClient::new(mqtt, 256);
    let mut network = events.network_options();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
    let (incoming, mut link) = mpsc::channel(64);
    let driver = tokio::spawn(drive(events, incoming));
    let uplink = Uplink {
        client,
        store,
        edge: options.edge,
    };
    let mut heartbeat = tokio::time::interval(options.heartbeat);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            packet = link.recv() => match packet {
                Some(Link::Packet(Packet::ConnAck(_))) => {
                    let commands = uplink.topic(Channel::Commands);
                    uplink.client.try_subscribe(commands, QoS::AtLeastOnce).ok();
                }
                Some(Link::Packet(Packet::SubAck(_))) => {
                    connected.send_replace(true);
                    tracing::info!(edge = %uplink.edge, "uplink connected");
                    uplink.report();
                }
                Some(Link::Packet(Packet::Publish(publish))) => {
                    uplink.downlink(&publish.payload).await;
                }
                Some(Link::Packet(_)) => {}
                Some(Link::Lost) => {
                    if connected.send_replace(false) {
                        tracing::warn!(edge = %uplink.edge, "uplink lost; deciding locally");
                    }
                }
                None => break,
            },
            _ = heartbeat.tick() => {
                if *connected.borrow() {
                    uplink.report();
                }
            }
        }
    }
    driver.abort();
}

struct Uplink {
    client: AsyncClient,
    store: Store,
    edge: String,
}

impl Uplink {
    fn topic(&self, channel: Channel) -> String {
        Topic {
            root: Root::Edge,
            id: &self.edge,
            channel,
        }
        .to_string()
    }

    /// Applies each batch that fits on the version held, in order, then reports where the store
    /// stands; a batch that does not fit is skipped and the report makes the gateway send what
    /// is missing.
    async fn downlink(&self, payload: &[u8]) {
        let downlink: EdgeDownlink = match serde_json::from_slice(payload) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable sync message ignored");
                return;
            }
        };
        if downlink.v != SYNC_VERSION {
            tracing::warn!(
                version = downlink.v,
                "sync message of an unknown version ignored"
            );
            return;
        }
        for batch in downlink.sync {
            let (version, full) = (batch.version, batch.full);
            match self.store.apply_sync(batch).await {
                Ok(true) => tracing::debug!(version, full, "sync applied"),
                Ok(false) => tracing::debug!(version, "sync batch does not fit; skipped"),
                Err(e) => {
                    tracing::error!(error = %e, "sync batch not applied");
                    break;
                }
            }
        }
        self.report();
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
