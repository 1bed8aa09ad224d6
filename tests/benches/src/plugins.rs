//! The reservation-policy decision through Wasm against the same ranking compiled natively, the
//! cost of the call limits, and reservations over HTTP with the plugin in the path against the
//! built-in ranking.

#[path = "../../../plugins/reservation-balanced/src/score.rs"]
mod balanced;

use crate::latency::{Report, Timed, drive_timed};
use crate::workloads::station_name;
use lockergrid_gateway::auth::Role;
use lockergrid_model::Candidate;
use lockergrid_model::{
    Binding, BindingLimits, PluginSigner, PolicyFile, Scope, TrustedKey, World, sha256_hex,
};
use lockergrid_model::{SizeCount, StationView};
use lockergrid_model::{StationKind, StationRecord};
use lockergrid_plugin_host::{HostOptions, PluginHost, RankRequest};
use lockergrid_protocol::{GeoPoint, ParcelSpec, Size, StationId, Tier, Timestamp};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `n` stations of every kind, more or less full.
fn stations(n: usize) -> Vec<StationView> {
    let kinds = [
        StationKind::Urban,
        StationKind::Suburban,
        StationKind::TransitHub,
        StationKind::Residential,
    ];
    (0..n)
        .map(|i| {
            let total = 40 + (i as u32 % 7) * 20;
            let free = total - (i as u32 * 37 % total);
            let mut sizes = [SizeCount::default(); 4];
            sizes[0] = SizeCount { free, total };
            StationView::new(
                StationRecord::new(
                    StationId::new(format!("bench-{i:04}")).expect("valid"),
                    format!("Bench {i}"),
                    kinds[i % kinds.len()],
                    GeoPoint {
                        lat: 52.37,
                        lon: 4.89,
                    },
                ),
                sizes,
                [[0; 5]; 4],
            )
        })
        .collect()
}

/// The stations as candidates at distances up to 5 km.
fn candidates(stations: &[StationView]) -> Vec<Candidate<'_>> {
    stations
        .iter()
        .enumerate()
        .map(|(i, station)| Candidate {
            station,
            distance_m: 100.0 + (i as f64 * 97.0) % 5_000.0,
            score: 0.0,
        })
        .collect()
}

fn request() -> RankRequest {
    RankRequest {
        parcel: ParcelSpec {
            length_mm: 200,
            width_mm: 150,
            height_mm: 100,
            weight_g: 500,
        },
        size: Size::Small,
        tier: Tier::Standard,
    }
}

/// The ranking compiled natively, with the same conversion work the host does for the plugin:
/// view the candidates, rank, and reorder them.
fn native<'a>(candidates: Vec<Candidate<'a>>, size: Size) -> Vec<Candidate<'a>> {
    let stations: Vec<balanced::Station> = candidates
        .iter()
        .map(|c| balanced::Station {
            distance_m: c.distance_m,
            utilisation: c.station.utilisation(size),
            free: c.station.free_fitting(size),
            kind: match c.station.record.kind {
                StationKind::Urban => balanced::Kind::Urban,
                StationKind::Suburban => balanced::Kind::Suburban,
                StationKind::TransitHub => balanced::Kind::TransitHub,
                StationKind::Residential => balanced::Kind::Residential,
            },
        })
        .collect();
    let order = balanced::rank(&stations, 0.5);
    order.into_iter().map(|i| candidates[i]).collect()
}

async fn host(enforced: bool) -> anyhow::Result<Arc<PluginHost>> {
    let signer = PluginSigner::from_secret(rand::random());
    let policy = PolicyFile {
        version: 1,
        trusted_keys: vec![TrustedKey {
            name: "bench".into(),
            public_key: signer.public_hex(),
        }],
        ..PolicyFile::default()
    };
    let options = HostOptions {
        unenforced: !enforced,
        ..HostOptions::default()
    };
    let host = Arc::new(PluginHost::new(options, policy.trust()?)?);
    let bytes = lockergrid_plugin_artifacts::RESERVATION_BALANCED;
    let mut binding = Binding {
        world: World::ReservationPolicy,
        scope: Scope::Default,
        name: "reservation-balanced".into(),
        version: "bench".into(),
        file: None,
        sha256: Some(sha256_hex(bytes)),
        settings: BTreeMap::new(),
        // Room for the largest candidate list: the maxima a binding may ask for; the defaults
        // are for production calls.
        limits: BindingLimits {
            memory_mib: lockergrid_model::MAX_MEMORY_MIB,
            deadline_ms: lockergrid_model::MAX_DEADLINE_MS,
            timeout_ms: lockergrid_model::MAX_TIMEOUT_MS,
        },
        signature: None,
    };
    binding.signature = Some(signer.sign(&binding).to_string());
    host.install(binding, bytes.into()).await?;
    Ok(host)
}

/// Calls one variant makes before the next takes its turn.
const TURN: usize = 250;

/// One decision for `offered` by the native ranking (no host) or by a host's plugin.
async fn decide(host: Option<&Arc<PluginHost>>, offered: &[Candidate<'_>]) -> anyhow::Result<()> {
    match host {
        None => {
            let ranked = native(offered.to_vec(), Size::Small);
            anyhow::ensure!(!ranked.is_empty(), "nothing ranked");
        }
        Some(host) => {
            let placed = host
                .place(request(), Some(offered.to_vec()), None, Timestamp(0))
                .await;
            anyhow::ensure!(
                matches!(placed.decider, lockergrid_plugin_host::Decider::Plugin(_)),
                "the plugin did not decide: {:?}",
                placed.decider
            );
        }
    }
    Ok(())
}

/// Decisions for `n` candidates: natively, through Wasm with the limits, and without them.
pub async fn decisions(n: usize, calls: usize) -> anyhow::Result<[Report; 3]> {
    let views = stations(n);
    let offered = candidates(&views);
    // The three variants take turns in blocks of calls, so a change in the machine's speed
    // during the run (this machine's can move by 2x within minutes) falls on all alike; the
    // Wasm/native and limits-on/off ratios are only meaningful that way. Within a block one
    // variant stays warm.
    let hosts = [None, Some(host(true).await?), Some(host(false).await?)];
    let mut latencies: [Vec<Duration>; 3] = std::array::from_fn(|_| Vec::with_capacity(calls));
    let mut busy = [Duration::ZERO; 3];
    for block in 0..calls.div_ceil(TURN).saturating_mul(hosts.len()) {
        let which = block % hosts.len();
        for _ in 0..TURN.min(calls - latencies[which].len()) {
            let t = Instant::now();
            decide(hosts[which].as_ref(), &offered).await?;
            let took = t.elapsed();
            latencies[which].push(took);
            busy[which] += took;
        }
    }
    let [native_calls, limited_calls, unlimited_calls] = latencies;
    Ok([
        Report::new(
            format!("ranking, native ({n} candidates)"),
            native_calls,
            busy[0],
        ),
        Report::new(
            format!("ranking, Wasm with limits ({n} candidates)"),
            limited_calls,
            busy[1],
        ),
        Report::new(
            format!("ranking, Wasm no limits ({n} candidates)"),
            unlimited_calls,
            busy[2],
        ),
    ])
}

/// Rounds in which the two HTTP deployments take turns.
const HTTP_ROUNDS: usize = 5;

/// A deployment of `stations` stations for the ranked HTTP rows, and a checkout token for it.
async fn ranked_deployment(
    stations: usize,
    with_plugins: bool,
) -> anyhow::Result<(Arc<lockergrid_tests::Running>, Arc<str>)> {
    let mut deployment = lockergrid_tests::Deployment::new();
    if !with_plugins {
        deployment = deployment.without_plugins();
    }
    for i in 0..stations {
        deployment = deployment.station(&station_name(i), 400);
    }
    let running = Arc::new(deployment.start().await?);
    let token: Arc<str> = running.token("bench", Role::Checkout, &[])?.into();
    Ok((running, token))
}

/// Reservation `n` near a point, so the ranking is in its path.
async fn reserve_near(
    (running, token): (Arc<lockergrid_tests::Running>, Arc<str>),
    n: usize,
    stations: usize,
) -> anyhow::Result<(Arc<lockergrid_tests::Running>, Arc<str>)> {
    // Stations sit 1 km apart on a line; 5 km around one of them offers about ten.
    let lon = 4.89 + 0.0147 * (n.wrapping_mul(7_919) % stations) as f64;
    let body = json!({
        "order_id": format!("o-{n}"),
        "parcel": lockergrid_tests::small_parcel(),
        "tier": "standard",
        "near": { "lat": 52.37, "lon": lon, "radius_m": 5_000.0 },
    });
    let (status, answer) = running
        .send(
            running
                .http
                .post(format!("{}/v1/reservations", running.base))
                .bearer_auth(&*token)
                .header("idempotency-key", format!("k-{n}"))
                .json(&body),
        )
        .await?;
    anyhow::ensure!(status == 201, "reservation {n} answered {status}: {answer}");
    Ok((running, token))
}

/// Reservations over HTTP that ask for a station near a point, so the ranking is in the path:
/// with the built-in ranking only, and with the default plugins. The two deployments take
/// turns in rounds, so a change in the machine's speed falls on both alike.
pub async fn http_ranked(
    total: usize,
    clients: usize,
    stations: usize,
) -> anyhow::Result<[Report; 2]> {
    let mut deployments = Vec::new();
    for with_plugins in [false, true] {
        let (running, token) = ranked_deployment(stations, with_plugins).await?;
        deployments.push((vec![(running, token); clients], Timed::default()));
    }
    let round = total.div_ceil(HTTP_ROUNDS);
    for r in 0..HTTP_ROUNDS {
        let ops = (r * round).min(total)..((r + 1) * round).min(total);
        for (workers, timed) in &mut deployments {
            let (back, this) = drive_timed(std::mem::take(workers), ops.clone(), move |w, n| {
                reserve_near(w, n, stations)
            })
            .await?;
            *workers = back;
            timed.extend(this);
        }
    }
    let mut reports = Vec::new();
    for ((workers, timed), ranking) in deployments
        .into_iter()
        .zip(["built-in", "reservation-balanced (Wasm)"])
    {
        let running = workers
            .into_iter()
            .next()
            .map(|(running, _)| running)
            .ok_or_else(|| anyhow::anyhow!("no workers"))?;
        crate::workloads::stop(running).await?;
        reports.push(Report::new(
            format!(
                "reservation near a point over HTTP, {ranking} ranking ({clients} connections)"
            ),
            timed.latencies,
            timed.elapsed,
        ));
    }
    <[Report; 2]>::try_from(reports).map_err(|_| anyhow::anyhow!("two deployments, two reports"))
}
