//! Reservations: create (idempotent), read, release, and the agent's deposit.

use super::App;
use super::extract::{ApiJson, ApiPath, Caller};
use super::problem::ApiError;
use super::stations::{candidate_json, validate_area};
use crate::auth::Role;
use crate::contacts::{self, Contact, ContactKeys};
use crate::devices::DoorEnd;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use lockergrid_model::NotifyChannel;
use lockergrid_model::World;
use lockergrid_model::{AccessAttempt, AccessMethod, AccessRole};
use lockergrid_model::{CommandRecord, DecidedBy, NotifyRecipient, Reservation};
use lockergrid_model::{RankQuery, nearest_with_room, rank_stations};
use lockergrid_node::{Denied, UNLOCK_VALID};
use lockergrid_plugin_host::{Decider, RankRequest};
use lockergrid_protocol::{GeoPoint, OrderId, ParcelSpec, ReservationId, Size, StationId, Tier};
use lockergrid_store::{IdempotencyKey, ReserveError, ReserveRequest, Reserved, Target};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Longest `Idempotency-Key` accepted.
const MAX_KEY_LEN: usize = 255;
/// How many alternative stations a 409 offers.
const ALTERNATIVES: usize = 3;

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Near {
    lat: f64,
    lon: f64,
    radius_m: f64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateReservation {
    order_id: OrderId,
    parcel: ParcelSpec,
    tier: Tier,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    station_id: Option<StationId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    near: Option<Near>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recipient: Option<RecipientBody>,
}

/// Who hears about the parcel and how; without it, the order's customer by push, SMS, e-mail.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecipientBody {
    id: String,
    channels: Vec<NotifyChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quiet_hours: Option<[u16; 2]>,
    contact: Contact,
}

/// Longest recipient id accepted.
const MAX_RECIPIENT_ID: usize = 128;

fn recipient(body: &CreateReservation, keys: &ContactKeys) -> Result<NotifyRecipient, ApiError> {
    let Some(r) = &body.recipient else {
        return Ok(NotifyRecipient {
            id: body.order_id.to_string(),
            channels: vec![
                NotifyChannel::Push,
                NotifyChannel::Sms,
                NotifyChannel::Email,
            ],
            quiet_hours: None,
            contact: None,
        });
    };
    sealed_recipient(&body.order_id, r, keys)
}

/// A recipient as a request names it, checked, with its addresses sealed for `order`.
pub(super) fn sealed_recipient(
    order: &OrderId,
    r: &RecipientBody,
    keys: &ContactKeys,
) -> Result<NotifyRecipient, ApiError> {
    if r.id.is_empty()
        || r.id.len() > MAX_RECIPIENT_ID
        || !r.id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::invalid(format!(
            "recipient.id must be 1 to {MAX_RECIPIENT_ID} visible ASCII characters"
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if r.channels.is_empty() || !r.channels.iter().all(|c| seen.insert(*c)) {
        return Err(ApiError::invalid(
            "recipient.channels must name at least one channel, each once",
        ));
    }
    if let Some(hours) = r.quiet_hours
        && hours.iter().any(|m| *m >= 24 * 60)
    {
        return Err(ApiError::invalid(
            "recipient.quiet_hours are minutes since local midnight, 0 to 1439",
        ));
    }
    r.contact.check(&r.channels).map_err(ApiError::invalid)?;
    let bound = contacts::binding(order.as_str(), &r.id);
    Ok(NotifyRecipient {
        id: r.id.clone(),
        channels: r.channels.clone(),
        quiet_hours: r.quiet_hours.map(|[start, end]| (start, end)),
        contact: Some(Box::new(keys.seal(&r.contact, &bound))),
    })
}

/// A reservation as the API shows it.
pub(super) fn reservation_json(r: &Reservation) -> Value {
    json!({
        "id": r.id,
        "order_id": r.order_id,
        "parcel_id": r.parcel_id,
        "station_id": r.station_id,
        "compartment_id": r.compartment_id,
        "size": r.size,
        "tier": r.tier,
        "created_at": r.created_at,
        "hold_until": r.hold_until,
        "status": r.status,
    })
}

/// The caller's `Idempotency-Key`, if it sent one, scoped to the caller and to `what` it creates
/// (keys are per token subject, and a reservation's key never answers for a return).
pub(super) fn idempotency_key(
    headers: &HeaderMap,
    caller: &Caller,
    what: &str,
) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
        })?;
    Ok(Some(match what {
        "reservation" => format!("{}\n{key}", caller.claims.sub),
        _ => format!("{what}\n{}\n{key}", caller.claims.sub),
    }))
}

/// SHA-256 of a request body's canonical form, hex: what a replayed key must match.
pub(super) fn fingerprint(body: &impl Serialize) -> String {
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    lockergrid_protocol::to_hex(&Sha256::digest(&canonical))
}

pub(super) async fn create(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreateReservation>,
) -> Result<Response, ApiError> {
    caller.permit(&app, &[Role::Checkout], None).await?;
    let key = idempotency_key(&headers, &caller, "reservation")?
        .ok_or_else(|| ApiError::bad_request("the Idempotency-Key header is required"))?;
    let size = body
        .parcel
        .smallest_size()
        .map_err(|e| ineligible(&app, e))?;
    let recipient = recipient(&body, &app.contacts)?;
    let Chosen {
        target,
        origin,
        hold_minutes,
        decider,
    } = target(&app, &body, size).await?;
    let hold = hold_minutes.map_or(app.hold, |m| Duration::from_secs(u64::from(m) * 60));
    let request = ReserveRequest {
        order_id: body.order_id.clone(),
        parcel: body.parcel,
        tier: body.tier,
        target,
        hold,
        idempotency: Some(IdempotencyKey {
            key,
            fingerprint: fingerprint(&body),
        }),
        actor: caller.actor(),
        decided_by: Some(decider.decided_by(World::ReservationPolicy)),
        recipient: Some(recipient),
    };
    match app.store.reserve(request).await {
        Ok(reserved) => Ok(created(&app, reserved)),
        Err(e) => Err(reserve_error(&app, e, origin, size)),
    }
}

/// Where to reserve, the point alternatives are measured from, and the reservation policy's
/// decision.
struct Chosen {
    /// The station named, or the stations in the policy's order.
    target: Target,
    /// The point alternatives are measured from.
    origin: Option<GeoPoint>,
    /// The hold the policy chose; `None` means the node's default.
    hold_minutes: Option<u32>,
    /// Who decided.
    decider: Decider,
}

async fn target(app: &App, body: &CreateReservation, size: Size) -> Result<Chosen, ApiError> {
    let request = RankRequest {
        parcel: body.parcel,
        size,
        tier: body.tier,
    };
    let now = app.store.now();
    match (&body.station_id, &body.near) {
        (Some(id), None) => {
            let origin = app.store.snapshot().station(id).map(|s| s.record.location);
            let placement = app.plugins.place(request, None, Some(id), now).await;
            Ok(Chosen {
                target: Target::Station(id.clone()),
                origin,
                hold_minutes: placement.hold_minutes,
                decider: placement.decider,
            })
        }
        (None, Some(near)) => {
            let at = validate_area(near.lat, near.lon, near.radius_m)?;
            let query = RankQuery {
                at,
                radius_m: near.radius_m,
                size,
            };
            let snapshot = app.store.snapshot();
            let candidates = rank_stations(&snapshot, &query);
            let placement = app
                .plugins
                .place(request, Some(candidates), None, now)
                .await;
            let ranked = placement
                .candidates
                .iter()
                .map(|c| c.station.record.id.clone())
                .collect();
            Ok(Chosen {
                target: Target::Ranked(ranked),
                origin: Some(at),
                hold_minutes: placement.hold_minutes,
                decider: placement.decider,
            })
        }
        _ => Err(ApiError::invalid("give exactly one of station_id and near")),
    }
}

fn created(app: &App, reserved: Reserved) -> Response {
    app.metrics.reservation(if reserved.replayed {
        "replayed"
    } else {
        "held"
    });
    let r = &reserved.reservation;
    let mut response = (StatusCode::CREATED, Json(reservation_json(r))).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/reservations/{}", r.id)) {
        headers.insert(header::LOCATION, location);
    }
    if reserved.replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn ineligible(app: &App, e: lockergrid_protocol::Ineligible) -> ApiError {
    app.metrics.reservation("refused");
    ineligible_parcel(e)
}

/// 422: the parcel is over a locker's limits (or has a zero dimension), naming the limit.
pub(super) fn ineligible_parcel(e: lockergrid_protocol::Ineligible) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "ineligible-parcel",
        "Parcel cannot go into a locker",
        e.to_string(),
    )
    .with("limit", json!(e.limit()))
}

fn reserve_error(app: &App, e: ReserveError, origin: Option<GeoPoint>, size: Size) -> ApiError {
    match e {
        ReserveError::NoCapacity(_) => {
            app.metrics.reservation("no_capacity");
            app.metrics.conflicts.inc();
            let snapshot = app.store.snapshot();
            let alternatives: Vec<Value> = origin
                .map(|at| nearest_with_room(&snapshot, at, size, ALTERNATIVES))
                .unwrap_or_default()
                .iter()
                .map(candidate_json)
                .collect();
            ApiError::new(
                StatusCode::CONFLICT,
                "no-capacity",
                "No compartment free",
                format!("no free compartment of size {size} or larger"),
            )
            .with("alternatives", json!(alternatives))
        }
        ReserveError::Ineligible(e) => ineligible(app, e),
        ReserveError::UnknownStation(id) => ApiError::invalid(format!("unknown station {id:?}")),
        ReserveError::StationInactive(id) => {
            ApiError::conflict(format!("station {id:?} is not in service"))
        }
        ReserveError::IdempotencyMismatch => super::problem::key_reused(),
        ReserveError::Store(e) => ApiError::from(e),
    }
}

/// Loads a reservation for a caller; scoped roles see only their stations' reservations.
async fn load(
    app: &App,
    caller: &Caller,
    raw: &str,
    roles: &[Role],
) -> Result<Reservation, ApiError> {
    let find = |id: &ReservationId| app.store.reservation(id);
    caller.load(app, raw, "reservation", roles, find).await
}

pub(super) async fn get_one(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let roles = &[Role::Checkout, Role::Operator, Role::Agent];
    let r = load(&app, &caller, &raw, roles).await?;
    Ok(Json(reservation_json(&r)))
}

pub(super) async fn release(
    State(app): State<Arc<App>>,
    caller: Caller,
    ApiPath(raw): ApiPath,
) -> Result<Json<Value>, ApiError> {
    let r = load(&app, &caller, &raw, &[Role::Checkout, Role::Operator]).await?;
    let released = app
        .store
        .release(r.id, caller.actor())
        .await
        .map_err(ApiError::from)?;
    Ok(Json(reservation_json(&released)))
}

/// Longest an agent's deposit request waits for the door to close (`Prefer: wait=N` asks for
/// less); it stays under the API's request timeout.
const DEPOSIT_WAIT: Duration = Duration::from_secs(8);

/// The wait a `Prefer: wait=N` header (RFC 7240) asks for, at most [`DEPOSIT_WAIT`].
pub(super) fn preferred_wait(headers: &HeaderMap) -> Result<Duration, ApiError> {
    let Some(prefer) = headers.get("prefer") else {
        return Ok(DEPOSIT_WAIT);
    };
    let wait = prefer
        .to_str()
        .ok()
        .into_iter()
        .flat_map(|v| v.split([',', ';']))
        .find_map(|p| p.trim().strip_prefix("wait="))
        .map(|n| n.trim().parse::<u64>());
    match wait {
        None => Ok(DEPOSIT_WAIT),
        Some(Ok(secs)) => Ok(Duration::from_secs(secs).min(DEPOSIT_WAIT)),
        Some(Err(_)) => Err(ApiError::bad_request(
            "Prefer: wait= takes a whole number of seconds",
        )),
    }
}

/// The agent's deposit: the site's rules are asked, the locker gets a signed unlock for the
/// reservation's compartment, and the deposit counts when the locker reports the door closed
/// again. The request waits for that (see [`preferred_wait`]): 200 once the parcel is stored, or
/// 202 while the door is still open (the parcel then shows `stored` once it closes). The pickup
/// code goes to the customer alone, in the message the deposit writes; no answer carries it.
pub(super) async fn deposit(
    State(app): State<Arc<App>>,
    caller: Caller,
    headers: HeaderMap,
    ApiPath(raw): ApiPath,
) -> Result<Response, ApiError> {
    let wait = preferred_wait(&headers)?;
    let r = load(&app, &caller, &raw, &[Role::Agent]).await?;
    if !app.devices.online(&r.station_id, app.store.now()) {
        return Err(super::problem::locker_offline(&r.station_id));
    }
    let attempt = AccessAttempt {
        station: r.station_id.clone(),
        compartment: r.compartment_id.clone(),
        role: AccessRole::Agent,
        method: AccessMethod::Credential,
        at: app.store.now(),
        local_minute: app.local_minute(),
        climate_controlled: app
            .node
            .climate_controlled(&r.station_id, &r.compartment_id),
    };
    let decided_by = site_rules(&app, &caller, &attempt, "deposit", r.id.as_str()).await?;
    let command = app
        .store
        .unlock_for_deposit(r.id.clone(), caller.actor(), Some(decided_by), UNLOCK_VALID)
        .await
        .map_err(ApiError::from)?;
    let Some(end) = send_and_wait(&app, &command, wait).await else {
        let about = json!({
            "reservation_id": r.id,
            "parcel_id": r.parcel_id,
            "station_id": r.station_id,
        });
        return Ok(awaiting_door(&command, about));
    };
    match end {
        DoorEnd::Deposited(deposit) => {
            let p = &deposit.parcel;
            Ok(Json(json!({
                "reservation_id": r.id,
                "parcel_id": p.id,
                "station_id": p.station_id,
                "compartment_id": p.compartment_id,
                "command_id": command.id,
                "status": p.status,
                "pickup_expires_at": p.pickup_expires_at,
            }))
            .into_response())
        }
        DoorEnd::NotUnlocked(command) => Err(not_unlocked(command)),
        DoorEnd::Collected(_) | DoorEnd::ParcelReturned(_) => Err(ApiError::conflict(format!(
            "command {} completed a collection",
            command.id
        ))),
        DoorEnd::Conflict(reason) => Err(ApiError::conflict(reason)),
    }
}

/// Hands `command` to the lockers and waits up to `wait` for its door to close again; `None`
/// when the door is still open then.
pub(super) async fn send_and_wait(
    app: &App,
    command: &CommandRecord,
    wait: Duration,
) -> Option<DoorEnd> {
    let ended = app.devices.watch_door(&command.id);
    app.devices.send(command.clone());
    match tokio::time::timeout(wait, ended).await {
        Ok(Ok(end)) => Some(end),
        Ok(Err(_)) | Err(_) => {
            app.devices.forget_door(&command.id);
            None
        }
    }
}

/// 202: the unlock went out and its door has not closed yet; `about` names what it is for.
pub(super) fn awaiting_door(command: &CommandRecord, mut about: Value) -> Response {
    about["compartment_id"] = json!(command.compartment_id);
    about["command_id"] = json!(command.id);
    about["status"] = json!("awaiting_door");
    about["unlock_expires_at"] = json!(command.expires_at);
    (StatusCode::ACCEPTED, Json(about)).into_response()
}

/// 503: the locker refused or failed an unlock, or never acknowledged it.
pub(super) fn not_unlocked(command: CommandRecord) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "locker-did-not-unlock",
        "The locker did not open",
        format!(
            "unlock command {} {}{}",
            command.id,
            command.status.as_str(),
            command.detail.map(|d| format!(": {d}")).unwrap_or_default()
        ),
    )
    .with("command_status", json!(command.status))
}

/// Asks the site's rules about `attempt`; a denial is written to the access log with the plugin
/// that made it and answered 403 with the site's reason.
pub(super) async fn site_rules(
    app: &App,
    caller: &Caller,
    attempt: &AccessAttempt,
    action: &str,
    target: &str,
) -> Result<DecidedBy, ApiError> {
    match app.node.check_access(attempt).await {
        Ok(decided_by) => Ok(decided_by),
        Err(Denied { reason, decided_by }) => {
            let outcome = format!("denied by site rules: {reason}");
            app.store
                .record(caller.actor(), action, target, &outcome, Some(decided_by))
                .await?;
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "site-rules-denied",
                "The site does not allow this now",
                reason,
            ))
        }
    }
}
