//! Malformed, oversized, mistyped and out-of-range requests to every route: each gets a 4xx
//! problem document, never a 5xx, and the store's business state does not change.

use lockergrid_gateway::auth::Role;
use lockergrid_tests::{Deployment, Running, small_parcel};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// Cases generated per run.
const CASES: u32 = 3_000;

/// One request to send: method, path and query, token role, content type, body.
#[derive(Debug, Clone)]
struct Bad {
    method: &'static str,
    path: String,
    role: Option<Role>,
    content_type: Option<&'static str>,
    idempotency_key: Option<String>,
    body: Vec<u8>,
}

fn bad_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1.5)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        Just(json!("")),
        Just(json!("x".repeat(300))),
        Just(json!([])),
        Just(json!({})),
        Just(json!(true)),
    ]
}

fn valid_reservation() -> Value {
    json!({ "order_id": "o-1", "parcel": small_parcel(), "tier": "standard", "station_id": "st-a" })
}

/// A reservation body that is wrong in exactly one way.
fn broken_reservation() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        Just("/order_id"),
        Just("/parcel"),
        Just("/parcel/length_mm"),
        Just("/parcel/width_mm"),
        Just("/parcel/height_mm"),
        Just("/parcel/weight_g"),
        Just("/tier"),
        Just("/station_id"),
    ];
    let corrupted = (field, bad_value()).prop_map(|(field, value)| {
        let mut body = valid_reservation();
        if let Some(slot) = body.pointer_mut(field) {
            *slot = value;
        }
        body
    });
    let out_of_range = prop_oneof![
        (483u32..100_000).prop_map(
            |side| json!({ "length_mm": side, "width_mm": 10, "height_mm": 10, "weight_g": 10 })
        ),
        (15_876u32..10_000_000).prop_map(
            |g| json!({ "length_mm": 10, "width_mm": 10, "height_mm": 10, "weight_g": g })
        ),
        (451u32..=482)
            .prop_map(|s| json!({ "length_mm": s, "width_mm": s, "height_mm": s, "weight_g": 10 })),
    ]
    .prop_map(|parcel| {
        let mut body = valid_reservation();
        body["parcel"] = parcel;
        body
    });
    let wrong_target = prop_oneof![
        Just(json!({ "station_id": "no-such-station" })),
        Just(json!({ "station_id": "bad id/../x" })),
        Just(json!({ "station_id": "st-a", "near": { "lat": 52.37, "lon": 4.89, "radius_m": 100 } })),
        (90.001f64..1e6).prop_map(|lat| json!({ "station_id": null, "near": { "lat": lat, "lon": 4.89, "radius_m": 100 } })),
        (-1e6f64..0.999).prop_map(|r| json!({ "station_id": null, "near": { "lat": 52.37, "lon": 4.89, "radius_m": r } })),
        (50_000.001f64..1e9).prop_map(|r| json!({ "station_id": null, "near": { "lat": 52.37, "lon": 4.89, "radius_m": r } })),
    ]
    .prop_map(|target| {
        let mut body = valid_reservation();
        for (k, v) in target.as_object().cloned().unwrap_or_default() {
            if v.is_null() {
                body.as_object_mut().map(|o| o.remove(&k));
            } else {
                body[k] = v;
            }
        }
        body
    });
    let extra = any::<String>().prop_map(|k| {
        let mut body = valid_reservation();
        body[format!("extra-{k}")] = json!(1);
        body
    });
    prop_oneof![corrupted, out_of_range, wrong_target, extra]
}

fn raw_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        Just(b"{".to_vec()),
        Just(b"[1,2".to_vec()),
        Just(b"null".to_vec()),
        Just(b"\"text\"".to_vec()),
        Just(vec![b' '; 70 * 1024]),
        (65 * 1024usize..200 * 1024).prop_map(|n| {
            let mut body = b"{\"order_id\":\"".to_vec();
            body.resize(n, b'a');
            body.extend_from_slice(b"\"}");
            body
        }),
    ]
}

fn reservation_request() -> impl Strategy<Value = Bad> {
    let json_bodies = broken_reservation().prop_map(|b| b.to_string().into_bytes());
    (
        prop_oneof![json_bodies, raw_body()],
        prop_oneof![
            Just(Some("application/json")),
            Just(Some("text/plain")),
            Just(None)
        ],
        prop_oneof![
            Just(Some("k-1".to_owned())),
            Just(None),
            Just(Some("k".repeat(300))),
            Just(Some("with space".to_owned())),
        ],
    )
        .prop_map(|(body, content_type, key)| Bad {
            method: "POST",
            path: "/v1/reservations".into(),
            role: Some(Role::Checkout),
            content_type,
            idempotency_key: key,
            body,
        })
}

fn station_query() -> impl Strategy<Value = Bad> {
    let query = prop_oneof![
        Just("".to_owned()),
        Just("lat=52.37&lon=4.89&radius_m=1000".to_owned()),
        Just("lat=52.37&lon=4.89&radius_m=1000&size=huge".to_owned()),
        Just("lat=abc&lon=4.89&radius_m=1000&size=small".to_owned()),
        Just("lat=52.37&lon=4.89&radius_m=1000&size=small&extra=1".to_owned()),
        Just("lat=NaN&lon=4.89&radius_m=1000&size=small".to_owned()),
        Just("lat=%FF&lon=4.89&radius_m=1000&size=small".to_owned()),
        (90.001f64..1e9).prop_map(|lat| format!("lat={lat}&lon=4.89&radius_m=1000&size=small")),
        (180.001f64..1e9).prop_map(|lon| format!("lat=52&lon=-{lon}&radius_m=1000&size=small")),
        (-1e9f64..0.999).prop_map(|r| format!("lat=52&lon=4&radius_m={r}&size=small")),
        "[a-z=&%0-9]{0,40}".prop_map(|q| format!("size=small&{q}")),
    ];
    query.prop_map(|q| Bad {
        method: "GET",
        path: format!("/v1/stations?{q}"),
        role: Some(Role::Checkout),
        content_type: None,
        idempotency_key: None,
        body: Vec::new(),
    })
}

fn unknown_ids() -> impl Strategy<Value = Bad> {
    let routes = prop_oneof![
        Just(("GET", "/v1/stations/{}", Role::Checkout)),
        Just(("GET", "/v1/reservations/{}", Role::Checkout)),
        Just(("DELETE", "/v1/reservations/{}", Role::Checkout)),
        Just(("POST", "/v1/reservations/{}/deposit", Role::Agent)),
        Just(("GET", "/v1/parcels/{}", Role::Operator)),
        Just(("POST", "/v1/parcels/{}/collect", Role::Carrier)),
        Just(("POST", "/v1/parcels/{}/code", Role::Checkout)),
    ];
    (routes, "[A-Za-z0-9._:%~-]{1,80}").prop_map(|((method, path, role), id)| Bad {
        method,
        path: path.replace("{}", &id),
        role: Some(role),
        content_type: None,
        idempotency_key: None,
        body: Vec::new(),
    })
}

fn code_entries() -> impl Strategy<Value = Bad> {
    let body = prop_oneof![
        "[0-9]{0,7}".prop_map(|c| json!({ "code": c }).to_string().into_bytes()),
        "[0-9]{9,20}".prop_map(|c| json!({ "code": c }).to_string().into_bytes()),
        "[0-9]{8}".prop_map(|c| json!({ "code": c }).to_string().into_bytes()),
        bad_value().prop_map(|v| json!({ "code": v }).to_string().into_bytes()),
        Just(
            json!({ "code": "12345678", "more": 1 })
                .to_string()
                .into_bytes()
        ),
        raw_body(),
    ];
    body.prop_map(|body| Bad {
        method: "POST",
        path: "/v1/stations/st-a/code-entry".into(),
        role: Some(Role::Station),
        content_type: Some("application/json"),
        idempotency_key: None,
        body,
    })
}

fn plugin_admin() -> impl Strategy<Value = Bad> {
    let garbage = proptest::collection::vec(any::<u8>(), 0..2_048);
    let push = (
        prop_oneof![
            Just(json!("reservation-policy")),
            Just(json!("site-rules")),
            Just(json!("no-such-world")),
            bad_value(),
        ],
        prop_oneof![
            Just(json!("default")),
            Just(json!("station:st-a")),
            Just(json!("region:")),
            Just(json!("planet:mars")),
            bad_value(),
        ],
        prop_oneof![
            Just(json!("p")),
            Just(json!("")),
            Just(json!("../../etc/passwd")),
            bad_value()
        ],
        garbage,
        prop_oneof![
            Just(None),
            Just(Some("ed25519 00 11".to_owned())),
            "[ -~]{0,200}".prop_map(Some),
        ],
        any::<bool>(),
    )
        .prop_map(|(world, scope, name, bytes, signature, encode)| {
            use base64::Engine as _;
            let component = if encode {
                json!(base64::engine::general_purpose::STANDARD.encode(&bytes))
            } else {
                json!("%%% not base64 %%%")
            };
            json!({
                "world": world, "scope": scope, "name": name, "version": "1",
                "sha256": lockergrid_model::sha256_hex(&bytes),
                "signature": signature, "component": component,
            })
            .to_string()
            .into_bytes()
        });
    let restore = prop_oneof![
        Just(json!({ "world": "reservation-policy", "scope": "default" })),
        Just(json!({ "world": "site-rules", "scope": "station:nowhere" })),
        bad_value().prop_map(|v| json!({ "world": v, "scope": "default" })),
    ]
    .prop_map(|v| v.to_string().into_bytes());
    let (push_path, restore_path) = ("/v1/admin/plugins", "/v1/admin/plugins/restore");
    prop_oneof![
        prop_oneof![push, raw_body()].prop_map(move |body| (push_path, body)),
        prop_oneof![restore, raw_body()].prop_map(move |body| (restore_path, body)),
    ]
    .prop_map(|(path, body)| Bad {
        method: "POST",
        path: path.into(),
        role: Some(Role::Operator),
        content_type: Some("application/json"),
        idempotency_key: None,
        body,
    })
}

fn wrong_auth_or_method() -> impl Strategy<Value = Bad> {
    let paths = prop_oneof![
        Just("/v1/stations/st-a"),
        Just("/v1/reservations"),
        Just("/v1/admin/access-log"),
        Just("/v1/admin/outbox"),
        Just("/v1/admin/plugins"),
        Just("/v1/parcels/p"),
    ];
    let method = prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("PUT"),
        Just("PATCH"),
        Just("DELETE")
    ];
    (paths, method, proptest::option::of(Just(Role::Station))).prop_map(|(path, method, role)| {
        Bad {
            method,
            path: path.to_owned(),
            role,
            content_type: Some("application/json"),
            idempotency_key: None,
            body: b"{}".to_vec(),
        }
    })
}

fn any_bad_request() -> impl Strategy<Value = Bad> {
    prop_oneof![
        3 => reservation_request(),
        2 => station_query(),
        2 => unknown_ids(),
        2 => code_entries(),
        2 => plugin_admin(),
        1 => wrong_auth_or_method(),
        1 => "/[a-z/]{0,30}".prop_map(|path| Bad {
            method: "GET",
            path: format!("/nope{path}"),
            role: None,
            content_type: None,
            idempotency_key: None,
            body: Vec::new(),
        }),
    ]
}

async fn send(d: &Running, bad: &Bad) -> anyhow::Result<(u16, Option<String>, Value)> {
    let method = reqwest::Method::from_bytes(bad.method.as_bytes())?;
    // A fresh connection per case: the server closes a connection whose body it refused to read,
    // and a pooled client could otherwise race that close with its next request.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let mut request = client.request(method, format!("{}{}", d.base, bad.path));
    if let Some(role) = bad.role {
        let stations: &[&str] = if role.is_scoped() { &["st-a"] } else { &[] };
        request = request.bearer_auth(d.token("fuzz", role, stations)?);
    }
    if let Some(ct) = bad.content_type {
        request = request.header("content-type", ct);
    }
    if let Some(key) = &bad.idempotency_key {
        request = request.header("idempotency-key", key);
    }
    let response = request
        .body(bad.body.clone())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_slice(&response.bytes().await?).unwrap_or(Value::Null);
    Ok((status, content_type, body))
}

#[test]
fn malformed_requests_get_4xx_problems_and_leave_the_store_unchanged() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let d = runtime.block_on(Deployment::new().station("st-a", 30).start())?;
    let store = d.gateway.app.store.clone();
    let before = store.state_digest()?;
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&any_bad_request(), |bad| {
        let (status, content_type, body) = runtime
            .block_on(send(&d, &bad))
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        prop_assert!((400..500).contains(&status), "{bad:?} got {status}: {body}");
        prop_assert_eq!(
            content_type.as_deref(),
            Some("application/problem+json"),
            "{:?}",
            bad
        );
        prop_assert!(
            body["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("urn:lockergrid:problem:")),
            "{bad:?}: {body}"
        );
        prop_assert_eq!(body["status"].as_u64(), Some(u64::from(status)));
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
    assert_eq!(store.state_digest()?, before, "bad input changed the store");
    runtime.block_on(d.stop())
}
