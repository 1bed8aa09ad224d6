//! The device registry over the real device plane: simulated lockers are provisioned (a key of
//! their own, a certificate from the registry) and go active when their self-test passes; a
//! certificate of the deployment's CA that the registry does not hold is refused; an operator
//! suspends a device (its session is cut at once, it cannot come back) and resumes it.

use lockergrid_device_plane::{CertificateAuthority, Identity, Kind};
use lockergrid_gateway::auth::Role;
use lockergrid_gateway::simulated;
use lockergrid_protocol::{CompartmentId, StationId};
use lockergrid_tests::{Deployment, Running};
use serde_json::{Value, json};
use std::time::Duration;

/// Waits until the access log has an entry `matches` accepts.
async fn logged(
    d: &Running,
    operator: &str,
    matches: impl Fn(&Value) -> bool,
) -> anyhow::Result<()> {
    let url = format!("{}/v1/admin/access-log?from=1&limit=1000", d.base);
    d.get_until(&url, operator, |log| {
        log["entries"]
            .as_array()
            .is_some_and(|entries| entries.iter().any(&matches))
    })
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_registered_devices_connect_and_operators_suspend_and_resume_them()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 4)
        .station("st-b", 4)
        .lockers(Duration::from_millis(200))
        .start()
        .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let devices = format!("{}/v1/admin/devices", d.base);

    // Both lockers were provisioned with keys of their own and went active on their self-test;
    // the registry has the firmware each booted.
    let listed = d
        .get_until(&devices, &operator, |body| {
            body["devices"].as_array().is_some_and(|all| {
                all.len() == 2
                    && all.iter().all(|d| {
                        d["status"] == "active" && d["firmware"].is_string() && d["online"] == true
                    })
            })
        })
        .await?;
    for device in listed["devices"].as_array().into_iter().flatten() {
        assert_eq!(device["model"], simulated::SIMULATED_MODEL, "{device}");
        assert_eq!(device["fingerprint"].as_str().map(str::len), Some(64));
        assert!(
            device["serial"].is_string() && !device["activated_at"].is_null(),
            "{device}"
        );
    }
    logged(&d, &operator, |e| {
        e["action"] == "device_accepted" && e["target"] == "st-b"
    })
    .await?;

    // A certificate the deployment's CA signed for a locker the registry does not hold.
    let mut ca = CertificateAuthority::open(&d.gateway.data_dir.join("pki"))?;
    let certs = d.gateway.data_dir.join("lockers/st-zz/certs");
    ca.issue(&Identity::new(Kind::Locker, "st-zz")?, &[], 30)?
        .write_to(&certs, "st-zz", ca.ca_pem())?;
    let mut stray = d.deployment.stations[0].clone();
    stray.record.id = StationId::new("st-zz")?;
    let _stray = simulated::start(
        &[stray],
        &d.gateway.data_dir,
        d.gateway.simulation(Duration::from_millis(200))?,
    )
    .await?;
    logged(&d, &operator, |e| {
        e["action"] == "device_refused"
            && e["outcome"]
                .as_str()
                .is_some_and(|o| o.contains("locker st-zz is not a provisioned or active device"))
    })
    .await?;

    // Suspended, st-b's session is cut at once and its reconnections are refused.
    let suspend = format!("{devices}/st-b/suspend");
    let (status, body) = d
        .send(
            d.http
                .post(&suspend)
                .bearer_auth(&operator)
                .json(&json!({ "reason": "controller stolen" })),
        )
        .await?;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("suspended")),
        "{body}"
    );
    d.locker_until("st-b", |s| s["connected"] == false).await?;
    logged(&d, &operator, |e| {
        e["action"] == "device_dismissed" && e["target"] == "st-b"
    })
    .await?;
    logged(&d, &operator, |e| {
        e["action"] == "device_suspend" && e["outcome"] == "controller stolen"
    })
    .await?;
    // Suspending it again is a move its status does not allow.
    let (status, problem) = d
        .send(
            d.http
                .post(&suspend)
                .bearer_auth(&operator)
                .json(&json!({ "reason": "again" })),
        )
        .await?;
    assert_eq!(status, 409, "{problem}");

    // Resumed, it connects again by itself.
    let (status, body) = d
        .send(
            d.http
                .post(format!("{devices}/st-b/resume"))
                .bearer_auth(&operator)
                .json(&json!({ "reason": "found it" })),
        )
        .await?;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("active")),
        "{body}"
    );
    d.locker_until("st-b", |s| s["connected"] == true).await?;
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_provisioning_request_is_refused_with_a_problem_and_changes_nothing()
-> anyhow::Result<()> {
    let d = Deployment::new().station("st-a", 4).start().await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a"])?;
    let devices = format!("{}/v1/admin/devices", d.base);
    let key = lockergrid_device_plane::DeviceKey::generate()?;
    let cases = [
        (
            json!({ "station": "st-a", "model": "m-1", "public_key_pem": "not a key" }),
            422,
        ),
        (
            json!({ "station": "nowhere", "model": "m-1", "public_key_pem": key.public_key_pem }),
            422,
        ),
        (
            json!({ "station": "st-a", "model": "two words", "public_key_pem": key.public_key_pem }),
            422,
        ),
        (json!({ "station": "st-a", "model": "m-1" }), 422),
    ];
    for (body, want) in cases {
        let (status, problem) = d
            .send(d.http.post(&devices).bearer_auth(&operator).json(&body))
            .await?;
        assert_eq!(status, want, "{body}: {problem}");
        assert!(
            problem["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:lockergrid:problem:"))
        );
    }
    let body = json!({ "station": "st-a", "model": "m-1", "public_key_pem": key.public_key_pem });
    let (status, _) = d
        .send(d.http.post(&devices).bearer_auth(&agent).json(&body))
        .await?;
    assert_eq!(status, 403, "an agent provisions nothing");
    let (_, listed) = d.send(d.http.get(&devices).bearer_auth(&operator)).await?;
    assert_eq!(listed["devices"], json!([]), "nothing was provisioned");
    let (status, problem) = d
        .send(
            d.http
                .post(format!("{devices}/st-a/resume"))
                .bearer_auth(&operator)
                .json(&json!({ "reason": "x" })),
        )
        .await?;
    assert_eq!(status, 404, "{problem}");

    // A good request: 201 with the certificate for the key the device keeps.
    let (status, made) = d
        .send(d.http.post(&devices).bearer_auth(&operator).json(&body))
        .await?;
    assert_eq!(status, 201, "{made}");
    assert_eq!(made["device"]["status"], "provisioned");
    assert!(
        made["certificate_pem"]
            .as_str()
            .is_some_and(|p| p.contains("BEGIN CERTIFICATE"))
    );
    assert!(!made.to_string().contains("PRIVATE KEY"));
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decommissioned_station_loses_its_locker_and_its_reservations_move_with_customers_told()
-> anyhow::Result<()> {
    const HELD: usize = 20;
    // st-b, a kilometre away, has room for half of st-a's reservations.
    let d = Deployment::new()
        .station("st-a", 30)
        .station("st-b", 10)
        .lockers(Duration::from_millis(200))
        .start()
        .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    for n in 0..HELD {
        let (status, body) = d.reserve(&checkout, &format!("held-{n}"), "st-a").await?;
        assert_eq!(status, 201, "{body}");
    }
    let stored = d.stock(&["st-a"], 1).await?;

    let started = std::time::Instant::now();
    let (status, done) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/devices/st-a/decommission", d.base))
                .bearer_auth(&operator)
                .json(&json!({ "reason": "site closes" })),
        )
        .await?;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["device"]["status"], "decommissioned");
    let moved = done["moved"].as_array().expect("moved");
    let released = done["released"].as_array().expect("released");
    assert_eq!((moved.len(), released.len()), (10, 10), "{done}");
    assert!(moved.iter().all(|m| m["station_id"] == "st-b"), "{done}");
    assert_eq!(
        done["parcels_to_collect"][0]["parcel_id"],
        stored[0].0.as_str(),
        "{done}"
    );

    // Its live session is gone within 5 s, and its certificate is refused when it comes back.
    d.locker_until("st-a", |s| s["connected"] == false).await?;
    let took = started.elapsed();
    assert!(took <= Duration::from_secs(5), "session lived {took:?}");
    logged(&d, &operator, |e| {
        e["action"] == "device_refused"
            && e["outcome"]
                .as_str()
                .is_some_and(|o| o.to_lowercase().contains("revoked"))
    })
    .await?;

    // Out of discovery; each customer heard where the parcel goes, or that nothing had room.
    let (_, station) = d
        .send(
            d.http
                .get(format!("{}/v1/stations/st-a", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(station["status"], "inactive", "{station}");
    let told = |kind: &'static str| {
        move |h: &lockergrid_tests::receiver::Hook| h.status < 300 && h.body["type"] == kind
    };
    let hooks = d
        .app
        .until(|hooks| {
            hooks
                .iter()
                .filter(|h| told("reservation.moved")(h))
                .count()
                == 10
                && hooks
                    .iter()
                    .filter(|h| told("reservation.cancelled")(h))
                    .count()
                    == 10
        })
        .await?;
    for hook in hooks.iter().filter(|h| told("reservation.moved")(h)) {
        assert_eq!(
            hook.body["data"]["station"]["name"], "st-b",
            "{}",
            hook.body
        );
    }
    for reservation in moved {
        let id = reservation["reservation_id"].as_str().expect("id");
        let (_, r) = d
            .send(
                d.http
                    .get(format!("{}/v1/reservations/{id}", d.base))
                    .bearer_auth(&checkout),
            )
            .await?;
        assert_eq!(
            (r["status"].as_str(), r["station_id"].as_str()),
            (Some("held"), Some("st-b"))
        );
    }
    let log = format!("{}/v1/admin/access-log?from=1&limit=1000", d.base);
    let (_, log) = d.send(d.http.get(log).bearer_auth(&operator)).await?;
    let count = |action: &str| {
        log["entries"]
            .as_array()
            .map_or(0, |e| e.iter().filter(|e| e["action"] == action).count())
    };
    assert_eq!(count("reservation_moved"), 10);
    assert_eq!(count("reservation_cancelled"), 10);
    assert_eq!(count("device_decommission"), 1);
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decommission_cut_short_after_the_registry_is_finished_at_the_next_start()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 4)
        .station("st-b", 4)
        .lockers(Duration::from_millis(200))
        .start()
        .await?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let (status, held) = d.reserve(&checkout, "held", "st-a").await?;
    assert_eq!(status, 201, "{held}");
    // The registry's step alone, as if the gateway stopped right after it.
    let ops = lockergrid_model::Actor {
        subject: "ops".into(),
        role: "operator".into(),
    };
    let order = lockergrid_store::DeviceOrder {
        id: lockergrid_protocol::LockerId::new("st-a")?,
        change: lockergrid_model::DeviceChange::Decommissioned,
        actor: ops,
        reason: "site closes".into(),
    };
    d.gateway.app.store.change_device(order).await?;
    d.locker_until("st-a", |s| s["connected"] == false).await?;

    assert_eq!(d.gateway.app.fleet.finish_decommissions().await?, 1);
    let id = held["id"].as_str().expect("id");
    let (_, r) = d
        .send(
            d.http
                .get(format!("{}/v1/reservations/{id}", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(r["station_id"], "st-b", "{r}");
    let snapshot = d.gateway.app.store.snapshot();
    let station = snapshot.station(&StationId::new("st-a")?).expect("st-a");
    assert_eq!(station.record.status.as_str(), "inactive");
    let ca = CertificateAuthority::open(&d.gateway.data_dir.join("pki"))?;
    assert!(
        ca.issued()
            .iter()
            .filter(|i| i.id == "st-a")
            .all(|i| i.revoked_at.is_some())
    );
    // Nothing is left to finish.
    assert_eq!(d.gateway.app.fleet.finish_decommissions().await?, 0);
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jammed_latch_takes_its_compartment_to_maintenance_and_operators_move_a_parcel_out()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 10)
        .lockers(Duration::from_millis(200))
        .start()
        .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a"])?;
    let (_, held) = d.reserve(&checkout, "jammed", "st-a").await?;
    let id = held["id"].as_str().expect("id");
    let jammed = held["compartment_id"]
        .as_str()
        .expect("compartment")
        .to_owned();
    assert_eq!(d.locker("st-a", &format!("jam {jammed}")).await?, "ok");
    for attempt in 0..3 {
        let (status, problem) = d.deposit(&agent, id).await?;
        assert_eq!(status, 503, "attempt {attempt}: {problem}");
    }
    let health = format!("{}/v1/stations/st-a/health", d.base);
    d.get_until(&health, &operator, |h| {
        h["alerts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["kind"] == "latch-failing"))
    })
    .await?;
    // Held, it waits; released, it goes to maintenance at once and nothing reserves it again.
    let compartment = CompartmentId::new(jammed.as_str())?;
    let state = |d: &Running| -> anyhow::Result<String> {
        let c = d
            .gateway
            .app
            .store
            .compartment(&compartment)?
            .expect("compartment");
        Ok(c.state.as_str().to_owned())
    };
    assert_eq!(state(&d)?, "reserved");
    let (status, _) = d
        .send(
            d.http
                .delete(format!("{}/v1/reservations/{id}", d.base))
                .bearer_auth(&checkout),
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(state(&d)?, "maintenance");

    // An occupied compartment goes out of service only with a destination its parcel follows.
    let stored = d.stock(&["st-a"], 1).await?;
    let (parcel, _, inside) = &stored[0];
    let out = format!("{}/v1/admin/compartments/{inside}/out-of-service", d.base);
    let (status, problem) = d
        .send(
            d.http
                .post(&out)
                .bearer_auth(&operator)
                .json(&json!({ "reason": "hinge" })),
        )
        .await?;
    assert_eq!(status, 422, "{problem}");
    let to = format!(
        "st-a:S00{}",
        if inside.as_str().ends_with('2') { 3 } else { 2 }
    );
    let (status, moved) = d
        .send(
            d.http
                .post(&out)
                .bearer_auth(&operator)
                .json(&json!({ "reason": "hinge", "destination": to })),
        )
        .await?;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["compartment"]["state"], "maintenance");
    assert_eq!(moved["moved_to"], to.as_str());
    let (_, p) = d
        .send(
            d.http
                .get(format!("{}/v1/parcels/{parcel}", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    assert_eq!(p["compartment_id"], to.as_str(), "{p}");
    // Back in service, it is free again.
    let (status, back) = d
        .send(
            d.http
                .post(format!(
                    "{}/v1/admin/compartments/{inside}/in-service",
                    d.base
                ))
                .bearer_auth(&operator)
                .json(&json!({ "reason": "fixed" })),
        )
        .await?;
    assert_eq!(
        (status, back["compartment"]["state"].as_str()),
        (200, Some("available"))
    );
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_station_opens_no_door_until_cleared_and_a_technicians_override_is_audited()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 10)
        .lockers(Duration::from_millis(200))
        .start()
        .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let checkout = d.token("shop", Role::Checkout, &[])?;
    let agent = d.token("courier", Role::Agent, &["st-a"])?;
    let (_, held) = d.reserve(&checkout, "before-tamper", "st-a").await?;
    let held = held["id"].as_str().expect("id").to_owned();
    let stored = d.stock(&["st-a"], 2).await?;
    d.locker_until("st-a", |s| s["cached_codes"] == 2).await?;

    // The tamper switch trips: the site rules lock the station down.
    assert_eq!(d.locker("st-a", "tamper on").await?, "ok");
    logged(&d, &operator, |e| e["action"] == "station_locked_down").await?;
    // No code opens a door, nor a deposit.
    let (_, code, _) = &stored[0];
    let press = format!("press {}#", code.reveal());
    assert_eq!(d.locker("st-a", &press).await?, "ok");
    logged(&d, &operator, |e| {
        e["action"] == "pickup"
            && e["outcome"]
                .as_str()
                .is_some_and(|o| o.contains("locked down"))
    })
    .await?;
    let (status, problem) = d.deposit(&agent, &held).await?;
    assert_eq!(status, 403, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|t| t.contains("locked down")),
        "{problem}"
    );
    // The locker itself refuses from its cache too: it holds the lock-down across the alarm.
    let status = d
        .locker_until("st-a", |s| s["unlatched"] == json!([]))
        .await?;
    assert_eq!(status["cached_codes"], 2, "nothing spent: {status}");

    // A technician's override opens doors, each naming it.
    let override_url = format!("{}/v1/admin/stations/st-a/lockdown-override", d.base);
    let (status, body) = d
        .send(
            d.http
                .put(&override_url)
                .bearer_auth(&operator)
                .json(&json!({ "reason": "technician replaces the switch", "minutes": 30 })),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let (_, code, compartment) = &stored[1];
    let press = format!("press {}#", code.reveal());
    assert_eq!(d.locker("st-a", &press).await?, "ok");
    d.locker_until("st-a", |s| {
        s["unlatched"]
            .as_array()
            .is_some_and(|u| u.iter().any(|c| c == compartment.as_str()))
    })
    .await?;
    logged(&d, &operator, |e| {
        e["action"] == "unlock"
            && e["decided_by"]["fallback"]
                .as_str()
                .is_some_and(|f| f.contains("override of ops"))
    })
    .await?;
    logged(&d, &operator, |e| e["action"] == "lockdown_override").await?;
    let (status, _) = d
        .send(d.http.delete(&override_url).bearer_auth(&operator))
        .await?;
    assert_eq!(status, 200);
    let (status, _) = d.deposit(&agent, &held).await?;
    assert_eq!(status, 403, "shut again once the override is taken back");

    // Cleared after inspection: back in service, doors open again.
    assert_eq!(d.locker("st-a", "tamper off").await?, "ok");
    let (status, body) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/stations/st-a/clear-lockdown", d.base))
                .bearer_auth(&operator)
                .json(&json!({ "reason": "inspected; switch replaced" })),
        )
        .await?;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("active")),
        "{body}"
    );
    let (status, deposited) = d.deposit(&agent, &held).await?;
    assert_eq!(status, 200, "{deposited}");
    d.stop().await
}

/// Waits until the alerts list holds one that `matches`; that alert.
async fn alert_until(
    d: &Running,
    operator: &str,
    matches: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let url = format!("{}/v1/admin/alerts?limit=1000", d.base);
    let body = d
        .get_until(&url, operator, |b| {
            b["alerts"]
                .as_array()
                .is_some_and(|a| a.iter().any(&matches))
        })
        .await?;
    let alerts = body["alerts"].as_array().cloned().unwrap_or_default();
    Ok(alerts.into_iter().find(|a| matches(a)).expect("found"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_raises_alerts_that_are_acknowledged_and_resolve_when_the_reading_recovers()
-> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 10)
        .climate("st-a", &["S001"])
        .lockers(Duration::from_millis(100))
        .start()
        .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let of = |code: &'static str| move |a: &Value| a["code"] == code;

    // Low battery, mains lost, a climate-controlled compartment too warm; a compartment
    // without climate control as warm raises nothing.
    assert_eq!(d.locker("st-a", "battery 12").await?, "ok");
    assert_eq!(d.locker("st-a", "mains off").await?, "ok");
    assert_eq!(d.locker("st-a", "temp st-a:S001 14").await?, "ok");
    assert_eq!(d.locker("st-a", "temp st-a:S002 14").await?, "ok");
    let battery = alert_until(&d, &operator, of("battery-low")).await?;
    assert_eq!(
        (battery["status"].as_str(), battery["severity"].as_str()),
        (Some("open"), Some("warning"))
    );
    alert_until(&d, &operator, of("mains-lost")).await?;
    let warm = alert_until(&d, &operator, of("temperature-out-of-range")).await?;
    assert_eq!(warm["source"], "temperature:st-a:S001", "{warm}");
    assert_eq!(warm["decided_by"]["plugin"], "site-rules-standard");
    let (_, all) = d
        .send(
            d.http
                .get(format!("{}/v1/admin/alerts", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    let temperature = all["alerts"].as_array().map_or(0, |a| {
        a.iter()
            .filter(|a| a["code"] == "temperature-out-of-range")
            .count()
    });
    assert_eq!(temperature, 1, "S002 is not climate-controlled: {all}");

    // Acknowledged, then resolved by itself when the reading recovers.
    let id = battery["id"].as_str().expect("id");
    let (status, acked) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/alerts/{id}/acknowledge", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    assert_eq!(
        (status, acked["status"].as_str()),
        (200, Some("acknowledged")),
        "{acked}"
    );
    assert_eq!(d.locker("st-a", "battery 90").await?, "ok");
    alert_until(&d, &operator, |a| {
        a["id"] == id && a["status"] == "resolved"
    })
    .await?;
    // Twice acknowledged is a conflict; an operator resolves one by hand.
    let (status, _) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/alerts/{id}/acknowledge", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    assert_eq!(status, 409);
    let mains = alert_until(&d, &operator, of("mains-lost")).await?;
    let mains_id = mains["id"].as_str().expect("id");
    let (status, resolved) = d
        .send(
            d.http
                .post(format!("{}/v1/admin/alerts/{mains_id}/resolve", d.base))
                .bearer_auth(&operator),
        )
        .await?;
    assert_eq!(
        (status, resolved["status"].as_str()),
        (200, Some("resolved"))
    );

    // The metrics count them.
    let metrics = d
        .http
        .get(format!("{}/metrics", d.base))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("lockergrid_alert_changes_total{status=\"raised\",severity=\"warning\"}"),
        "{metrics}"
    );
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stations_telemetry_is_kept_and_read_back_as_samples_or_rollups() -> anyhow::Result<()> {
    let d = Deployment::new()
        .station("st-a", 10)
        .station("st-b", 10)
        .lockers(Duration::from_millis(100))
        .start()
        .await?;
    let operator = d.token("ops", Role::Operator, &[])?;
    let agent_b = d.token("courier", Role::Agent, &["st-b"])?;
    assert_eq!(d.locker("st-a", "battery 33").await?, "ok");
    let url = format!("{}/v1/stations/st-a/telemetry", d.base);
    let raw = d
        .get_until(&url, &operator, |b| {
            b["points"]
                .as_array()
                .is_some_and(|p| p.iter().any(|s| s["battery_percent"] == 33))
        })
        .await?;
    assert_eq!(raw["step"], "raw", "{raw}");
    let minutes = d
        .get_until(&format!("{url}?step=1m"), &operator, |b| {
            b["points"][0]["samples"].as_u64() > Some(1)
        })
        .await?;
    let rollup = &minutes["points"][0];
    assert!(
        rollup["battery_percent"]["min"].as_f64() <= Some(33.0),
        "{rollup}"
    );
    for bad in ["step=5m", "from=yesterday", "from=2030-01-01T00:00:00Z"] {
        let (status, problem) = d
            .send(d.http.get(format!("{url}?{bad}")).bearer_auth(&operator))
            .await?;
        assert_eq!(status, 422, "{bad}: {problem}");
    }
    let (status, _) = d.send(d.http.get(&url).bearer_auth(&agent_b)).await?;
    assert_eq!(status, 403, "an agent of another station reads nothing");
    d.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_door_sensor_that_starts_to_flap_is_flagged_for_maintenance() -> anyhow::Result<()> {
    let clock =
        lockergrid_model::ManualClock::new(lockergrid_protocol::Timestamp(1_796_083_200_000));
    let d = Deployment::new()
        .station("st-a", 4)
        .station("st-b", 4)
        .clock(clock.clone())
        .lockers(Duration::from_millis(200))
        .start()
        .await?;
    assert_eq!(d.locker("st-a", "flap st-a:S001 4").await?, "ok");
    let node = &d.gateway.app.node;
    for day in 0..3 {
        // A day passes: the sensor reports four movements with nobody there, st-b's none.
        let operator = d.token("ops", Role::Operator, &[])?;
        assert_eq!(d.locker("st-a", "age 1").await?, "ok");
        logged(&d, &operator, |e| {
            e["action"] == "door_opened"
                && e["outcome"] == "opened with no latch released"
                && e["target"] == "st-a:S001"
        })
        .await?;
        let station = StationId::new("st-a")?;
        let today = lockergrid_model::DeviceDay::index(d.gateway.app.store.now());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let days = d.gateway.app.store.device_days(&station, today)?;
            if days
                .first()
                .is_some_and(|d| d.day == today && d.stray_doors == 4)
            {
                break;
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "day {day}: {days:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if day < 2 {
            let changes = node.maintenance_due(&station).await?;
            assert!(
                changes.raised.is_empty(),
                "day {day}: too soon: {changes:?}"
            );
            clock.advance(Duration::from_secs(86_400));
        }
    }
    let changes = node.maintenance_due(&StationId::new("st-a")?).await?;
    assert_eq!(changes.raised.len(), 1, "{changes:?}");
    assert_eq!(changes.raised[0].code, "door-sensor-flapping");
    assert!(
        changes.raised[0].message.contains("12 door movements"),
        "{:?}",
        changes.raised[0]
    );
    let healthy = node.maintenance_due(&StationId::new("st-b")?).await?;
    assert!(healthy.raised.is_empty(), "{healthy:?}");
    Ok(())
}
