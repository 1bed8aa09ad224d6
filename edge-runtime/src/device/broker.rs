//! The embedded rumqttd: one MQTT 3.1.1 listener on loopback that accepts only connections whose
//! CONNECT carries the front's per-boot secret, and the node's local link.

use super::{DeviceError, LinkRx, LinkTx};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The user name the front puts in every CONNECT it forwards.
pub(super) const FRONT_USER: &str = "lockergrid-front";
/// The node's own client id on the local link.
const NODE_CLIENT: &str = "lockergrid-node";

/// Starts the broker and returns its loopback address and the node's link.
pub(super) async fn start(
    secret: Arc<str>,
    max_packet: usize,
) -> Result<(SocketAddr, LinkTx, LinkRx), DeviceError> {
    let io = |what| move |source| DeviceError::Io { what, source };
    let addr = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|probe| probe.local_addr())
        .map_err(io("find a loopback port for the broker"))?;
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: max_packet,
        max_inflight_count: 256,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |_client_id, user: String, password: String| {
        let accepted =
            user == FRONT_USER && bool::from(password.as_bytes().ct_eq(secret.as_bytes()));
        async move { accepted }
    });
    let server = ServerSettings {
        name: "lockergrid-front".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let config = Config {
        router: RouterConfig {
            max_connections: 10_240,
            max_outgoing_packet_count: 1024,
            max_segment_size: 1 << 20,
            max_segment_count: 16,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("front".to_string(), server)])),
        ..Config::default()
    };
    let mut broker = Broker::new(config);
    let (tx, rx) = broker
        .link(NODE_CLIENT)
        .map_err(|e| DeviceError::Broker(e.to_string()))?;
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded broker stopped");
            }
        })
        .map_err(io("start the broker thread"))?;
    // The broker binds on its own thread; the front may forward only once it listens.
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok((addr, tx, rx));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(DeviceError::Broker(format!(
        "the broker did not listen on {addr} within 2 s"
    )))
}
