//! The device plane of a node (DESIGN.md §6): lockers and edge nodes connect over MQTT with TLS
//! 1.3 and a client certificate from the deployment's CA.
//!
//! rumqttd is embedded, but it cannot check revocation lists, enforce topic rules or pin the TLS
//! version, so it never faces the network. The node's own front terminates TLS, verifies the chain
//! and the revocation list (rustls/webpki), reads the identity from the certificate (x509-parser),
//! requires the MQTT client id to equal it, and forwards the connection to rumqttd's listener on
//! loopback with a per-boot secret injected into CONNECT; rumqttd's auth handler accepts nothing
//! else, so nothing on the host can bypass the front. On the way, every PUBLISH and SUBSCRIBE is
//! checked against the device's own topics; an attempt outside them disconnects the device and is
//! reported. A new revocation list rejects new handshakes at once and cuts live sessions of
//! revoked certificates; the front rereads the list every [`DeviceOptions::crl_poll`]. Beyond
//! the CA, the node's [`Admission`] list (its device registry) says who may connect at all: a
//! locker only with the certificate it was provisioned with, and only while provisioned or
//! active; a change cuts the sessions it no longer admits.
//!
//! The node's own traffic uses rumqttd's local link: no socket, no TLS.
//!
//! Modules: `front` (TLS termination, identity, topic rules, the CONNECT rewrite), `tls` (the
//! chain and revocation checks), `broker` (the embedded rumqttd on loopback) and `pki` (the
//! deployment's device PKI, [`CertificateAuthority`]). It must never depend on the store, the
//! plugin host or what a node decides: it carries messages and says who sent them.

mod admission;
mod broker;
mod front;
mod pki;
mod tls;

use lockergrid_protocol::topic::{Channel, Root, Topic};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use admission::{Admission, Admit};
pub use pki::*;
pub use rumqttd::Notification;
pub use rumqttd::local::{LinkRx, LinkTx};

/// Where the device plane listens and what it trusts.
#[derive(Clone, Debug)]
pub struct DeviceOptions {
    /// The TLS listener for devices (port 0 picks a free port).
    pub listen: SocketAddr,
    /// The deployment CA's certificate (PEM): the only issuer a device certificate may have.
    pub ca: PathBuf,
    /// The published revocation list (PEM), reread every `crl_poll`.
    pub crl: PathBuf,
    /// This node's server certificate chain (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM).
    pub key: PathBuf,
    /// How often the revocation list is reread; a revoked session ends within this plus the
    /// time to close it.
    pub crl_poll: Duration,
    /// The largest MQTT packet a device may send, in bytes.
    pub max_packet: usize,
    /// The largest an edge node may send: a locker's message of up to `max_packet`, wrapped
    /// for the uplink, must always fit.
    pub max_edge_packet: usize,
    /// Which identities, with which certificates, may connect: the node's device registry.
    pub admission: Arc<Admission>,
}

/// The largest MQTT packet an edge node's uplink sends and a gateway takes from one: four times
/// a locker's (its messages are relayed re-encoded, inside an envelope), and room for a batch of
/// decisions.
pub const MAX_EDGE_PACKET: usize = 256 * 1024;

impl DeviceOptions {
    /// Options with the PKI files of a node: `ca.pem` and `crl.pem` from the CA directory, and
    /// the node's certificate and key. It admits nobody until the node fills
    /// [`DeviceOptions::admission`] from its registry.
    pub fn new(listen: SocketAddr, pki_dir: PathBuf, cert: PathBuf, key: PathBuf) -> Self {
        DeviceOptions {
            listen,
            ca: pki_dir.join(crate::CA_CERT),
            crl: pki_dir.join(crate::CRL),
            cert,
            key,
            crl_poll: Duration::from_secs(1),
            max_packet: 64 * 1024,
            max_edge_packet: MAX_EDGE_PACKET,
            admission: Admission::new([]),
        }
    }
}

/// Why the device plane could not start.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// A certificate, key or revocation list could not be read or used.
    #[error("device TLS: {0}")]
    Tls(String),
    /// The listener or the embedded broker could not start.
    #[error("device plane: {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The embedded broker refused the node's local link.
    #[error("embedded broker: {0}")]
    Broker(String),
    /// Other processes listened on every loopback port picked for the broker; nothing was sent
    /// to them.
    #[error(
        "embedded broker: other processes took its loopback ports {0:?}; nothing was sent to them"
    )]
    PortTaken(Vec<SocketAddr>),
}

/// What the front saw, for the access log and the operators.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Audit {
    /// A connection that did not become a session: failed handshake, no or unknown certificate,
    /// a client id that is not the certificate's, no CONNECT in time.
    Refused {
        /// The peer's address.
        peer: SocketAddr,
        /// The device, when its certificate got that far.
        identity: Option<Identity>,
        /// Why.
        reason: String,
    },
    /// A device is connected.
    Connected {
        /// Who.
        identity: Identity,
        /// Its certificate's serial, lowercase hex.
        serial: String,
    },
    /// A device tried to publish or subscribe outside its topics, or broke the protocol, and was
    /// disconnected.
    Violation {
        /// Who.
        identity: Identity,
        /// What it tried, e.g. `publish lockers/other/events`.
        attempt: String,
    },
    /// A live session was cut because its certificate was revoked.
    Revoked {
        /// Who.
        identity: Identity,
        /// The revoked serial, lowercase hex.
        serial: String,
    },
    /// A live session was cut because the node no longer admits the device (suspended,
    /// decommissioned, provisioned again with another certificate).
    Dismissed {
        /// Who.
        identity: Identity,
        /// Why, from the admission list.
        reason: String,
    },
    /// A device connected while a session with its identity was live: the broker hands the
    /// session to the newcomer. A reconnect does this once; two devices with one certificate
    /// do it over and over, which the node raises an alert for.
    Takeover {
        /// Who.
        identity: Identity,
        /// The newcomer's address.
        peer: SocketAddr,
        /// The address of the session it took over.
        previous: SocketAddr,
    },
    /// A session ended.
    Disconnected {
        /// Who.
        identity: Identity,
    },
}

/// A running device plane. Dropping it stops the front (the embedded broker's threads live as
/// long as the process, as rumqttd has no shutdown).
pub struct DevicePlane {
    addr: SocketAddr,
    stop: CancellationToken,
}

/// What [`DevicePlane::start`] hands the node: the node's local link to the broker and the
/// front's audit stream.
pub struct NodeLink {
    /// Publishes (commands) and subscribes (events, telemetry, acks) without a socket.
    pub tx: LinkTx,
    /// What the broker forwards to the node.
    pub rx: LinkRx,
    /// Connections, refusals, violations and revocations, in order. Nothing a device that
    /// presented a certificate did is ever dropped; refusals of connections without one are
    /// reported one by one up to a rate and summed up beyond it, so a flood of anonymous
    /// connects cannot grow this stream or the access log behind it.
    pub audit: mpsc::UnboundedReceiver<Audit>,
}

impl DevicePlane {
    /// Starts the embedded broker on loopback, then the TLS front on `options.listen`, and the
    /// revocation-list watch.
    pub async fn start(options: DeviceOptions) -> Result<(DevicePlane, NodeLink), DeviceError> {
        let secret: Arc<str> = lockergrid_protocol::to_hex(&rand::random::<[u8; 32]>()).into();
        let trust = tls::ChainTrust::load(&options)?;
        let revocations = tls::Revocations::load(&options.crl)?;
        let config = trust.server_config(&revocations)?;
        let largest = options.max_packet.max(options.max_edge_packet);
        let (upstream, tx, rx) = broker::start(secret.clone(), largest).await?;
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| DeviceError::Io {
                    what: "bind the device listener",
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| DeviceError::Io {
            what: "read the device listener's address",
            source,
        })?;
        let (audit_tx, audit) = mpsc::unbounded_channel();
        let stop = CancellationToken::new();
        let front = front::Front::new(
            trust,
            (config, revocations),
            options.admission.clone(),
            upstream,
            secret,
            front::PacketLimits {
                device: options.max_packet,
                edge: options.max_edge_packet,
            },
            audit_tx,
        );
        tokio::spawn(front.clone().accept(listener, stop.clone()));
        tokio::spawn(front.clone().watch_admission(stop.clone()));
        tokio::spawn(front.watch_crl(options, stop.clone()));
        Ok((DevicePlane { addr, stop }, NodeLink { tx, rx, audit }))
    }

    /// The address devices connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for DevicePlane {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The root of an identity's topics; nodes have none (their certificates are for serving).
fn root(identity: &Identity) -> Option<Root> {
    match identity.kind {
        Kind::Locker => Some(Root::Locker),
        Kind::Edge => Some(Root::Edge),
        Kind::Node => None,
    }
}

/// Whether `identity` may publish to `topic`: only its own events, telemetry and acks.
pub fn may_publish(identity: &Identity, topic: &str) -> bool {
    Topic::parse(topic).is_some_and(|t| {
        Some(t.root) == root(identity) && t.id == identity.id && t.channel.from_device()
    })
}

/// Whether `identity` may subscribe to `filter`: only its own commands, no wildcards.
pub fn may_subscribe(identity: &Identity, filter: &str) -> bool {
    Topic::parse(filter).is_some_and(|t| {
        Some(t.root) == root(identity) && t.id == identity.id && t.channel == Channel::Commands
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_reaches_only_its_own_topics() {
        let me = Identity::new(Kind::Locker, "ams-zuid").unwrap();
        for ok in [
            "lockers/ams-zuid/events",
            "lockers/ams-zuid/telemetry",
            "lockers/ams-zuid/acks",
        ] {
            assert!(may_publish(&me, ok), "{ok}");
            assert!(!may_subscribe(&me, ok), "{ok}");
        }
        assert!(may_subscribe(&me, "lockers/ams-zuid/commands"));
        for bad in [
            "lockers/ams-zuid/commands",
            "lockers/dam-square/events",
            "edges/ams-zuid/events",
            "lockers/+/events",
            "lockers/#",
            "#",
            "lockers/ams-zuid/events/x",
            "$SYS/broker",
        ] {
            assert!(!may_publish(&me, bad), "{bad}");
        }
        for bad in [
            "lockers/+/commands",
            "lockers/#",
            "#",
            "lockers/dam-square/commands",
            "edges/ams-zuid/commands",
        ] {
            assert!(!may_subscribe(&me, bad), "{bad}");
        }
        let edge = Identity::new(Kind::Edge, "edge-noord").unwrap();
        assert!(may_publish(&edge, "edges/edge-noord/events"));
        assert!(!may_publish(&edge, "lockers/edge-noord/events"));
        let node = Identity::new(Kind::Node, "gateway").unwrap();
        assert!(!may_publish(&node, "lockers/gateway/events"));
        assert!(!may_subscribe(&node, "lockers/gateway/commands"));
    }
}
