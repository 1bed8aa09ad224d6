//! What the gateway writes down — its log at debug level and its data directory — never holds a
//! recipient's address or a code, even while a message fails and is retried.

use crate::process::{binary, issue_token, write_deployment};
use axum::body::Bytes;
use lockergrid_gateway::notifications::webhook::Secrets;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const EMAIL: &str = "robin.private@example.com";
const PHONE: &str = "+31655501234";

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            found.push(path.display().to_string());
        }
    }
    found
}

#[tokio::test]
async fn neither_the_log_nor_the_data_directory_holds_an_address_or_a_code() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_deployment(dir.path(), 1, 8);
    let secret = Secrets::generate();
    std::fs::write(dir.path().join("app.whsec"), format!("{secret}\n"))?;
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str(
        "[notifications]\nretry_base = \"10ms\"\nretry_max = \"20ms\"\nattempts_per_step = 3\n\
         [notifications.push]\nsecret_file = \"app.whsec\"\n",
    );
    std::fs::write(&config, text)?;

    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let app = format!("http://{}/hooks/robin-7f3a", listener.local_addr()?);
    let seen = bodies.clone();
    let router = axum::Router::new().fallback(move |body: Bytes| {
        let seen = seen.clone();
        async move {
            if let Ok(v) = serde_json::from_slice(&body) {
                seen.lock().expect("bodies").push(v);
            }
            axum::http::StatusCode::NO_CONTENT
        }
    });
    tokio::spawn(async move { axum::serve(listener, router).await });

    let log = dir.path().join("gateway.log");
    let mut child = Command::new(binary())
        .args(["gateway", "--config"])
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "debug,rumqttd=off")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = loop {
        let line = lines
            .next_line()
            .await?
            .expect("the gateway says where it listens");
        if let Some(addr) = line.strip_prefix("lockergrid gateway listening on ") {
            break addr.trim().to_owned();
        }
    };
    let token = issue_token(&config, "checkout", &[]).await?;
    let http = reqwest::Client::new();
    // One customer the app reaches, one whose endpoint refuses connections: retried, then dead.
    for (n, url) in [
        (1, app.clone()),
        (2, "http://127.0.0.1:9/hooks/robin-7f3a".to_owned()),
    ] {
        let body = json!({
            "order_id": format!("order-{n}"),
            "station_id": "st-0",
            "parcel": { "length_mm": 200, "width_mm": 150, "height_mm": 100, "weight_g": 500 },
            "recipient": { "id": format!("robin-{n}"), "channels": ["push"],
                           "contact": { "email": EMAIL, "phone": PHONE, "app_url": url } },
        });
        let response = http
            .post(format!("{base}/v1/returns"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(response.status() == 201, "{}", response.text().await?);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let code = loop {
        let code = bodies
            .lock()
            .expect("bodies")
            .iter()
            .find_map(|b| b["data"]["code"].as_str().map(str::to_owned));
        if let Some(code) = code {
            break code;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no code delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The refused endpoint's message: its attempts and the dead letter are in the log.
    loop {
        let written = std::fs::read_to_string(&log)?;
        if written.contains("notification is a dead letter") {
            break;
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no dead letter logged"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.start_kill()?;
    child.wait().await?;

    let written = std::fs::read_to_string(&log)?;
    assert!(written.len() > 1_000, "the debug log says something");
    for secret in [EMAIL, PHONE, "robin-7f3a", code.as_str()] {
        assert!(!written.contains(secret), "{secret} in the log");
        let found = files_containing(&dir.path().join("data"), secret.as_bytes());
        assert!(found.is_empty(), "{secret} in {found:?}");
    }
    Ok(())
}
