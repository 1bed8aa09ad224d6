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
    let text = d
        .http
        .get(format!("{}/metrics", d.base))
        .send()
        .await?
        .text()
        .await?;
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
