//! Device-plane benchmarks.
//!
//! 7. Code entry → door unlocked through the full path: a code typed on a simulated locker's
//!    keypad, the shim's event over TLS 1.3, the front and the embedded broker, the gateway's
//!    code check and site-rules plugin, the signed unlock back down the same way, the shim's gate
//!    and the latch.
//! 8. Telemetry ingest over TLS 1.3 with client certificates: the same lockers publishing the same
//!    heartbeats through the node's TLS front and embedded broker (received on the node's local
//!    link), and through Debian's mosquitto with the same CA, certificates, revocation list and
//!    TLS version (received by a subscriber over TLS), in the same run.

use crate::latency::Report;
use lockergrid_device_plane::{Admit, CertificateAuthority, Identity, Kind};
use lockergrid_device_plane::{DeviceOptions, DevicePlane, Notification};
use lockergrid_firmware_shim::tls::client_config;
use lockergrid_gateway::simulated::SimulatedLocker;
use lockergrid_protocol::message::{MESSAGE_VERSION, TelemetryMessage};
use lockergrid_protocol::{CompartmentId, LockerId, ParcelId, PickupCode, Timestamp};
use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, TlsConfiguration, Transport,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The code-entry benchmark: `n` pickups, one after another, at a station with a simulated locker.
pub async fn code_to_unlock(n: usize) -> anyhow::Result<Report> {
    let d = lockergrid_tests::Deployment::new()
        .station("bench-a", 1_000)
        .lockers(Duration::from_secs(5))
        .start()
        .await?;
    let pickups = d.stock(&["bench-a"], n).await?;
    let (latencies, elapsed) = timed_pickups(&d.lockers[0], pickups).await?;
    d.stop().await?;
    Ok(Report::new(
        "code entry → door unlocked, full path over TLS, loopback (one at a time)",
        latencies,
        elapsed,
    ))
}

/// One pickup at a time at `locker`: the code typed on the keypad, the time until that
/// compartment's latch is released (the simulated hardware polled every 50 µs), then the door
/// opened and closed. The latencies and the time for all of them.
pub async fn timed_pickups(
    locker: &SimulatedLocker,
    pickups: Vec<(ParcelId, PickupCode, CompartmentId)>,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let mut latencies = Vec::with_capacity(pickups.len());
    let started = Instant::now();
    for (_, code, compartment) in pickups {
        let sim = locker.hardware.clone();
        let took = tokio::task::spawn_blocking(move || -> anyhow::Result<Duration> {
            let t0 = Instant::now();
            sim.lock()
                .expect("sim")
                .press(&format!("{}#", code.reveal()))?;
            let deadline = t0 + Duration::from_secs(10);
            while !sim.lock().expect("sim").unlatched().contains(&compartment) {
                anyhow::ensure!(Instant::now() < deadline, "{compartment} never unlatched");
                std::thread::sleep(Duration::from_micros(50));
            }
            let took = t0.elapsed();
            let mut sim = sim.lock().expect("sim");
            sim.open_door(&compartment)?;
            sim.close_door(&compartment)?;
            Ok(took)
        })
        .await??;
        latencies.push(took);
    }
    Ok((latencies, started.elapsed()))
}

/// A CA, a node certificate and `lockers` locker certificates (plus one edge certificate for
/// mosquitto's subscriber) in `dir`.
struct Pki {
    dir: PathBuf,
    lockers: Vec<String>,
    /// What a node's registry would admit: each locker with its certificate.
    admitted: Vec<(Identity, Admit)>,
}

impl Pki {
    fn create(dir: &Path, lockers: usize) -> anyhow::Result<Pki> {
        let pki = dir.join("pki");
        let mut ca = CertificateAuthority::create(&pki, "bench CA")?;
        ca.issue(
            &Identity::new(Kind::Node, "bench-node")?,
            &["127.0.0.1".into(), "localhost".into()],
            30,
        )?
        .write_to(&dir.join("node"), "node", ca.ca_pem())?;
        ca.issue(&Identity::new(Kind::Edge, "bench-consumer")?, &[], 30)?
            .write_to(&dir.join("consumer"), "consumer", ca.ca_pem())?;
        let mut ids = Vec::with_capacity(lockers);
        let mut admitted = Vec::with_capacity(lockers);
        for i in 0..lockers {
            let id = format!("bench-{i:03}");
            let identity = Identity::new(Kind::Locker, &id)?;
            let bundle = ca.issue(&identity, &[], 30)?;
            bundle.write_to(&dir.join("lockers").join(&id), &id, ca.ca_pem())?;
            admitted.push((identity, Admit::Serial(bundle.issued.serial)));
            ids.push(id);
        }
        ca.publish_crl()?;
        Ok(Pki {
            dir: dir.to_owned(),
            lockers: ids,
            admitted,
        })
    }

    fn client(&self, id: &str, folder: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
        Ok(client_config(
            &folder.join("ca.pem"),
            &folder.join(format!("{id}.pem")),
            &folder.join(format!("{id}.key.pem")),
        )?)
    }
}

/// A client over TLS with TCP_NODELAY, as the shim connects.
fn client(id: &str, addr: SocketAddr, tls: Arc<rustls::ClientConfig>) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls)));
    options.set_keep_alive(Duration::from_secs(30));
    options.set_max_packet_size(64 * 1024, 64 * 1024);
    let (client, mut events) = AsyncClient::new(options, 1_024);
    let mut network = events.network_options();
    network.set_tcp_nodelay(true);
    events.set_network_options(network);
    (client, events)
}

fn heartbeat(locker: &str, seq: u64, from: Timestamp) -> anyhow::Result<Vec<u8>> {
    let message = TelemetryMessage {
        v: MESSAGE_VERSION,
        locker: LockerId::new(locker)?,
        seq,
        at: Timestamp(from.millis() + seq),
        firmware: "0.1.0".into(),
        on_trial: false,
        mains: true,
        battery_percent: 97,
        tamper: false,
        out_of_service: false,
        doors_open: vec![CompartmentId::new(format!("{locker}:S001"))?],
        temperatures: vec![(CompartmentId::new(format!("{locker}:S001"))?, 21.5)],
        queued_events: 0,
        last_counter: 0,
    };
    Ok(serde_json::to_vec(&message)?)
}

/// Every locker connects over TLS, then all publish `per_locker` heartbeats at QoS 1 as fast as
/// their connection allows; returns once each has its acknowledgements.
async fn publish_all(pki: &Pki, addr: SocketAddr, per_locker: usize) -> anyhow::Result<()> {
    let lockers = pki
        .lockers
        .iter()
        .map(|id| {
            Ok((
                id.clone(),
                pki.client(id, &pki.dir.join("lockers").join(id))?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    publish_heartbeats(&lockers, addr, per_locker, Timestamp(1_796_083_200_000)).await
}

/// `lockers` (id and TLS configuration each) connect to `addr`, then all publish `per_locker`
/// heartbeats at QoS 1, taken from `from` a millisecond apart, as fast as their connection
/// allows; returns once each has its acknowledgements.
pub async fn publish_heartbeats(
    lockers: &[(String, Arc<rustls::ClientConfig>)],
    addr: SocketAddr,
    per_locker: usize,
    from: Timestamp,
) -> anyhow::Result<()> {
    let mut ready = Vec::new();
    for (id, tls) in lockers {
        let (client, mut events) = client(id, addr, tls.clone());
        loop {
            match events.poll().await? {
                Event::Incoming(Packet::ConnAck(_)) => break,
                _ => continue,
            }
        }
        ready.push((id.clone(), client, events));
    }
    let mut publishers = tokio::task::JoinSet::new();
    for (id, client, mut events) in ready {
        publishers.spawn(async move {
            let topic = format!("lockers/{id}/telemetry");
            let sender = tokio::spawn(async move {
                for seq in 0..per_locker {
                    let payload = heartbeat(&id, seq as u64, from)?;
                    client
                        .publish(&topic, QoS::AtLeastOnce, false, payload)
                        .await?;
                }
                anyhow::Ok(client)
            });
            let mut acked = 0;
            while acked < per_locker {
                if let Event::Incoming(Packet::PubAck(_)) = events.poll().await? {
                    acked += 1;
                }
            }
            let client = sender.await??;
            client.disconnect().await?;
            anyhow::Ok(())
        });
    }
    while let Some(done) = publishers.join_next().await {
        done??;
    }
    Ok(())
}

/// Waits until `received` reaches `total` or stops growing for 5 s.
async fn settle(received: &AtomicUsize, total: usize) -> usize {
    let mut last = (0, Instant::now());
    loop {
        let now = received.load(Ordering::Relaxed);
        if now >= total {
            return now;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(5) {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// Telemetry ingest through the node's TLS front and embedded broker, received on its local link.
pub async fn telemetry_embedded(lockers: usize, per_locker: usize) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let pki = Pki::create(dir.path(), lockers)?;
    let node = dir.path().join("node");
    let options = DeviceOptions::new(
        "127.0.0.1:0".parse()?,
        dir.path().join("pki"),
        node.join("node.pem"),
        node.join("node.key.pem"),
    );
    options.admission.replace(pki.admitted.clone());
    let (plane, mut link) = DevicePlane::start(options).await?;
    link.tx.subscribe("lockers/+/telemetry")?;
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let consumer = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = link.audit.recv() => {}
                next = link.rx.next() => match next {
                    Ok(Some(Notification::Forward(_))) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Some(Notification::Unschedule)) => {
                        if link.rx.wake().await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                },
            }
        }
    });
    let total = lockers * per_locker;
    let started = Instant::now();
    publish_all(&pki, plane.addr(), per_locker).await?;
    let got = settle(&received, total).await;
    let elapsed = started.elapsed();
    consumer.abort();
    drop(plane);
    Ok(ingest_report(
        format!("telemetry ingest, Lockergrid front + embedded rumqttd ({lockers} lockers)"),
        got,
        total,
        elapsed,
    ))
}

fn ingest_report(name: String, got: usize, total: usize, elapsed: Duration) -> Report {
    let name = if got < total {
        format!("{name}; {} of {total} lost", total - got)
    } else {
        name
    };
    Report {
        name,
        ops: got,
        per_second: got as f64 / elapsed.as_secs_f64(),
        p50: Duration::ZERO,
        p99: Duration::ZERO,
    }
}

/// The same load through Debian's mosquitto with the same CA, certificates, revocation list and
/// TLS version, received by a subscriber over TLS. `None` when mosquitto is not installed.
pub async fn telemetry_mosquitto(
    lockers: usize,
    per_locker: usize,
) -> anyhow::Result<Option<Report>> {
    let binary = Path::new("/usr/sbin/mosquitto");
    if !binary.exists() {
        return Ok(None);
    }
    let dir = tempfile::tempdir()?;
    let pki = Pki::create(dir.path(), lockers)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let acl = dir.path().join("acl");
    std::fs::write(
        &acl,
        "user bench-consumer\ntopic read lockers/#\n\npattern write lockers/%u/telemetry\npattern write lockers/%u/events\npattern write lockers/%u/acks\npattern read lockers/%u/commands\n",
    )?;
    let node = dir.path().join("node");
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "user root\nper_listener_settings false\nallow_anonymous false\nacl_file {acl}\nmax_queued_messages 0\nmax_inflight_messages 0\n\
             listener {port} 127.0.0.1\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\ncrlfile {crl}\n\
             require_certificate true\nuse_identity_as_username true\ntls_version tlsv1.3\nset_tcp_nodelay true\n",
            acl = acl.display(),
            ca = dir.path().join("pki/ca.pem").display(),
            cert = node.join("node.pem").display(),
            key = node.join("node.key.pem").display(),
            crl = dir.path().join("pki/crl.pem").display(),
        ),
    )?;
    let mut broker = tokio::process::Command::new(binary)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        anyhow::ensure!(Instant::now() < deadline, "mosquitto did not listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tls = pki.client("consumer", &dir.path().join("consumer"))?;
    let (consumer, mut events) = client("bench-consumer", addr, tls);
    consumer
        .subscribe("lockers/+/telemetry", QoS::AtLeastOnce)
        .await?;
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = events.poll().await? {
            break;
        }
    }
    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let reader = tokio::spawn(async move {
        while let Ok(event) = events.poll().await {
            if let Event::Incoming(Packet::Publish(_)) = event {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let total = lockers * per_locker;
    let started = Instant::now();
    publish_all(&pki, addr, per_locker).await?;
    let got = settle(&received, total).await;
    let elapsed = started.elapsed();
    reader.abort();
    broker.kill().await?;
    Ok(Some(ingest_report(
        format!("telemetry ingest, mosquitto 2.0 ({lockers} lockers, subscriber over TLS)"),
        got,
        total,
        elapsed,
    )))
}
