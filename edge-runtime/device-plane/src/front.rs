//! The TLS front: accepts devices, checks who they are and what they send, and forwards the
//! rest to the embedded broker on loopback.

use super::broker::FRONT_USER;
use super::tls::{ChainTrust, Revocations, peer_identity};
use super::{Admission, Audit, DeviceError, DeviceOptions, may_publish, may_subscribe};
use crate::{Identity, Kind};
use arc_swap::ArcSwap;
use bytes::BytesMut;
use lockergrid_protocol::to_hex;
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{ConnAck, ConnectReturnCode, Login, Packet, Protocol};
use rustls::ServerConfig;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a device may take to send CONNECT after the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

struct Session {
    identity: Identity,
    peer: SocketAddr,
    serial: Vec<u8>,
    cut: CancellationToken,
    /// Why the front cut it, when it did.
    dismissed: Arc<Mutex<Option<String>>>,
}

pub(super) struct Front {
    trust: ChainTrust,
    config: ArcSwap<ServerConfig>,
    revoked: ArcSwap<std::collections::HashSet<Vec<u8>>>,
    admission: Arc<Admission>,
    sessions: Mutex<HashMap<u64, Session>>,
    next_session: AtomicU64,
    upstream: SocketAddr,
    secret: Arc<str>,
    limits: PacketLimits,
    audit: mpsc::UnboundedSender<Audit>,
    anonymous: Mutex<Tally>,
}

/// The largest MQTT packet a session may send, by the kind of its certificate.
#[derive(Clone, Copy, Debug)]
pub(super) struct PacketLimits {
    /// Lockers and every other kind.
    pub device: usize,
    /// Edge nodes, which relay their lockers' messages wrapped.
    pub edge: usize,
}

impl PacketLimits {
    fn of(&self, identity: &Identity) -> usize {
        match identity.kind {
            Kind::Edge => self.edge,
            _ => self.device,
        }
    }
}

/// Refusals of connections that presented no certificate, reported one by one up to
/// [`ANONYMOUS_PER_SECOND`] a second and counted beyond.
#[derive(Default)]
struct Tally {
    since: Option<std::time::Instant>,
    reported: u32,
    suppressed: u32,
    last_peer: Option<SocketAddr>,
}

/// Anonymous refusals reported one by one each second; the rest are summed up once a second.
const ANONYMOUS_PER_SECOND: u32 = 10;

/// Why a session ended, when it was the device's doing or the front's.
enum End {
    /// The device or the broker closed the connection.
    Closed,
    /// The device broke a rule; it is disconnected and reported.
    Violation(String),
    /// The certificate was revoked.
    Revoked,
    /// The node no longer admits the device.
    Dismissed(String),
    /// The node is stopping.
    Stopping,
}

impl Front {
    pub(super) fn new(
        trust: ChainTrust,
        initial: (Arc<ServerConfig>, Revocations),
        admission: Arc<Admission>,
        upstream: SocketAddr,
        secret: Arc<str>,
        limits: PacketLimits,
        audit: mpsc::UnboundedSender<Audit>,
    ) -> Arc<Front> {
        let (config, revocations) = initial;
        Arc::new(Front {
            trust,
            config: ArcSwap::new(config),
            revoked: ArcSwap::from_pointee(revocations.serials),
            admission,
            sessions: Mutex::new(HashMap::new()),
            next_session: AtomicU64::new(0),
            upstream,
            secret,
            limits,
            audit,
            anonymous: Mutex::new(Tally::default()),
        })
    }

    fn report(&self, audit: Audit) {
        if let Audit::Refused {
            identity: None,
            peer,
            ..
        } = &audit
            && !self.count_anonymous(*peer)
        {
            return;
        }
        match &audit {
            Audit::Refused { .. }
            | Audit::Violation { .. }
            | Audit::Revoked { .. }
            | Audit::Dismissed { .. }
            | Audit::Takeover { .. } => {
                tracing::warn!(?audit, "device plane")
            }
            Audit::Connected { .. } | Audit::Disconnected { .. } => {
                tracing::debug!(?audit, "device plane")
            }
        }
        // The receiver is gone only when the node is stopping.
        let _ = self.audit.send(audit);
    }

    /// Whether an anonymous refusal from `peer` is reported by itself (`false`: counted for the
    /// next summary).
    fn count_anonymous(&self, peer: SocketAddr) -> bool {
        let mut tally = self.anonymous.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if tally
            .since
            .is_none_or(|since| now.duration_since(since) >= Duration::from_secs(1))
        {
            tally.since = Some(now);
            tally.reported = 0;
        }
        tally.last_peer = Some(peer);
        if tally.reported < ANONYMOUS_PER_SECOND {
            tally.reported += 1;
            return true;
        }
        tally.suppressed += 1;
        false
    }

    /// Reports the anonymous refusals counted since the last summary as one record.
    fn summarize_anonymous(&self) {
        let (suppressed, peer) = {
            let mut tally = self.anonymous.lock().unwrap_or_else(|p| p.into_inner());
            (std::mem::take(&mut tally.suppressed), tally.last_peer)
        };
        if let (1.., Some(peer)) = (suppressed, peer) {
            tracing::warn!(suppressed, "device plane: refused connections summed up");
            let _ = self.audit.send(Audit::Refused {
                peer,
                identity: None,
                reason: format!(
                    "{suppressed} more connections without a certificate refused (the last from {peer}); over {ANONYMOUS_PER_SECOND} a second they are counted, not logged each"
                ),
            });
        }
    }

    pub(super) async fn accept(self: Arc<Front>, listener: TcpListener, stop: CancellationToken) {
        let mut summary = tokio::time::interval(Duration::from_secs(1));
        loop {
            let accepted = tokio::select! {
                () = stop.cancelled() => break,
                _ = summary.tick() => {
                    self.summarize_anonymous();
                    continue;
                }
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((tcp, peer)) => {
                    let front = self.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move { front.serve(tcp, peer, stop).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "device listener accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        for session in self.sessions.lock().expect("sessions lock").values() {
            session.cut.cancel();
        }
    }

    /// Rereads the revocation list whenever its bytes change; a list that cannot be read keeps
    /// the previous one in force (and says so), never none.
    pub(super) async fn watch_crl(
        self: Arc<Front>,
        options: DeviceOptions,
        stop: CancellationToken,
    ) {
        let mut seen = std::fs::read(&options.crl).ok();
        let mut tick = tokio::time::interval(options.crl_poll);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let Ok(bytes) = tokio::fs::read(&options.crl).await else {
                tracing::warn!(path = %options.crl.display(), "revocation list unreadable; the previous one stays in force");
                continue;
            };
            if seen.as_ref() == Some(&bytes) {
                continue;
            }
            match Revocations::load(&options.crl).and_then(|revocations| self.apply(revocations)) {
                Ok(()) => seen = Some(bytes),
                Err(e) => {
                    tracing::warn!(error = %e, "revocation list refused; the previous one stays in force")
                }
            }
        }
    }

    /// Puts a new revocation list in force: new handshakes check it, live sessions of revoked
    /// certificates are cut.
    fn apply(&self, revocations: Revocations) -> Result<(), DeviceError> {
        let config = self.trust.server_config(&revocations)?;
        self.config.store(config);
        self.revoked.store(Arc::new(revocations.serials));
        let revoked = self.revoked.load();
        for session in self.sessions.lock().expect("sessions lock").values() {
            if revoked.contains(&session.serial) {
                session.cut.cancel();
            }
        }
        Ok(())
    }

    /// Cuts the live sessions each new admission list no longer admits.
    pub(super) async fn watch_admission(self: Arc<Front>, stop: CancellationToken) {
        let mut changed = self.admission.watch();
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                seen = changed.changed() => if seen.is_err() { return },
            }
            for session in self.sessions.lock().expect("sessions lock").values() {
                if let Err(reason) = self.admission.check(&session.identity, &session.serial) {
                    *session.dismissed.lock().expect("dismissed lock") = Some(reason);
                    session.cut.cancel();
                }
            }
        }
    }

    async fn serve(self: Arc<Front>, tcp: TcpStream, peer: SocketAddr, stop: CancellationToken) {
        let refused = |identity, reason: String| Audit::Refused {
            peer,
            identity,
            reason,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(self.config.load_full());
        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return self.report(refused(None, format!("TLS handshake: {e}"))),
            Err(_) => return self.report(refused(None, "TLS handshake timed out".into())),
        };
        let peer_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first());
        let (identity, serial) = match peer_cert.map(peer_identity) {
            Some(Ok(found)) => found,
            Some(Err(reason)) => return self.report(refused(None, reason)),
            None => return self.report(refused(None, "no client certificate".into())),
        };
        if self.revoked.load().contains(&serial) {
            return self.report(refused(Some(identity), "certificate revoked".into()));
        }
        if let Err(reason) = self.admission.check(&identity, &serial) {
            return self.report(refused(Some(identity), reason));
        }
        let (mut reader, mut writer) = tokio::io::split(tls);
        let mut buf = BytesMut::with_capacity(4096);
        let first = tokio::time::timeout(
            CONNECT_TIMEOUT,
            read_packet(&mut reader, &mut buf, self.limits.device),
        )
        .await;
        let (connect, will, login_present) = match first {
            Ok(Ok(Some(Packet::Connect(connect, _, will, _, login)))) => {
                (connect, will, login.is_some())
            }
            Ok(Ok(Some(other))) => {
                return self.report(refused(
                    Some(identity),
                    format!("first packet was {} instead of CONNECT", name(&other)),
                ));
            }
            Ok(Ok(None)) => {
                return self.report(refused(Some(identity), "closed before CONNECT".into()));
            }
            Ok(Err(e)) => {
                let code = match e {
                    rumqttd::protocol::Error::InvalidProtocolLevel(_)
                    | rumqttd::protocol::Error::InvalidProtocol => {
                        ConnectReturnCode::RefusedProtocolVersion
                    }
                    _ => ConnectReturnCode::NotAuthorized,
                };
                refuse_connect(&mut writer, code).await;
                return self.report(refused(Some(identity), format!("CONNECT: {e}")));
            }
            Err(_) => {
                return self.report(refused(Some(identity), "no CONNECT in time".into()));
            }
        };
        let will_refused = will
            .as_ref()
            .map(|will| String::from_utf8_lossy(&will.topic).into_owned())
            .filter(|topic| !may_publish(&identity, topic));
        let reason = if connect.client_id != identity.id {
            Some((
                ConnectReturnCode::ClientIdentifierNotValid,
                format!(
                    "client id {:?} is not the certificate's {:?}",
                    connect.client_id, identity.id
                ),
            ))
        } else if let Some(topic) = will_refused {
            Some((
                ConnectReturnCode::NotAuthorized,
                format!("last will on {topic} is outside the device's topics"),
            ))
        } else if login_present {
            Some((
                ConnectReturnCode::BadUserNamePassword,
                "devices authenticate by certificate, not by user name and password".into(),
            ))
        } else {
            None
        };
        if let Some((code, reason)) = reason {
            refuse_connect(&mut writer, code).await;
            return self.report(refused(Some(identity), reason));
        }
        let mut upstream = match TcpStream::connect(self.upstream).await {
            Ok(upstream) => upstream,
            Err(e) => {
                refuse_connect(&mut writer, ConnectReturnCode::ServiceUnavailable).await;
                return self.report(refused(Some(identity), format!("broker unreachable: {e}")));
            }
        };
        let _ = upstream.set_nodelay(true);
        let login = Login {
            username: FRONT_USER.into(),
            password: self.secret.to_string(),
        };
        let mut out = BytesMut::with_capacity(256);
        if V4
            .write(
                Packet::Connect(connect, None, will, None, Some(login)),
                &mut out,
            )
            .is_err()
            || upstream.write_all(&out).await.is_err()
        {
            refuse_connect(&mut writer, ConnectReturnCode::ServiceUnavailable).await;
            return self.report(refused(
                Some(identity),
                "broker refused the connection".into(),
            ));
        }

        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let cut = stop.child_token();
        let dismissed = Arc::new(Mutex::new(None));
        let previous = {
            let mut sessions = self.sessions.lock().expect("sessions lock");
            let previous = sessions
                .values()
                .find(|s| s.identity == identity)
                .map(|s| s.peer);
            sessions.insert(
                id,
                Session {
                    identity: identity.clone(),
                    peer,
                    serial: serial.clone(),
                    cut: cut.clone(),
                    dismissed: dismissed.clone(),
                },
            );
            previous
        };
        // A revocation or an admission change that landed between the checks above and the
        // registration.
        if self.revoked.load().contains(&serial) {
            cut.cancel();
        }
        if let Err(reason) = self.admission.check(&identity, &serial) {
            *dismissed.lock().expect("dismissed lock") = Some(reason);
            cut.cancel();
        }
        if let Some(previous) = previous {
            self.report(Audit::Takeover {
                identity: identity.clone(),
                peer,
                previous,
            });
        }
        self.report(Audit::Connected {
            identity: identity.clone(),
            serial: to_hex(&serial),
        });

        let max_packet = self.limits.of(&identity);
        let (mut up_read, mut up_write) = upstream.into_split();
        let down = async {
            let mut chunk = vec![0u8; 16 * 1024];
            loop {
                // rumqttd leaves Nagle's algorithm on for its side: acknowledging each read at
                // once keeps its next small write (a command right after a PUBACK) from waiting
                // for our delayed ACK, up to 40 ms.
                let _ = up_read.as_ref().set_quickack(true);
                let n = match up_read.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if writer.write_all(&chunk[..n]).await.is_err() || writer.flush().await.is_err() {
                    break;
                }
            }
            let _ = writer.shutdown().await;
        };
        let up = async {
            loop {
                let packet = match read_packet(&mut reader, &mut buf, max_packet).await {
                    Ok(Some(packet)) => packet,
                    Ok(None) => return End::Closed,
                    Err(e) => return End::Violation(format!("malformed packet: {e}")),
                };
                out.clear();
                let mut next = Some(packet);
                // Everything else already complete in the buffer joins the same write.
                while let Some(packet) = next {
                    if let Some(attempt) = forbidden(&identity, &packet) {
                        return End::Violation(attempt);
                    }
                    if V4.write(packet, &mut out).is_err() {
                        return End::Closed;
                    }
                    next = match parse(&mut buf, max_packet) {
                        Ok(next) => next,
                        Err(e) => return End::Violation(format!("malformed packet: {e}")),
                    };
                }
                if up_write.write_all(&out).await.is_err() {
                    return End::Closed;
                }
            }
        };
        let end = tokio::select! {
            end = up => end,
            () = down => End::Closed,
            () = cut.cancelled() => {
                let dismissed = dismissed.lock().expect("dismissed lock").take();
                match dismissed {
                    _ if stop.is_cancelled() => End::Stopping,
                    Some(reason) => End::Dismissed(reason),
                    None => End::Revoked,
                }
            }
        };
        self.sessions.lock().expect("sessions lock").remove(&id);
        match end {
            End::Violation(attempt) => self.report(Audit::Violation {
                identity: identity.clone(),
                attempt,
            }),
            End::Revoked => self.report(Audit::Revoked {
                identity: identity.clone(),
                serial: to_hex(&serial),
            }),
            End::Dismissed(reason) => self.report(Audit::Dismissed {
                identity: identity.clone(),
                reason,
            }),
            End::Closed | End::Stopping => {}
        }
        self.report(Audit::Disconnected { identity });
    }
}

/// What a device may not send: anything outside its topics, or a second CONNECT.
fn forbidden(identity: &Identity, packet: &Packet) -> Option<String> {
    match packet {
        Packet::Publish(publish, _) => {
            let topic = String::from_utf8_lossy(&publish.topic);
            (!may_publish(identity, &topic)).then(|| format!("publish {topic}"))
        }
        Packet::Subscribe(subscribe, _) => subscribe
            .filters
            .iter()
            .find(|filter| !may_subscribe(identity, &filter.path))
            .map(|filter| format!("subscribe {}", filter.path)),
        Packet::Connect(..) => Some("a second CONNECT".into()),
        Packet::ConnAck(..) | Packet::SubAck(..) | Packet::UnsubAck(..) | Packet::PingResp(..) => {
            Some(format!("{} from a client", name(packet)))
        }
        _ => None,
    }
}

fn name(packet: &Packet) -> &'static str {
    match packet {
        Packet::Connect(..) => "CONNECT",
        Packet::ConnAck(..) => "CONNACK",
        Packet::Publish(..) => "PUBLISH",
        Packet::PubAck(..) => "PUBACK",
        Packet::PingReq(..) => "PINGREQ",
        Packet::PingResp(..) => "PINGRESP",
        Packet::Subscribe(..) => "SUBSCRIBE",
        Packet::SubAck(..) => "SUBACK",
        Packet::PubRec(..) => "PUBREC",
        Packet::PubRel(..) => "PUBREL",
        Packet::PubComp(..) => "PUBCOMP",
        Packet::Unsubscribe(..) => "UNSUBSCRIBE",
        Packet::UnsubAck(..) => "UNSUBACK",
        Packet::Disconnect(..) => "DISCONNECT",
    }
}

/// One complete packet from `buf`, if there is one.
fn parse(buf: &mut BytesMut, max: usize) -> Result<Option<Packet>, rumqttd::protocol::Error> {
    match V4.read_mut(buf, max) {
        Ok(packet) => Ok(Some(packet)),
        Err(rumqttd::protocol::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads until one complete packet is in `buf`; `None` at a clean end of stream.
async fn read_packet(
    reader: &mut (impl AsyncRead + Unpin),
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Packet>, rumqttd::protocol::Error> {
    loop {
        if let Some(packet) = parse(buf, max)? {
            return Ok(Some(packet));
        }
        match reader.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}

/// Answers a CONNECT with a refusal (MQTT 3.1.1 §3.2.2.3) and closes.
async fn refuse_connect(
    writer: &mut (impl tokio::io::AsyncWrite + Unpin),
    code: ConnectReturnCode,
) {
    let mut out = BytesMut::with_capacity(4);
    let connack = ConnAck {
        session_present: false,
        code,
    };
    if V4.write(Packet::ConnAck(connack, None), &mut out).is_ok() {
        let _ = writer.write_all(&out).await;
    }
    let _ = writer.shutdown().await;
}
