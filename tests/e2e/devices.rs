//! The device plane at the gateway: simulated lockers with their own certificates connect over
//! TLS 1.3, heartbeats show in the station's health, a tamper alarm takes the station out of
//! service and out of discovery, silence takes it offline, the front's refusals reach the
//! access log, and a locker cut off from the gateway opens for the codes the gateway cached on it,
//! under the same lock-out on wrong codes as a node.

use crate::edges::{deposit_parcels, pick_up_at};
use lockergrid_device_plane::{CertificateAuthority, Identity, Kind};
use lockergrid_gateway::auth::Role;
use lockergrid_model::{Clock, ManualClock};
use lockergrid_protocol::Timestamp;
use lockergrid_tests::{Deployment, Running};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

const START: Timestamp = Timestamp(1_796_083_200_000);

/// The stations discovery offers near both test stations, sorted.
async fn discoverable(d: &Running, token: &str) -> anyhow::Result<Vec<String>> {
    let url = format!(
        "{}/v1/stations?lat=52.37&lon=4.9&radius_m=20000&size=small",
        d.base
    );
    let (status, body) = d.send(d.http.get(url).bearer_auth(token)).await?;
    anyhow::ensure!(status == 200, "{body}");
    let mut ids: Vec<String> = body["stations"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    Ok(ids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockers_report_health_and_tamper_or_silence_take_their_station_out_of_discovery()
-> anyhow::Result<()> {
    let clock = ManualClock::new(START);
    let d = Deployment::new()
        .station("st-a", 4)
        .station("st-b", 4)
        .clock(clock.clone())
        .lockers(Duration::from_millis(200))
        .start()
        .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let health = |id: &str| format!("{}/v1/stations/{id}/health", d.base);

    // Heartbeats arrive over TLS and show in the health view.
    for id in ["st-a", "st-b"] {
        let h = d
            .get_until(&health(id), &operator, |h| h["online"] == true)
            .await?;
        assert_eq!(h["telemetry"]["locker"], id);
        assert_eq!(h["telemetry"]["mains"], true);
        assert_eq!(h["status"], "active");
    }
    assert_eq!(d.locker("st-a", "status").await?.get(..3), Some("ok "));
    assert_eq!(discoverable(&d, &checkout).await?, vec!["st-a", "st-b"]);

    // A tamper alarm: an alert, out of service, out of discovery. The status is committed first
    // and the alert raised right after it: wait for both.
    assert_eq!(d.locker("st-a", "tamper on").await?, "ok");
    let h = d
        .get_until(&health("st-a"), &operator, |h| {
            h["status"] == "out_of_service" && h["alerts"][0]["kind"] == "tamper"
        })
        .await?;
    assert_eq!(h["telemetry"]["tamper"], true);
    assert_eq!(discoverable(&d, &checkout).await?, vec!["st-b"]);

    // Silence: st-b's locker loses power; after 30 s without a heartbeat the station is offline.
    let (status, held) = d.reserve(&checkout, "before-silence", "st-b").await?;
    assert_eq!(status, 201, "{held}");
    d.lockers[1].power.abort();
    // Its session ends at the front: nothing more of it reaches the gateway.
    d.get_until(
        &format!("{}/v1/admin/access-log?from=1&limit=1000", d.base),
        &operator,
        |log| {
            log["entries"].as_array().is_some_and(|entries| {
                entries
                    .iter()
                    .any(|e| e["action"] == "device_disconnected" && e["target"] == "st-b")
            })
        },
    )
    .await?;
    clock.advance(Duration::from_secs(31));
    // As with the tamper alarm, status first and alert right after it.
    let offline_alert = |h: &serde_json::Value| {
        h["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["kind"] == "offline"))
    };
    let h = d
        .get_until(&health("st-b"), &operator, |h| {
            h["status"] == "offline" && offline_alert(h)
        })
        .await?;
    assert_eq!(h["online"], false);
    assert!(discoverable(&d, &checkout).await?.is_empty());
    // Nothing is sent to a locker that does not answer: the deposit is refused, the hold stays.
    let agent = d.token("courier", Role::Agent, &["st-b"])?;
    let id = held["id"].as_str().expect("id");
    let (status, problem) = d.deposit(&agent, id).await?;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["type"], "urn:lockergrid:problem:locker-offline");
    let (_, r) = d
        .send(
            d.http
                .get(format!("{}/v1/reservations/{id}", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(r["status"], "held");
    // A tampered station does not come back by itself, even though its locker keeps reporting:
    // a heartbeat heard after the clock moved on leaves it out of service.
    clock.advance(Duration::from_secs(1));
    let moved_on = clock.now();
    let h = d
        .get_until(&health("st-a"), &operator, |h| {
            h["last_seen"]
                .as_str()
                .and_then(|s| s.parse::<Timestamp>().ok())
                .is_some_and(|seen| seen >= moved_on)
        })
        .await?;
    assert_eq!(h["status"], "out_of_service", "{h}");

    // Something that is not a locker knocks on the device port: refused, and logged.
    let mut stranger = tokio::net::TcpStream::connect(d.gateway.devices_addr).await?;
    stranger.write_all(b"GET / HTTP/1.1\r\n\r\n").await?;
    drop(stranger);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let log = loop {
        let log = d.access_log(&operator).await?;
        if log.iter().any(|e| e["action"] == "device_refused")
            || tokio::time::Instant::now() > deadline
        {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let actions: Vec<&str> = log.iter().filter_map(|e| e["action"].as_str()).collect();
    for expected in ["device_connected", "station_status", "device_refused"] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    let tamper = log
        .iter()
        .find(|e| e["action"] == "station_status" && e["target"] == "st-a")
        .expect("st-a's status change is logged");
    assert_eq!(tamper["actor"]["subject"], "locker:st-a");
    assert!(
        tamper["outcome"]
            .as_str()
            .unwrap()
            .starts_with("active -> out_of_service"),
        "{tamper}"
    );

    // The operator inspects st-a and puts it back; `offline` is not theirs to set.
    let status_url = format!("{}/v1/admin/stations/st-a/status", d.base);
    let (status, body) = d
        .send(
            d.http.put(&status_url).bearer_auth(&operator).json(
                &serde_json::json!({"status": "active", "reason": "inspected, seal replaced"}),
            ),
        )
        .await?;
    assert_eq!(
        (status, &body["status"], &body["changed"]),
        (200, &"active".into(), &true.into()),
        "{body}"
    );
    assert_eq!(discoverable(&d, &checkout).await?, vec!["st-a"]);
    for bad in [
        serde_json::json!({"status": "offline", "reason": "x"}),
        serde_json::json!({"status": "active", "reason": " "}),
        serde_json::json!({"status": "active"}),
    ] {
        let (status, body) = d
            .send(d.http.put(&status_url).bearer_auth(&operator).json(&bad))
            .await?;
        assert_eq!(status, 422, "{bad}: {body}");
    }
    let (status, _) = d
        .send(
            d.http
                .put(&status_url)
                .bearer_auth(&checkout)
                .json(&serde_json::json!({"status": "active", "reason": "x"})),
        )
        .await?;
    assert_eq!(status, 403);

    // Health needs a role that may see the station.
    let (status, _) = d
        .send(d.http.get(health("st-a")).bearer_auth(&checkout))
        .await?;
    assert_eq!(status, 403);
    let (status, _) = d
        .send(d.http.get(health("nowhere")).bearer_auth(&operator))
        .await?;
    assert_eq!(status, 404);
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locker_wired_to_the_gateway_and_cut_off_from_it_opens_for_a_cached_code()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 10)
        .lockers(Duration::from_millis(500))
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let stored = deposit_parcels(&d, "st-a", 2).await?;
    // The gateway keeps the locker's own cache current, as an edge node does for its lockers.
    d.locker_until("st-a", |s| s["cached_codes"] == 2).await?;

    // Cut off: its certificate revoked, the gateway drops its session and refuses it after.
    let mut ca = CertificateAuthority::open(&d.gateway.data_dir.join("pki"))?;
    ca.revoke(&Identity::new(Kind::Locker, "st-a")?)?;
    d.locker_until("st-a", |s| s["connected"] == false).await?;
    let (parcel, code, compartment) = &stored[0];
    pick_up_at(&d.lockers[0], code, compartment).await?;
    // The code is crossed out, and the pickup, the door opening and its closing wait in the
    // locker's queue for the gateway.
    let status = d
        .locker_until("st-a", |s| {
            s["cached_codes"] == 1 && s["queued_events"] == 3
        })
        .await?;
    assert_eq!(status["connected"], false, "{status}");
    let url = format!("{}/v1/parcels/{parcel}", d.base);
    let (_, p) = d.send(d.http.get(url).bearer_auth(&checkout)).await?;
    assert_eq!(p["status"], "stored", "the gateway has not heard yet: {p}");
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locker_cut_off_refuses_after_its_budget_and_opens_once_the_wait_passed()
-> anyhow::Result<()> {
    use lockergrid_protocol::lockout::{FIRST_DELAY, FREE_FAILURES};
    let clock = ManualClock::new(START);
    let d = Deployment::new()
        .station("st-a", 10)
        .clock(clock.clone())
        .lockers(Duration::from_millis(500))
        .start()
        .await?;
    let stored = deposit_parcels(&d, "st-a", 1).await?;
    d.locker_until("st-a", |s| s["cached_codes"] == 1).await?;
    let mut ca = CertificateAuthority::open(&d.gateway.data_dir.join("pki"))?;
    ca.revoke(&Identity::new(Kind::Locker, "st-a")?)?;
    d.locker_until("st-a", |s| s["connected"] == false).await?;
    let (_, code, compartment) = &stored[0];
    let running = &d;
    let press = |typed: String| async move {
        let answer = running.locker("st-a", &format!("press {typed}#")).await?;
        anyhow::ensure!(answer == "ok", "press: {answer}");
        anyhow::Ok(())
    };
    // Alone, the locker checks its budget of wrong codes (each queued, hashed, for the gateway to
    // refuse later), and then the right one waits, refused unchecked.
    for n in 1..=FREE_FAILURES {
        press(format!("{:08}", 11_111_111 * n)).await?;
        d.locker_until("st-a", |s| s["queued_events"] == n).await?;
    }
    press(code.clone()).await?;
    d.locker_until("st-a", |s| s["refused_codes"] == 1).await?;
    let status = d.locker_until("st-a", |_| true).await?;
    assert_eq!(status["unlatched"], serde_json::json!([]), "{status}");
    assert_eq!(
        status["cached_codes"], 1,
        "the right code is not spent: {status}"
    );
    // Once the wait has passed, the right code opens.
    clock.advance(FIRST_DELAY);
    press(code.clone()).await?;
    d.locker_until("st-a", |s| {
        s["unlatched"]
            .as_array()
            .is_some_and(|u| u.iter().any(|c| c == compartment.as_str()))
    })
    .await?;
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locker_cut_off_whose_tamper_switch_trips_opens_nothing_from_its_cache()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 10)
        .lockers(Duration::from_millis(500))
        .start()
        .await?;
    let stored = deposit_parcels(&d, "st-a", 1).await?;
    d.locker_until("st-a", |s| s["cached_codes"] == 1).await?;
    let mut ca = CertificateAuthority::open(&d.gateway.data_dir.join("pki"))?;
    ca.revoke(&Identity::new(Kind::Locker, "st-a")?)?;
    d.locker_until("st-a", |s| s["connected"] == false).await?;

    // Alone, the tamper switch trips: the locker locks itself down, and a power cut would not
    // lift it (it is kept with the cache). The right code is refused unchecked.
    assert_eq!(d.locker("st-a", "tamper on").await?, "ok");
    let (_, code, _) = &stored[0];
    assert_eq!(d.locker("st-a", &format!("press {code}#")).await?, "ok");
    let status = d.locker_until("st-a", |s| s["refused_codes"] == 1).await?;
    assert_eq!(status["unlatched"], serde_json::json!([]), "{status}");
    assert_eq!(status["cached_codes"], 1, "the code is not spent: {status}");
    d.stop().await
}
