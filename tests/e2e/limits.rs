//! The tower layers: excess load is shed with 503 and `Retry-After` instead of queueing, and a
//! request that takes too long is answered 503 too.

use lockergrid_gateway::api::Limits;
use lockergrid_gateway::auth::Role;
use lockergrid_tests::{Deployment, Running};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Opens a request whose body never finishes arriving, so its handler holds a slot.
async fn stalled_request(d: &Running, token: &str) -> anyhow::Result<TcpStream> {
    let addr = d.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await?;
    let head = format!(
        "POST /v1/reservations HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         idempotency-key: slow\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"order"
    );
    stream.write_all(head.as_bytes()).await?;
    Ok(stream)
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_are_shed_with_503_and_retry_after()
-> anyhow::Result<()> {
    let limits = Limits {
        max_in_flight: 1,
        request_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let d = Deployment::new()
        .station("st-a", 30)
        .limits(limits)
        .start()
        .await?;
    let token = d.token("shop", Role::Checkout, &[])?;
    let _slow = stalled_request(&d, &token).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = d.http.get(format!("{}/healthz", d.base)).send().await?;
        if response.status() == 503 {
            assert!(response.headers().contains_key("retry-after"));
            let body: serde_json::Value = response.json().await?;
            assert_eq!(body["type"], "urn:lockergrid:problem:overloaded");
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "never shed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_request_over_the_time_limit_is_answered_503() -> anyhow::Result<()> {
    let limits = Limits {
        max_in_flight: 16,
        request_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let d = Deployment::new()
        .station("st-a", 30)
        .limits(limits)
        .start()
        .await?;
    let token = d.token("shop", Role::Checkout, &[])?;
    let mut slow = stalled_request(&d, &token).await?;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        use tokio::io::AsyncReadExt;
        let mut buf = [0u8; 1024];
        loop {
            let n = slow.read(&mut buf).await?;
            answer.extend_from_slice(&buf[..n]);
            if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                return anyhow::Ok(());
            }
        }
    })
    .await;
    read??;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
    Ok(())
}

/// The series `/metrics` holds: its lines that are not comments.
async fn series(d: &Running) -> anyhow::Result<usize> {
    let text = d.metrics().await?;
    Ok(text.lines().filter(|l| !l.starts_with('#')).count())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_methods_and_paths_add_no_metric_series() -> anyhow::Result<()> {
    const CLIENTS: u64 = 32;
    const REQUESTS: u64 = 100_000;
    let d = Deployment::new().station("st-a", 30).start().await?;
    // One of each kind of answer first, so every series that can exist does.
    let send = |n: u64| {
        let method = reqwest::Method::from_bytes(format!("M{n}").as_bytes()).expect("a token");
        d.http
            .request(method, format!("{}/no/such/{n}", d.base))
            .send()
    };
    for n in 0..8 {
        send(n).await?;
        d.http.get(format!("{}/no/such/{n}", d.base)).send().await?;
    }
    // Reading /metrics is a request too: read it once so its own series exist.
    series(&d).await?;
    let before = series(&d).await?;
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..CLIENTS {
        let (http, base) = (d.http.clone(), d.base.clone());
        clients.spawn(async move {
            for i in 0..REQUESTS / CLIENTS {
                let n = client * REQUESTS + i;
                let method = reqwest::Method::from_bytes(format!("X{n:x}").as_bytes())?;
                http.request(method, format!("{base}/{n:x}/{i}"))
                    .send()
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = clients.join_next().await {
        done??;
    }
    let after = series(&d).await?;
    assert_eq!(after, before, "series grew from {before} to {after}");
    Ok(())
}

#[tokio::test]
async fn a_plugin_push_without_the_operator_role_is_refused_before_its_body_is_read()
-> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let d = Deployment::new().station("st-a", 30).start().await?;
    let token = d.token("shop", Role::Checkout, &[])?;
    let addr = d.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await?;
    // An 11 MiB body announced, 1 KiB of it sent: the answer must come without the rest.
    let head = format!(
        "POST /v1/admin/plugins HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        11 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&[b' '; 1024]).await?;
    let mut answer = vec![0; 4096];
    let n = stream.read(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("role checkout may not call"), "{answer}");
    Ok(())
}

/// The descriptors this process has open.
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count())
}

/// The soft limit on open files of this process (the test and the gateway share it).
fn open_file_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse().ok()
        })
        .unwrap_or(1_024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_sockets_leave_health_and_device_handshakes_answering()
-> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let limits = Limits {
        max_connections: 256,
        ..Limits::default()
    };
    let d = Deployment::new()
        .station("st-a", 30)
        .limits(limits)
        .start()
        .await?;
    // 5,000 sockets that never send a request, as many as this process may hold beside the
    // gateway's own connections.
    let idle_count = 5_000.min(open_file_limit().saturating_sub(limits.max_connections + 600));
    let addr = d.base.trim_start_matches("http://").to_owned();
    let before = open_files();
    let mut idle = Vec::with_capacity(idle_count);
    for n in 0..idle_count {
        let mut stream = TcpStream::connect(&addr).await?;
        if n % 2 == 0 {
            // Half of them send half a request head.
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
                .await?;
        }
        idle.push(stream);
    }
    let started = std::time::Instant::now();
    let health = d.http.get(format!("{}/healthz", d.base)).send().await?;
    let health_took = started.elapsed();
    assert_eq!(health.status(), 200);
    // The device listener still answers a TLS handshake (a TLS 1.2 hello, refused with an
    // alert: it read and answered it).
    let started = std::time::Instant::now();
    let mut device = TcpStream::connect(d.gateway.devices_addr).await?;
    let mut hello = vec![0x03, 0x03];
    hello.extend_from_slice(&[0x42; 32]);
    hello.extend_from_slice(&[0, 0x00, 0x02, 0xc0, 0x2f, 0x01, 0x00]);
    let mut record = vec![0x16, 0x03, 0x01, 0, hello.len() as u8 + 4, 0x01, 0, 0];
    record.push(hello.len() as u8);
    record.extend_from_slice(&hello);
    device.write_all(&record).await?;
    let mut answer = [0u8; 1];
    device.read_exact(&mut answer).await?;
    let device_took = started.elapsed();
    assert_eq!(answer[0], 0x15, "an alert record");
    println!(
        "{idle_count} idle sockets: /healthz answered in {health_took:?}, the device listener in {device_took:?}"
    );
    // The gateway holds no more than its limit of them: this process's descriptors are the
    // clients' sockets and at most that many of the gateway's (it closes the ones it evicts).
    let bound = before + idle_count + limits.max_connections + 16;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while open_files() > bound {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "{} descriptors open, more than {bound}",
            open_files()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(idle);
    Ok(())
}

#[tokio::test]
async fn a_connection_that_sends_no_request_head_in_time_is_closed() -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt;
    let limits = Limits {
        header_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let d = Deployment::new()
        .station("st-a", 30)
        .limits(limits)
        .start()
        .await?;
    let addr = d.base.trim_start_matches("http://").to_owned();
    // Half a head, then nothing: the gateway closes the connection (the read sees its end).
    let mut slow = TcpStream::connect(&addr).await?;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        .await?;
    let mut rest = Vec::new();
    let bounded = Duration::from_secs(30);
    tokio::time::timeout(bounded, slow.read_to_end(&mut rest)).await??;
    // A kept-alive connection idle after its answer is closed the same way.
    let mut kept = TcpStream::connect(&addr).await?;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await?;
    let mut answer = Vec::new();
    tokio::time::timeout(bounded, kept.read_to_end(&mut answer)).await??;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    Ok(())
}
