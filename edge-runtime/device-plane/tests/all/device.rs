//! The device plane over real TLS sockets: a CA and certificates made by the deployment's PKI in
//! a temporary directory, the embedded broker, the front, and rumqttc clients with the shim's TLS
//! configuration.

use lockergrid_device_plane::{Admission, Admit};
use lockergrid_device_plane::{Audit, DeviceOptions, DevicePlane, NodeLink, Notification};
use lockergrid_device_plane::{CertificateAuthority, Identity, Kind};
use lockergrid_firmware_shim::tls::client_config;
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS,
    TlsConfiguration, Transport,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

struct Plane {
    dir: TempDir,
    ca: CertificateAuthority,
    plane: DevicePlane,
    link: NodeLink,
    /// Who the front admits, as a node's registry would say.
    admission: Arc<Admission>,
    admitted: Vec<(Identity, Admit)>,
}

fn pki_dir(dir: &TempDir) -> PathBuf {
    dir.path().join("pki")
}

/// A CA, a node certificate for 127.0.0.1 and a running device plane that rereads the
/// revocation list every 200 ms.
async fn plane() -> Plane {
    let dir = TempDir::new().unwrap();
    let mut ca = CertificateAuthority::create(&pki_dir(&dir), "test device CA").unwrap();
    let node = ca
        .issue(
            &Identity::new(Kind::Node, "gateway").unwrap(),
            &["127.0.0.1".into(), "localhost".into()],
            30,
        )
        .unwrap();
    node.write_to(&dir.path().join("node"), "node", ca.ca_pem())
        .unwrap();
    let mut options = DeviceOptions::new(
        "127.0.0.1:0".parse().unwrap(),
        pki_dir(&dir),
        dir.path().join("node/node.pem"),
        dir.path().join("node/node.key.pem"),
    );
    options.crl_poll = Duration::from_millis(200);
    let admission = options.admission.clone();
    let (plane, link) = DevicePlane::start(options).await.unwrap();
    Plane {
        dir,
        ca,
        plane,
        link,
        admission,
        admitted: Vec::new(),
    }
}

impl Plane {
    /// Issues a certificate for `kind`/`id`, writes it under `<tmp>/devices/{id}` and admits
    /// it: a locker with exactly this certificate, an edge node with any.
    fn device(&mut self, kind: Kind, id: &str) -> PathBuf {
        let (out, serial) = self.unadmitted(kind, id, id);
        let admit = match kind {
            Kind::Locker => Admit::Serial(serial),
            _ => Admit::AnyCertificate,
        };
        self.admit(Identity::new(kind, id).unwrap(), admit);
        out
    }

    /// Issues a certificate for `kind`/`id` under `<tmp>/devices/{dir}` without admitting it;
    /// the directory and the serial.
    fn unadmitted(&mut self, kind: Kind, id: &str, dir: &str) -> (PathBuf, String) {
        let out = self.dir.path().join("devices").join(dir);
        let bundle = self
            .ca
            .issue(&Identity::new(kind, id).unwrap(), &[], 30)
            .unwrap();
        bundle.write_to(&out, id, self.ca.ca_pem()).unwrap();
        (out, bundle.issued.serial)
    }

    /// Admits `identity` with `admit` from now on, replacing what it had.
    fn admit(&mut self, identity: Identity, admit: Admit) {
        self.admitted.retain(|(i, _)| *i != identity);
        self.admitted.push((identity, admit));
        self.admission.replace(self.admitted.clone());
    }

    /// Admits `id` no more.
    fn dismiss(&mut self, kind: Kind, id: &str) {
        let identity = Identity::new(kind, id).unwrap();
        self.admitted.retain(|(i, _)| *i != identity);
        self.admission.replace(self.admitted.clone());
    }

    /// The next audit record that is not a plain connect or disconnect.
    async fn notable(&mut self) -> Audit {
        loop {
            let audit = tokio::time::timeout(Duration::from_secs(10), self.link.audit.recv())
                .await
                .expect("an audit record within 10 s")
                .expect("audit stream open");
            if !matches!(audit, Audit::Connected { .. } | Audit::Disconnected { .. }) {
                return audit;
            }
        }
    }
}

fn client(addr: SocketAddr, client_id: &str, files: &Path, name: &str) -> (AsyncClient, EventLoop) {
    let config = client_config(
        &files.join("ca.pem"),
        &files.join(format!("{name}.pem")),
        &files.join(format!("{name}.key.pem")),
    )
    .unwrap();
    let mut options = MqttOptions::new(client_id, "127.0.0.1", addr.port());
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    options.set_keep_alive(Duration::from_secs(30));
    AsyncClient::new(options, 64)
}

/// Polls until CONNACK; the error if the connection fails first.
async fn connected(events: &mut EventLoop) -> Result<(), ConnectionError> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), events.poll())
            .await
            .expect("the connection settles within 10 s")?
        {
            Event::Incoming(Packet::ConnAck(_)) => return Ok(()),
            _ => continue,
        }
    }
}

/// Polls until the connection fails, returning how long that took.
async fn until_dropped(events: &mut EventLoop) -> Duration {
    let start = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(15), events.poll())
            .await
            .expect("the session ends within 15 s")
        {
            Ok(_) => continue,
            Err(_) => return start.elapsed(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_talks_to_the_node_on_its_own_topics() {
    let mut plane = plane().await;
    let files = plane.device(Kind::Locker, "ams-zuid");
    plane
        .link
        .tx
        .subscribe("lockers/+/events")
        .expect("node subscribes");
    let (device, mut events) = client(plane.plane.addr(), "ams-zuid", &files, "ams-zuid");
    connected(&mut events)
        .await
        .expect("a valid device connects");
    let connected_audit = plane.link.audit.recv().await.unwrap();
    assert!(
        matches!(&connected_audit, Audit::Connected { identity, .. } if identity.id == "ams-zuid"),
        "{connected_audit:?}"
    );
    device
        .subscribe("lockers/ams-zuid/commands", QoS::AtLeastOnce)
        .await
        .unwrap();
    device
        .publish(
            "lockers/ams-zuid/events",
            QoS::AtLeastOnce,
            false,
            "door-closed",
        )
        .await
        .unwrap();
    let driver = tokio::spawn(async move {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::Publish(publish))) => return publish,
                Ok(_) => continue,
                Err(e) => panic!("device connection failed: {e}"),
            }
        }
    });
    // The event reaches the node over the local link.
    let forwarded = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Notification::Forward(forward)) = plane.link.rx.next().await.unwrap() {
                return forward.publish;
            }
        }
    })
    .await
    .expect("the event reaches the node");
    assert_eq!(&forwarded.topic[..], b"lockers/ams-zuid/events");
    assert_eq!(&forwarded.payload[..], b"door-closed");
    // A command from the node reaches the device (retry until its subscription is in place).
    let command = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            plane
                .link
                .tx
                .publish("lockers/ams-zuid/commands", "unlock")
                .unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
            if driver.is_finished() {
                return driver.await.unwrap();
            }
        }
    })
    .await
    .expect("the command reaches the device");
    assert_eq!(command.topic, "lockers/ams-zuid/commands");
    assert_eq!(&command.payload[..], b"unlock");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_without_a_valid_certificate_are_refused() {
    let mut plane = plane().await;
    let addr = plane.plane.addr();

    // Another deployment's CA: the certificate does not chain.
    let other_dir = TempDir::new().unwrap();
    let mut other = CertificateAuthority::create(other_dir.path(), "someone else's CA").unwrap();
    let foreign = other_dir.path().join("foreign");
    other
        .issue(&Identity::new(Kind::Locker, "ams-zuid").unwrap(), &[], 30)
        .unwrap()
        .write_to(&foreign, "ams-zuid", other.ca_pem())
        .unwrap();
    // Trust our node's CA, present the foreign certificate.
    std::fs::copy(pki_dir(&plane.dir).join("ca.pem"), foreign.join("ca.pem")).unwrap();
    let (_c, mut events) = client(addr, "ams-zuid", &foreign, "ams-zuid");
    assert!(connected(&mut events).await.is_err(), "foreign CA refused");
    assert!(
        matches!(plane.notable().await, Audit::Refused { identity: None, reason, .. } if reason.contains("handshake"))
    );

    // No certificate at all.
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates({
        let mut roots = rustls::RootCertStore::empty();
        let ca = std::fs::read(pki_dir(&plane.dir).join("ca.pem")).unwrap();
        use rustls_pki_types::pem::PemObject;
        roots
            .add(rustls_pki_types::CertificateDer::from_pem_slice(&ca).unwrap())
            .unwrap();
        roots
    })
    .with_no_client_auth();
    let mut options = MqttOptions::new("ams-zuid", "127.0.0.1", addr.port());
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        std::sync::Arc::new(config),
    )));
    let (_c, mut events) = AsyncClient::new(options, 8);
    assert!(
        connected(&mut events).await.is_err(),
        "no certificate refused"
    );
    assert!(matches!(
        plane.notable().await,
        Audit::Refused { identity: None, .. }
    ));

    // A valid certificate, but the client id names someone else.
    let files = plane.device(Kind::Locker, "ams-zuid");
    let (_c, mut events) = client(addr, "dam-square", &files, "ams-zuid");
    match connected(&mut events).await {
        Err(ConnectionError::ConnectionRefused(ConnectReturnCode::BadClientId)) => {}
        other => panic!("client id mismatch: {other:?}"),
    }
    assert!(
        matches!(plane.notable().await, Audit::Refused { identity: Some(id), reason, .. } if id.id == "ams-zuid" && reason.contains("client id"))
    );

    // A node's server certificate is not a device certificate.
    let node_files = plane.dir.path().join("node");
    let (_c, mut events) = client(addr, "gateway", &node_files, "node");
    assert!(
        connected(&mut events).await.is_err(),
        "server certificate refused"
    );
    assert!(matches!(plane.notable().await, Audit::Refused { .. }));

    // A revoked certificate.
    let revoked = plane.device(Kind::Locker, "de-pijp");
    plane
        .ca
        .revoke(&Identity::new(Kind::Locker, "de-pijp").unwrap())
        .unwrap();
    // Let the front pick up the list (polled every 200 ms), then try.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_c, mut events) = client(addr, "de-pijp", &revoked, "de-pijp");
    assert!(
        connected(&mut events).await.is_err(),
        "revoked certificate refused"
    );
    assert!(matches!(plane.notable().await, Audit::Refused { .. }));

    // The valid one still connects.
    let (_c, mut events) = client(addr, "ams-zuid", &files, "ams-zuid");
    connected(&mut events)
        .await
        .expect("a valid device connects");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_what_the_registry_admits_connects_and_a_dismissed_session_is_cut_at_once() {
    let mut plane = plane().await;
    let addr = plane.plane.addr();

    // A valid certificate of the deployment's CA for a locker no registry entry names.
    let (stray, _) = plane.unadmitted(Kind::Locker, "nowhere", "nowhere");
    let (_c, mut events) = client(addr, "nowhere", &stray, "nowhere");
    assert!(
        connected(&mut events).await.is_err(),
        "unregistered refused"
    );
    match plane.notable().await {
        Audit::Refused {
            identity: Some(identity),
            reason,
            ..
        } => {
            assert_eq!(identity.id, "nowhere");
            assert!(
                reason.contains("not a provisioned or active device"),
                "{reason}"
            );
        }
        other => panic!("unregistered: {other:?}"),
    }

    // A second certificate for a registered locker: the CA signed it, the registry did not.
    let files = plane.device(Kind::Locker, "ams-zuid");
    let (copy, _) = plane.unadmitted(Kind::Locker, "ams-zuid", "ams-zuid-copy");
    let (_c, mut events) = client(addr, "ams-zuid", &copy, "ams-zuid");
    assert!(
        connected(&mut events).await.is_err(),
        "other certificate refused"
    );
    match plane.notable().await {
        Audit::Refused { reason, .. } => {
            assert!(reason.contains("is not the one"), "{reason}");
        }
        other => panic!("other certificate: {other:?}"),
    }

    // The provisioned one connects; dismissed from the registry, its session is cut at once.
    let (device, mut events) = client(addr, "ams-zuid", &files, "ams-zuid");
    connected(&mut events)
        .await
        .expect("the provisioned certificate connects");
    device
        .subscribe("lockers/ams-zuid/commands", QoS::AtLeastOnce)
        .await
        .unwrap();
    let dismissed_at = Instant::now();
    plane.dismiss(Kind::Locker, "ams-zuid");
    let took = until_dropped(&mut events).await;
    assert!(
        dismissed_at.elapsed() <= Duration::from_secs(5),
        "session lived {took:?} after it was dismissed"
    );
    match plane.notable().await {
        Audit::Dismissed { identity, reason } => {
            assert_eq!(identity.id, "ams-zuid");
            assert!(
                reason.contains("not a provisioned or active device"),
                "{reason}"
            );
        }
        other => panic!("dismissed: {other:?}"),
    }
    let (_c, mut events) = client(addr, "ams-zuid", &files, "ams-zuid");
    assert!(
        connected(&mut events).await.is_err(),
        "refused once dismissed"
    );
    assert!(matches!(plane.notable().await, Audit::Refused { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_connection_with_one_identity_is_reported_as_a_takeover() {
    let mut plane = plane().await;
    let addr = plane.plane.addr();
    let files = plane.device(Kind::Locker, "ams-zuid");
    let (_first, mut first) = client(addr, "ams-zuid", &files, "ams-zuid");
    connected(&mut first).await.expect("the first connects");
    let (_second, mut second) = client(addr, "ams-zuid", &files, "ams-zuid");
    connected(&mut second).await.expect("the second connects");
    match plane.notable().await {
        Audit::Takeover {
            identity,
            peer,
            previous,
        } => {
            assert_eq!(identity.id, "ams-zuid");
            assert_ne!(peer, previous);
        }
        other => panic!("takeover: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_or_subscribing_outside_its_topics_disconnects_a_device() {
    let mut plane = plane().await;
    let files = plane.device(Kind::Locker, "ams-zuid");
    let addr = plane.plane.addr();
    let attempts: [(&str, bool); 4] = [
        ("lockers/dam-square/events", true),
        ("lockers/ams-zuid/commands", true),
        ("lockers/+/commands", false),
        ("#", false),
    ];
    for (topic, publish) in attempts {
        let (device, mut events) = client(addr, "ams-zuid", &files, "ams-zuid");
        connected(&mut events).await.expect("connects");
        if publish {
            device
                .publish(topic, QoS::AtLeastOnce, false, "x")
                .await
                .unwrap();
        } else {
            device.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
        }
        until_dropped(&mut events).await;
        let verb = if publish { "publish" } else { "subscribe" };
        match plane.notable().await {
            Audit::Violation { identity, attempt } => {
                assert_eq!(identity.id, "ams-zuid");
                assert_eq!(attempt, format!("{verb} {topic}"));
            }
            other => panic!("{topic}: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_closes_a_live_session_within_five_seconds() {
    let mut plane = plane().await;
    let files = plane.device(Kind::Locker, "ams-zuid");
    let (device, mut events) = client(plane.plane.addr(), "ams-zuid", &files, "ams-zuid");
    connected(&mut events).await.expect("connects");
    device
        .subscribe("lockers/ams-zuid/commands", QoS::AtLeastOnce)
        .await
        .unwrap();
    let revoked_at = Instant::now();
    plane
        .ca
        .revoke(&Identity::new(Kind::Locker, "ams-zuid").unwrap())
        .unwrap();
    until_dropped(&mut events).await;
    let took = revoked_at.elapsed();
    assert!(
        took <= Duration::from_secs(5),
        "session lived {took:?} after revocation"
    );
    assert!(
        matches!(plane.notable().await, Audit::Revoked { identity, .. } if identity.id == "ams-zuid")
    );
}

/// What the node sees on the local link, decoded.
async fn next_publish(link: &mut NodeLink) -> (String, Vec<u8>) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Notification::Forward(forward)) = link.rx.next().await.unwrap() {
                let topic = String::from_utf8(forward.publish.topic.to_vec()).unwrap();
                return (topic, forward.publish.payload.to_vec());
            }
        }
    })
    .await
    .expect("a message within 10 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shim_executes_signed_unlocks_and_resends_events_until_acknowledged() {
    use lockergrid_firmware_shim::agent::{self, AgentOptions, Status};
    use lockergrid_firmware_shim::sim::SimLocker;
    use lockergrid_protocol::command::{Action, COMMAND_VERSION, Command, CommandKey};
    use lockergrid_protocol::message::{
        AckMessage, DeviceEvent, Downlink, EventMessage, MESSAGE_VERSION, Outcome, TelemetryMessage,
    };
    use lockergrid_protocol::{CompartmentId, LockerId, Timestamp};
    use std::sync::{Arc, Mutex};

    let mut plane = plane().await;
    let files = plane.device(Kind::Locker, "ams-zuid");
    for filter in ["lockers/+/events", "lockers/+/telemetry", "lockers/+/acks"] {
        plane.link.tx.subscribe(filter).unwrap();
    }
    let key = CommandKey::from_secret([9; 32]);
    let locker = LockerId::new("ams-zuid").unwrap();
    let door = CompartmentId::new("ams-zuid:S001").unwrap();
    let sim = Arc::new(Mutex::new(SimLocker::new([door.clone()])));
    let (status_tx, mut status) = tokio::sync::watch::channel(Status::default());
    let options = AgentOptions {
        locker: locker.clone(),
        host: "127.0.0.1".into(),
        port: plane.plane.addr().port(),
        tls: client_config(
            &files.join("ca.pem"),
            &files.join("ams-zuid.pem"),
            &files.join("ams-zuid.key.pem"),
        )
        .unwrap(),
        command_key: key.public(),
        state_dir: plane.dir.path().join("shim-state"),
        heartbeat: Duration::from_millis(200),
        clock: agent::system_clock(),
        firmware: Default::default(),
    };
    tokio::spawn(agent::run(options, sim.clone(), status_tx));

    // The first heartbeat comes once the locker is subscribed to its commands.
    let (topic, payload) = next_publish(&mut plane.link).await;
    assert_eq!(topic, "lockers/ams-zuid/telemetry");
    let telemetry: TelemetryMessage = serde_json::from_slice(&payload).unwrap();
    assert_eq!(telemetry.locker, locker);
    assert!(telemetry.mains && !telemetry.tamper);
    status.wait_for(|s| s.connected).await.unwrap();
    // Its power-on self-test comes first among its events; acknowledged, it is not sent again.
    let test: EventMessage =
        serde_json::from_slice(&next_of(&mut plane.link, "lockers/ams-zuid/events").await).unwrap();
    assert_eq!(test.event, DeviceEvent::SelfTest { failures: vec![] });
    let ack = Downlink {
        v: MESSAGE_VERSION,
        command: None,
        acked_events: vec![test.id],
        firmware: None,
    };
    plane
        .link
        .tx
        .publish(
            "lockers/ams-zuid/commands",
            serde_json::to_vec(&ack).unwrap(),
        )
        .unwrap();

    // A signed unlock is executed once; the same command again is refused.
    let now = Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64,
    );
    let unlock = Command {
        version: COMMAND_VERSION,
        locker: locker.clone(),
        compartment: door.clone(),
        action: Action::Unlock,
        id: "cmd-1".into(),
        counter: 1,
        issued_at: now,
        expires_at: Timestamp(now.0 + 60_000),
    }
    .sign(&key);
    let send = |command| {
        serde_json::to_vec(&Downlink {
            v: MESSAGE_VERSION,
            command: Some(command),
            acked_events: Vec::new(),
            firmware: None,
        })
        .unwrap()
    };
    plane
        .link
        .tx
        .publish("lockers/ams-zuid/commands", send(unlock.clone()))
        .unwrap();
    let executed = next_of(&mut plane.link, "lockers/ams-zuid/acks").await;
    let executed: AckMessage = serde_json::from_slice(&executed).unwrap();
    assert_eq!(
        (executed.command.as_str(), executed.outcome),
        ("cmd-1", Outcome::Executed)
    );
    plane
        .link
        .tx
        .publish("lockers/ams-zuid/commands", send(unlock))
        .unwrap();
    let replayed = next_of(&mut plane.link, "lockers/ams-zuid/acks").await;
    let replayed: AckMessage = serde_json::from_slice(&replayed).unwrap();
    assert!(
        matches!(replayed.outcome, Outcome::Refused { .. }),
        "{replayed:?}"
    );

    // The customer opens and closes the door; the closing names the unlock that released it.
    sim.lock().unwrap().open_door(&door).unwrap();
    sim.lock().unwrap().close_door(&door).unwrap();
    let opened: EventMessage =
        serde_json::from_slice(&next_of(&mut plane.link, "lockers/ams-zuid/events").await).unwrap();
    assert_eq!(
        opened.event,
        DeviceEvent::DoorOpened {
            compartment: door.clone(),
            unreleased: false,
        }
    );
    let closed: EventMessage =
        serde_json::from_slice(&next_of(&mut plane.link, "lockers/ams-zuid/events").await).unwrap();
    assert_eq!(
        closed.event,
        DeviceEvent::DoorClosed {
            compartment: door.clone(),
            unlocked_by: Some("cmd-1".into())
        }
    );
    // Unacknowledged, both come again (same ids) after the first backoff.
    let mut again = Vec::new();
    while again.len() < 2 {
        let event: EventMessage =
            serde_json::from_slice(&next_of(&mut plane.link, "lockers/ams-zuid/events").await)
                .unwrap();
        again.push(event.id);
    }
    assert_eq!(again, vec![opened.id.clone(), closed.id.clone()]);
    // Acknowledged, the queue empties.
    plane
        .link
        .tx
        .publish(
            "lockers/ams-zuid/commands",
            serde_json::to_vec(&Downlink {
                v: MESSAGE_VERSION,
                command: None,
                acked_events: vec![opened.id, closed.id],
                firmware: None,
            })
            .unwrap(),
        )
        .unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        status.wait_for(|s| s.queued_events == 0 && s.executed == 1 && s.refused == 1),
    )
    .await
    .expect("the queue empties")
    .unwrap();
}

/// The payload of the next message on `topic`, skipping others (heartbeats keep coming).
async fn next_of(link: &mut NodeLink, topic: &str) -> Vec<u8> {
    loop {
        let (t, payload) = next_publish(link).await;
        if t == topic {
            return payload;
        }
    }
}

/// A TLS 1.2 ClientHello (no `supported_versions` extension, one TLS 1.2 suite), as an old or
/// downgrading client sends it.
fn tls12_client_hello() -> Vec<u8> {
    let mut hello = vec![0x03, 0x03];
    hello.extend_from_slice(&[0x42; 32]);
    hello.push(0);
    hello.extend_from_slice(&[0x00, 0x02, 0xc0, 0x2f]);
    hello.extend_from_slice(&[0x01, 0x00]);
    let mut handshake = vec![0x01, 0, 0, hello.len() as u8];
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01, 0, handshake.len() as u8];
    record.extend_from_slice(&handshake);
    record
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_offering_only_tls_1_2_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut plane = plane().await;
    let mut stream = tokio::net::TcpStream::connect(plane.plane.addr())
        .await
        .unwrap();
    stream.write_all(&tls12_client_hello()).await.unwrap();
    let mut answer = [0u8; 7];
    stream.read_exact(&mut answer).await.unwrap();
    // An alert record (21), fatal (2), handshake_failure (40) or protocol_version (70): no
    // ServerHello, so nothing of TLS 1.2 is ever negotiated.
    assert_eq!(answer[0], 0x15, "{answer:?}");
    assert_eq!(answer[5], 2, "{answer:?}");
    assert!(matches!(answer[6], 40 | 70), "{answer:?}");
    assert!(
        matches!(plane.notable().await, Audit::Refused { identity: None, reason, .. } if reason.contains("handshake")),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_anonymous_connects_is_summed_up_and_a_devices_records_all_arrive() {
    use tokio::io::AsyncWriteExt;
    const FLOOD: usize = 600;
    let mut plane = plane().await;
    let addr = plane.plane.addr();
    let files = plane.device(Kind::Locker, "ams-zuid");
    let flood = tokio::spawn(async move {
        for _ in 0..FLOOD {
            let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let _ = tcp.write_all(b"not tls\r\n").await;
        }
    });
    // A real device connects in the middle of it: its record is never among the dropped.
    let (_c, mut events) = client(addr, "ams-zuid", &files, "ams-zuid");
    connected(&mut events).await.unwrap();
    flood.await.unwrap();
    let (mut records, mut refused, mut device) = (0, 0, false);
    while refused < FLOOD {
        let audit = tokio::time::timeout(Duration::from_secs(10), plane.link.audit.recv())
            .await
            .expect("every refusal is accounted for within 10 s")
            .expect("audit stream open");
        match audit {
            Audit::Refused {
                identity: None,
                reason,
                ..
            } => {
                records += 1;
                refused += match reason.split_once(" more connections without a certificate") {
                    Some((n, _)) => n.parse::<usize>().expect("a count"),
                    None => 1,
                };
            }
            Audit::Connected { identity, .. } if identity.id == "ams-zuid" => device = true,
            _ => {}
        }
    }
    assert_eq!(refused, FLOOD);
    assert!(
        records < FLOOD / 4,
        "{records} records for {FLOOD} refusals"
    );
    if !device {
        let next = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match plane.link.audit.recv().await {
                    Some(Audit::Connected { identity, .. }) if identity.id == "ams-zuid" => {
                        return;
                    }
                    Some(_) => continue,
                    None => panic!("audit stream closed"),
                }
            }
        });
        next.await.expect("the device's connect is recorded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_node_may_relay_a_lockers_largest_message_and_a_locker_may_not_exceed_its_own() {
    let mut plane = plane().await;
    let addr = plane.plane.addr();
    plane
        .link
        .tx
        .subscribe("edges/+/events")
        .expect("node subscribes");
    // A locker's message at its 64 KiB limit, wrapped by its edge node: larger than a locker
    // may send, well within an edge node's packet.
    let wrapped = format!(
        "{{\"v\":1,\"body\":{{\"relayed\":{{\"locker\":\"ams-zuid\",\"channel\":\"events\",\"message\":\"{}\"}}}}}}",
        "x".repeat(64 * 1024)
    );
    let files = plane.device(Kind::Edge, "edge-north");
    let mut options = MqttOptions::new("edge-north", "127.0.0.1", addr.port());
    let config = client_config(
        &files.join("ca.pem"),
        &files.join("edge-north.pem"),
        &files.join("edge-north.key.pem"),
    )
    .unwrap();
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (edge, mut events) = AsyncClient::new(options, 64);
    connected(&mut events)
        .await
        .expect("the edge node connects");
    edge.publish(
        "edges/edge-north/events",
        QoS::AtLeastOnce,
        false,
        wrapped.clone(),
    )
    .await
    .unwrap();
    let driver = tokio::spawn(async move { while events.poll().await.is_ok() {} });
    let forwarded = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(Notification::Forward(forward)) = plane.link.rx.next().await.unwrap() {
                return forward.publish;
            }
        }
    })
    .await
    .expect("the wrapped message reaches the node");
    assert_eq!(forwarded.payload.len(), wrapped.len());
    assert!(!driver.is_finished(), "the edge node is still connected");

    let files = plane.device(Kind::Locker, "ams-zuid");
    let mut options = MqttOptions::new("ams-zuid", "127.0.0.1", addr.port());
    let config = client_config(
        &files.join("ca.pem"),
        &files.join("ams-zuid.pem"),
        &files.join("ams-zuid.key.pem"),
    )
    .unwrap();
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(config)));
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (locker, mut events) = AsyncClient::new(options, 64);
    connected(&mut events).await.expect("the locker connects");
    locker
        .publish("lockers/ams-zuid/events", QoS::AtLeastOnce, false, wrapped)
        .await
        .unwrap();
    until_dropped(&mut events).await;
    match plane.notable().await {
        Audit::Violation { identity, attempt } => {
            assert_eq!(identity.id, "ams-zuid");
            assert!(attempt.contains("malformed packet"), "{attempt}");
        }
        other => panic!("{other:?}"),
    }
}
