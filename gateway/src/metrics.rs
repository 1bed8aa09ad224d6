//! The gateway's Prometheus metrics: requests and their latency per route, reservation outcomes,
//! the writer's batch sizes and the snapshot's age.

use lockergrid_edge_runtime::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Labels of one request count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method.
    pub method: String,
    /// The route template, e.g. `/v1/reservations/{id}`, or `unmatched`.
    pub route: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of one latency histogram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// The route template.
    pub route: String,
}

/// Labels of reservation outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `held`, `replayed`, `no_capacity`, `refused`.
    pub outcome: &'static str,
}

/// Every metric the gateway exposes.
pub struct Metrics {
    registry: Registry,
    /// Requests by method, route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Request latency by method and route.
    pub latency: Family<RouteLabels, Histogram>,
    /// Reservation attempts by outcome.
    pub reservations: Family<OutcomeLabels, Counter>,
    /// Reservations refused because nothing fit (409).
    pub conflicts: Counter,
    snapshot_age: Gauge<f64, AtomicU64>,
    store: Store,
}

impl Metrics {
    /// Registers every metric, including the store's.
    pub fn new(store: Store) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        let reservations = Family::<OutcomeLabels, Counter>::default();
        let conflicts = Counter::default();
        let snapshot_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "lockergrid_http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        registry.register(
            "lockergrid_http_request_duration_seconds",
            "HTTP request latency by method and route",
            latency.clone(),
        );
        registry.register(
            "lockergrid_reservations",
            "Reservation attempts by outcome",
            reservations.clone(),
        );
        registry.register(
            "lockergrid_reservation_conflicts",
            "Reservations refused because no compartment fit",
            conflicts.clone(),
        );
        registry.register(
            "lockergrid_snapshot_age_seconds",
            "Time since the availability snapshot was last published",
            snapshot_age.clone(),
        );
        store.metrics().register(&mut registry);
        Metrics {
            registry,
            requests,
            latency,
            reservations,
            conflicts,
            snapshot_age,
            store,
        }
    }

    /// Records one reservation outcome.
    pub fn reservation(&self, outcome: &'static str) {
        self.reservations
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }

    /// The Prometheus text exposition of every metric, as of now.
    pub fn render(&self) -> String {
        let age = self.store.snapshot().published.elapsed().as_secs_f64();
        self.snapshot_age.set(age);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
