//! The embedded rumqttd: one MQTT 3.1.1 listener on loopback that accepts only connections whose
//! CONNECT carries the front's per-boot secret, and the node's local link.

use super::{DeviceError, LinkRx, LinkTx};
use bytes::BytesMut;
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{
    Connect, ConnectReturnCode, Disconnect, DisconnectReasonCode, Login, Packet, Protocol,
};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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
    let expected = secret.clone();
    connections.set_auth_handler(move |_client_id, user: String, password: String| {
        let accepted =
            user == FRONT_USER && bool::from(password.as_bytes().ct_eq(expected.as_bytes()));
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
    // The broker binds on its own thread; the front may forward only once it answers a CONNECT
    // with the secret (which also proves the auth handler is in place).
    let mut last = String::from("no answer");
    for _ in 0..200 {
        match ready(addr, &secret).await {
            Ok(()) => return Ok((addr, tx, rx)),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(DeviceError::Broker(format!(
        "the broker did not accept the front on {addr} within 2 s: {last}"
    )))
}

/// Connects to the broker as the front does, expects a successful CONNACK and disconnects.
async fn ready(addr: SocketAddr, secret: &str) -> Result<(), String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = BytesMut::new();
    let connect = Connect {
        keep_alive: 10,
        client_id: "lockergrid-front-probe".into(),
        clean_session: true,
    };
    let login = Login {
        username: FRONT_USER.into(),
        password: secret.into(),
    };
    V4.write(
        Packet::Connect(connect, None, None, None, Some(login)),
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut answer = BytesMut::with_capacity(16);
    let connack = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            match V4.read_mut(&mut answer, 16) {
                Ok(packet) => return Ok(packet),
                Err(rumqttd::protocol::Error::InsufficientBytes(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
            if stream
                .read_buf(&mut answer)
                .await
                .map_err(|e| e.to_string())?
                == 0
            {
                return Err("closed".to_string());
            }
        }
    })
    .await
    .map_err(|_| "no CONNACK".to_string())??;
    match connack {
        Packet::ConnAck(ack, _) if ack.code == ConnectReturnCode::Success => {
            out.clear();
            V4.write(
                Packet::Disconnect(
                    Disconnect {
                        reason_code: DisconnectReasonCode::NormalDisconnection,
                    },
                    None,
                ),
                &mut out,
            )
            .map_err(|e| e.to_string())?;
            stream.write_all(&out).await.map_err(|e| e.to_string())
        }
        other => Err(format!("refused: {other:?}")),
    }
}
