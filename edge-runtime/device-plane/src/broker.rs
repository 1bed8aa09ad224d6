//! The embedded rumqttd: one MQTT 3.1.1 listener on loopback that accepts only connections whose
//! CONNECT carries the front's per-boot secret, and the node's local link. rumqttd binds its
//! port itself, so the port is picked free first; the secret goes to it only once the listener
//! there is this process's own (`ownership`), and a port another process took in between is
//! given up for another.

mod ownership;

use super::{DeviceError, LinkRx, LinkTx};
use bytes::BytesMut;
use ownership::Owner;
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

/// Ports tried before giving up when other processes keep taking the one picked.
const ATTEMPTS: usize = 3;

/// Starts the broker and returns its loopback address and the node's link.
pub(super) async fn start(
    secret: Arc<str>,
    max_packet: usize,
) -> Result<(SocketAddr, LinkTx, LinkRx), DeviceError> {
    let mut taken = Vec::new();
    while taken.len() < ATTEMPTS {
        let addr = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|probe| probe.local_addr())
            .map_err(|source| DeviceError::Io {
                what: "find a loopback port for the broker",
                source,
            })?;
        match start_on(addr, secret.clone(), max_packet).await {
            Err(DeviceError::PortTaken(addrs)) => {
                tracing::warn!(%addr, "another process took the broker's loopback port; trying another");
                taken.extend(addrs);
            }
            started => return started,
        }
    }
    Err(DeviceError::PortTaken(taken))
}

/// Starts the broker on `addr` and waits until it answers the front there.
async fn start_on(
    addr: SocketAddr,
    secret: Arc<str>,
    max_packet: usize,
) -> Result<(SocketAddr, LinkTx, LinkRx), DeviceError> {
    let io = |what| move |source| DeviceError::Io { what, source };
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
    // with the secret (which also proves the auth handler is in place), and sends that only to
    // a listener of this process.
    let mut last = String::from("no answer");
    for _ in 0..200 {
        match ownership::owner(addr.port()).map_err(io("read the kernel's socket tables"))? {
            Owner::Other => return Err(DeviceError::PortTaken(vec![addr])),
            Owner::Nobody => last = "not listening yet".into(),
            Owner::Us => match ready(addr, &secret).await {
                Ok(()) => return Ok((addr, tx, rx)),
                Err(e) => last = e,
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::OwnedFd;
    use std::process::{Command, Stdio};

    /// The pending connections in the accept queue of the listener on `port` (`rx_queue` of a
    /// listening socket in the kernel's table).
    fn queued(port: u16) -> usize {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("tcp table");
        table
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                let local_port = u16::from_str_radix(f[1].rsplit_once(':')?.1, 16).ok()?;
                let rx = f[4].split_once(':')?.1;
                (local_port == port && f[3] == "0A").then(|| usize::from_str_radix(rx, 16).ok())?
            })
            .sum()
    }

    #[tokio::test]
    async fn a_port_another_process_took_gets_no_secret_and_no_connection() {
        // Another process listens on the port the broker was to take: a child holding the
        // listening socket as its stdin, which this process then closes.
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut impostor = Command::new("sleep")
            .arg("60")
            .stdin(Stdio::from(OwnedFd::from(listener)))
            .spawn()
            .expect("sleep runs");
        assert_eq!(ownership::owner(addr.port()).expect("read"), Owner::Other);
        let started = start_on(addr, Arc::from("per-boot-secret"), 65_536).await;
        assert!(
            matches!(&started, Err(DeviceError::PortTaken(a)) if a == &[addr]),
            "{:?}",
            started.err()
        );
        assert_eq!(
            queued(addr.port()),
            0,
            "the front never connected to the impostor"
        );
        impostor.kill().expect("killed");
        impostor.wait().expect("reaped");
    }

    #[tokio::test]
    async fn the_broker_starts_on_a_port_of_its_own() {
        let (addr, _tx, _rx) = start(Arc::from("per-boot-secret"), 65_536)
            .await
            .expect("started");
        assert_eq!(ownership::owner(addr.port()).expect("read"), Owner::Us);
    }
}
