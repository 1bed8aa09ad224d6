//! `kill -9` during a reservation load, twenty times: after each restart every acknowledged
//! reservation is there, and the only unacknowledged holds are requests that were in flight at
//! the kill, which their retry (same Idempotency-Key) then reports as replays.

use crate::process::{Gateway, issue_token, start_gateway, write_deployment};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KILLS: usize = 20;
const CLIENTS: usize = 8;
/// Room for the fastest load: twenty cycles of up to half a second at a few thousand holds a
/// second must never fill the stations, or a retry meets `no-capacity` instead of its hold.
const STATIONS: usize = 48;
const COMPARTMENTS: u32 = 1_000;

#[derive(Default)]
struct Tally {
    /// Reservation ids answered 201.
    acked: BTreeSet<String>,
    /// Keys sent without an answer: in flight at the kill.
    in_flight: Vec<String>,
}

/// A tiny deterministic generator; the seed is printed so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn body(key: &str, station: usize) -> Value {
    json!({
        "order_id": key,
        "parcel": { "length_mm": 200, "width_mm": 150, "height_mm": 100, "weight_g": 500 },
        "tier": "standard",
        "station_id": format!("st-{station}"),
    })
}

async fn reserve(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    key: &str,
) -> anyhow::Result<(u16, bool, Value)> {
    let station = key.bytes().map(usize::from).sum::<usize>() % STATIONS;
    let response = http
        .post(format!("{base}/v1/reservations"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&body(key, station))
        .send()
        .await?;
    let status = response.status().as_u16();
    let replayed = response.headers().contains_key("idempotent-replayed");
    Ok((status, replayed, response.json().await?))
}

/// Total compartments in state `reserved` over every station.
async fn held(http: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<u64> {
    let mut total = 0;
    for i in 0..STATIONS {
        let s: Value = http
            .get(format!("{base}/v1/stations/st-{i}"))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        for size in ["small", "medium", "large", "oversized"] {
            total += s["sizes"][size]["states"]["reserved"].as_u64().unwrap_or(0);
        }
    }
    Ok(total)
}

/// After a restart: every acknowledged hold is there, and retrying the in-flight keys accounts
/// for every hold nobody acknowledged.
async fn verify(g: &Gateway, token: &str, tally: &mut Tally) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    for id in &tally.acked {
        let r: Value = http
            .get(format!("{}/v1/reservations/{id}", g.base))
            .bearer_auth(token)
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(
            r["status"], "held",
            "acknowledged reservation {id} lost: {r}"
        );
    }
    let unacknowledged = held(&http, &g.base, token).await? - tally.acked.len() as u64;
    assert!(
        unacknowledged <= tally.in_flight.len() as u64,
        "{unacknowledged} holds nobody asked for ({} in flight)",
        tally.in_flight.len()
    );
    let mut replays = 0;
    for key in std::mem::take(&mut tally.in_flight) {
        let (status, replayed, r) = reserve(&http, &g.base, token, &key).await?;
        assert_eq!(status, 201, "retry of {key}: {r}");
        replays += u64::from(replayed);
        tally.acked.insert(r["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(
        replays, unacknowledged,
        "each unacknowledged hold is one in-flight request"
    );
    Ok(())
}

/// Reservation load from several clients until the gateway dies under them; each client records
/// the request it had in flight when its connection failed.
async fn load(base: String, token: String, cycle: usize, tally: Arc<Mutex<Tally>>) {
    let http = reqwest::Client::new();
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (http, base, token, tally) = (http.clone(), base.clone(), token.clone(), tally.clone());
        clients.spawn(async move {
            for n in 0.. {
                let key = format!("c{cycle}-{c}-{n}");
                match reserve(&http, &base, &token, &key).await {
                    Ok((201, _, r)) => {
                        let id = r["id"].as_str().expect("id").to_owned();
                        tally.lock().expect("tally").acked.insert(id);
                    }
                    Ok((status, _, r)) => panic!("unexpected {status}: {r}"),
                    Err(_) => {
                        tally.lock().expect("tally").in_flight.push(key);
                        return;
                    }
                }
            }
        });
    }
    while clients.join_next().await.is_some() {}
}

async fn cycle(
    config: &Path,
    token: &str,
    tally: &Arc<Mutex<Tally>>,
    rng: &mut Rng,
    n: usize,
) -> anyhow::Result<()> {
    let mut g = start_gateway(config).await?;
    {
        let mut t = std::mem::take(&mut *tally.lock().expect("tally"));
        verify(&g, token, &mut t).await?;
        *tally.lock().expect("tally") = t;
    }
    let loader = tokio::spawn(load(g.base.clone(), token.to_owned(), n, tally.clone()));
    tokio::time::sleep(Duration::from_millis(50 + rng.next() % 400)).await;
    g.child.start_kill()?;
    g.child.wait().await?;
    loader.await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_reservations_survive_kill_9_and_nothing_unacknowledged_appears()
-> anyhow::Result<()> {
    let seed = match std::env::var("LOCKERGRID_SEED") {
        Ok(s) => s.parse()?,
        Err(_) => {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos() as u64
                | 1
        }
    };
    println!("seed {seed} (set LOCKERGRID_SEED to replay the kill timings)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir()?;
    let config = write_deployment(dir.path(), STATIONS, COMPARTMENTS);
    let token = issue_token(&config, "checkout", &[]).await?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    for n in 0..KILLS {
        cycle(&config, &token, &tally, &mut rng, n).await?;
    }
    let mut g = start_gateway(&config).await?;
    let mut t = std::mem::take(&mut *tally.lock().expect("tally"));
    verify(&g, &token, &mut t).await?;
    assert!(
        t.acked.len() > KILLS * 10,
        "the load made {} reservations",
        t.acked.len()
    );
    println!(
        "{} reservations acknowledged across {KILLS} kills",
        t.acked.len()
    );
    g.child.start_kill()?;
    g.child.wait().await?;
    Ok(())
}
