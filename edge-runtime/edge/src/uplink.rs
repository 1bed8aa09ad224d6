//! The edge node's uplink connection: one MQTT client to the gateway's device listener over TLS
//! 1.3 with the edge node's own certificate, reconnecting with exponential backoff while the
//! gateway is unreachable. What travels on it is the edge node's task's business.

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, TlsConfiguration, Transport};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The largest sync message the edge node accepts: a full resync of a large cluster.
const MAX_DOWNLINK: usize = 16 * 1024 * 1024;
/// The largest message it sends, and the gateway's front takes from an edge node: a relayed
/// locker message or a batch of decisions.
pub(super) const MAX_UPLINK: usize = lockergrid_device_plane::MAX_EDGE_PACKET;
/// First reconnect delay; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Longest reconnect delay: an edge node finds a returning gateway within this, and a handful
/// of edge nodes retrying this often cost the gateway nothing.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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

/// What the connection task hands the edge node.
pub enum Link {
    /// A packet from the gateway.
    Packet(Packet),
    /// The connection failed; it is being re-established.
    Lost,
}

/// Creates the client and starts the task that keeps it connected; packets arrive on the
/// returned channel until the client is dropped.
pub fn connect(options: &UplinkOptions) -> (AsyncClient, mpsc::Receiver<Link>) {
    let mut mqtt = MqttOptions::new(options.edge.as_str(), &options.host, options.port);
    mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        options.tls.clone(),
    )));
    mqtt.set_keep_alive(Duration::from_secs(15));
    mqtt.set_clean_session(true);
    mqtt.set_max_packet_size(MAX_DOWNLINK, MAX_UPLINK);
    let (client, mut events) = AsyncClient::new(mqtt, 1024);
    let mut network = events.network_options();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
    let (incoming, link) = mpsc::channel(256);
    tokio::spawn(drive(events, incoming));
    (client, link)
}

/// Polls the connection, reconnecting with backoff; ends when the receiver is gone.
async fn drive(mut events: EventLoop, to_edge: mpsc::Sender<Link>) {
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
                if to_edge.send(Link::Lost).await.is_err() {
                    return;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if to_edge.send(link).await.is_err() {
            return;
        }
    }
}
