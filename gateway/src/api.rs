//! The HTTP checkout API: [`router`] builds every route with its layers, [`serve`] runs it on a
//! listener until the shutdown future resolves.

mod admin;
mod alerts;
mod compartments;
mod connections;
mod devices;
pub mod extract;
mod firmware;
mod notifications;
pub mod openapi;
mod parcels;
mod plugins;
pub mod problem;
mod reservations;
mod returns;
mod rollouts;
mod stations;
mod system;
mod tokens;

use crate::auth::keyring::Keyring;
use crate::auth::revocations::Revocations;
use crate::contacts::ContactKeys;
use crate::devices::Devices;
use crate::metrics::{Metrics, RequestLabels, RouteLabels};
use crate::plugins::PluginStore;
use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use lockergrid_node::Node;
use lockergrid_plugin_host::PluginHost;
use lockergrid_store::Store;
use problem::ApiError;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::trace::TraceLayer;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;
/// Largest plugin push accepted: a component of up to 8 MiB, base64-encoded, with its binding.
pub const PLUGIN_BODY_LIMIT: usize = 12 * 1024 * 1024;
/// The largest firmware image an upload may carry.
pub const FIRMWARE_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// Limits the API enforces on every route.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Requests handled at once; more are shed with 503 and `Retry-After`.
    pub max_in_flight: usize,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Connections open at once; a new one beyond takes the place of the one idle the longest.
    /// Keep it well below the process's file-descriptor limit, which the device listener and
    /// the store share.
    pub max_connections: usize,
    /// How long a client has to send a request's head, on a new connection and between the
    /// requests of a kept-alive one, before the connection is closed.
    pub header_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_in_flight: 1_024,
            request_timeout: Duration::from_secs(10),
            max_connections: 2_048,
            header_timeout: Duration::from_secs(10),
        }
    }
}

/// What every handler shares.
pub struct App {
    /// The node's store.
    pub store: Store,
    /// The token keys: verify bearer tokens; operators rotate and retire them.
    pub tokens: std::sync::RwLock<Keyring>,
    /// Tokens revoked before they expire.
    pub revocations: std::sync::RwLock<Revocations>,
    /// Seals recipients' addresses.
    pub contacts: ContactKeys,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// How long a reservation holds its compartment unless the policy chooses.
    pub hold: Duration,
    /// The plugin host that ranks, holds, checks access and routes notifications.
    pub plugins: Arc<PluginHost>,
    /// Where plugins and the policy in force are kept.
    pub plugin_store: Arc<PluginStore>,
    /// The gateway's node: code entries on a station's screen go to it, as keypad codes do.
    pub node: Arc<Node>,
    /// What the lockers report.
    pub devices: Arc<Devices>,
    /// The device registry and the CA that certifies its devices.
    pub fleet: Arc<crate::fleet::Fleet>,
    /// The firmware images it holds for its lockers.
    pub firmware: Arc<crate::firmware::FirmwareStore>,
    /// Its firmware rollouts.
    pub rollouts: Arc<crate::rollouts::Rollouts>,
    /// The channels notifications leave through.
    pub notifications: Arc<crate::notifications::Channels>,
    /// One push at a time, so the policy file is rewritten in order.
    push_lock: tokio::sync::Mutex<()>,
}

/// What [`App::new`] builds the API's state from.
pub struct AppParts {
    /// The node's store.
    pub store: Store,
    /// The token keys.
    pub tokens: Keyring,
    /// The revocations in force.
    pub revocations: Revocations,
    /// Seals recipients' addresses.
    pub contacts: ContactKeys,
    /// The default hold.
    pub hold: Duration,
    /// The plugin host.
    pub plugins: Arc<PluginHost>,
    /// The plugin directory.
    pub plugin_store: Arc<PluginStore>,
    /// The gateway's node.
    pub node: Arc<Node>,
    /// What the lockers report.
    pub devices: Arc<Devices>,
    /// The device registry.
    pub fleet: Arc<crate::fleet::Fleet>,
    /// The firmware images.
    pub firmware: Arc<crate::firmware::FirmwareStore>,
    /// The firmware rollouts.
    pub rollouts: Arc<crate::rollouts::Rollouts>,
    /// The channels notifications leave through.
    pub notifications: Arc<crate::notifications::Channels>,
}

impl App {
    /// Shared state for the API.
    pub fn new(parts: AppParts) -> Arc<App> {
        Arc::new(App {
            metrics: Metrics::new(
                parts.store.clone(),
                parts.plugins.clone(),
                parts.devices.clone(),
            ),
            store: parts.store,
            tokens: std::sync::RwLock::new(parts.tokens),
            revocations: std::sync::RwLock::new(parts.revocations),
            contacts: parts.contacts,
            hold: parts.hold,
            plugins: parts.plugins,
            plugin_store: parts.plugin_store,
            node: parts.node,
            devices: parts.devices,
            fleet: parts.fleet,
            firmware: parts.firmware,
            rollouts: parts.rollouts,
            notifications: parts.notifications,
            push_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// The claims of a bearer token signed by a key of the ring, current and not revoked.
    pub fn verify_token(
        &self,
        token: &str,
    ) -> Result<crate::auth::Claims, crate::auth::TokenError> {
        let claims = self
            .tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .verify(token, self.store.now())?;
        self.revocations
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .check(&claims)?;
        Ok(claims)
    }

    /// Minutes since local midnight at the stations now.
    pub fn local_minute(&self) -> u16 {
        self.local_minute_at(self.store.now())
    }

    /// Minutes since local midnight at the stations at `at`.
    pub fn local_minute_at(&self, at: lockergrid_protocol::Timestamp) -> u16 {
        self.node.local_minute_at(at)
    }
}

/// Every route of the API with its layers.
pub fn router(app: Arc<App>, limits: Limits) -> Router {
    Router::new()
        .route("/v1/stations", get(stations::list))
        .route("/v1/stations/{id}", get(stations::get_one))
        .route("/v1/stations/{id}/code-entry", post(stations::code_entry))
        .route("/v1/stations/{id}/health", get(stations::health))
        .route("/v1/stations/{id}/telemetry", get(stations::telemetry))
        .route("/v1/reservations", post(reservations::create))
        .route(
            "/v1/reservations/{id}",
            get(reservations::get_one).delete(reservations::release),
        )
        .route("/v1/reservations/{id}/deposit", post(reservations::deposit))
        .route("/v1/parcels/{id}", get(parcels::get_one))
        .route("/v1/parcels/{id}/collect", post(parcels::collect))
        .route("/v1/parcels/{id}/code", post(parcels::reissue_code))
        .route("/v1/returns", post(returns::create))
        .route("/v1/returns/{id}", get(returns::get_one))
        .route("/v1/returns/{id}/collect", post(returns::collect))
        .route("/v1/stations/{id}/returns", get(returns::at_station))
        .route("/v1/stations/{id}/parcels", get(parcels::to_collect))
        .route("/v1/admin/access-log", get(admin::access_log))
        .route("/v1/admin/outbox", get(admin::outbox))
        .route("/v1/admin/notifications", get(notifications::list))
        .route(
            "/v1/admin/notifications/{id}/requeue",
            post(notifications::requeue),
        )
        .route("/v1/callbacks/sms", post(notifications::sms_callback))
        .route("/v1/admin/edges", get(admin::edges))
        .route(
            "/v1/admin/devices",
            get(devices::list).post(devices::provision),
        )
        .route("/v1/admin/devices/{id}", get(devices::get_one))
        .route("/v1/admin/alerts", get(alerts::list))
        .route(
            "/v1/admin/alerts/{id}/acknowledge",
            post(alerts::acknowledge),
        )
        .route("/v1/admin/alerts/{id}/resolve", post(alerts::resolve))
        .route(
            "/v1/admin/stations/{id}/lockdown-override",
            put(admin::override_lockdown).delete(admin::end_lockdown_override),
        )
        .route(
            "/v1/admin/stations/{id}/clear-lockdown",
            post(admin::clear_lockdown),
        )
        .route(
            "/v1/admin/compartments/{id}/out-of-service",
            post(compartments::out_of_service),
        )
        .route(
            "/v1/admin/compartments/{id}/in-service",
            post(compartments::in_service),
        )
        .route("/v1/admin/devices/{id}/suspend", post(devices::suspend))
        .route("/v1/admin/devices/{id}/resume", post(devices::resume))
        .route(
            "/v1/admin/devices/{id}/decommission",
            post(devices::decommission),
        )
        .route("/v1/admin/stations/{id}/status", put(admin::station_status))
        .route(
            "/v1/admin/stations/{id}/site-rules-override",
            put(admin::override_site_rules).delete(admin::end_site_rules_override),
        )
        .route(
            "/v1/admin/plugins",
            get(plugins::list)
                .post(plugins::push)
                .layer(DefaultBodyLimit::max(PLUGIN_BODY_LIMIT)),
        )
        .route(
            "/v1/admin/token-keys",
            get(tokens::keys).post(tokens::rotate),
        )
        .route("/v1/admin/token-keys/{id}", delete(tokens::retire))
        .route(
            "/v1/admin/revocations",
            get(tokens::revocations).post(tokens::revoke),
        )
        .route(
            "/v1/admin/firmware",
            get(firmware::list)
                .post(firmware::upload)
                .layer(DefaultBodyLimit::max(FIRMWARE_BODY_LIMIT)),
        )
        .route(
            "/v1/admin/rollouts",
            get(rollouts::list).post(rollouts::create),
        )
        .route("/v1/admin/rollouts/{id}", get(rollouts::get_one))
        .route("/v1/admin/rollouts/{id}/pause", post(rollouts::pause))
        .route("/v1/admin/rollouts/{id}/resume", post(rollouts::resume))
        .route("/v1/admin/rollouts/{id}/abort", post(rollouts::abort))
        .route("/v1/admin/plugins/restore", post(plugins::restore))
        .route("/v1/admin/plugins/trusted-keys", post(plugins::trust_key))
        .route("/healthz", get(system::healthz))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .fallback(system::no_route)
        .method_not_allowed_fallback(system::method_not_allowed)
        .layer(middleware::from_fn_with_state(app.clone(), track))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(overloaded))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(limits.max_in_flight))
                .timeout(limits.request_timeout),
        )
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

async fn overloaded(error: tower::BoxError) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::unavailable("timeout", "the request took too long; try again")
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::unavailable(
            "overloaded",
            "too many requests in flight; try again shortly",
        )
    } else {
        ApiError::internal(&error)
    }
}

/// Counts every request and records its latency by route template.
async fn track(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = crate::metrics::method_label(request.method());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let labels = RouteLabels { method, route };
    app.metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    app.metrics
        .requests
        .get_or_create(&RequestLabels {
            method: labels.method,
            route: labels.route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// Serves the API on `listener` until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    connections::serve(listener, router(app, limits), limits, shutdown).await
}
