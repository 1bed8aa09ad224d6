//! The gateway's Prometheus metrics: requests and their latency per route, reservation outcomes,
//! the writer's batch sizes, the snapshot's age, each plugin slot's calls, failures and latency,
//! the device plane's commands, events and lockers online, and each edge node's sync.

use crate::devices::Devices;
use lockergrid_plugin_host::PluginHost;
use lockergrid_store::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// The method label of a request: one of the methods HTTP defines, or `other`, so that what a
/// client sends can never add a metric series (the route is a template or `unmatched`, and the
/// status one of a few hundred codes).
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    const KNOWN: [(Method, &str); 9] = [
        (Method::GET, "GET"),
        (Method::HEAD, "HEAD"),
        (Method::POST, "POST"),
        (Method::PUT, "PUT"),
        (Method::DELETE, "DELETE"),
        (Method::PATCH, "PATCH"),
        (Method::OPTIONS, "OPTIONS"),
        (Method::CONNECT, "CONNECT"),
        (Method::TRACE, "TRACE"),
    ];
    KNOWN
        .iter()
        .find(|(known, _)| known == method)
        .map_or("other", |(_, label)| label)
}

/// Labels of one request count.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP method ([`method_label`]).
    pub method: &'static str,
    /// The route template, e.g. `/v1/reservations/{id}`, or `unmatched`.
    pub route: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of one latency histogram.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method ([`method_label`]).
    pub method: &'static str,
    /// The route template.
    pub route: String,
}

/// Labels of reservation outcomes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `held`, `replayed`, `no_capacity`, `refused`.
    pub outcome: &'static str,
}

/// Labels of one notification attempt.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct NotificationLabels {
    /// `email`, `sms`, `push`, `webhook`.
    pub channel: &'static str,
    /// `delivered`, `accepted`, `retried`, `failed`, `expired`, `cancelled`.
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
    /// Notification attempts by channel and outcome.
    pub notifications: Family<NotificationLabels, Counter>,
    snapshot_age: Gauge<f64, AtomicU64>,
    lockers_online: Gauge,
    devices: Arc<Devices>,
    store: Store,
}

impl Metrics {
    /// Registers every metric, including the store's, the plugin host's and the lockers'.
    pub fn new(store: Store, plugins: Arc<PluginHost>, devices: Arc<Devices>) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_05, 2.0, 18))
        });
        let reservations = Family::<OutcomeLabels, Counter>::default();
        let conflicts = Counter::default();
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "lockergrid_notification_attempts",
            "Notification delivery attempts by channel and outcome",
            notifications.clone(),
        );
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
        let lockers_online = Gauge::default();
        devices.metrics().register(&mut registry);
        registry.register(
            "lockergrid_lockers_online",
            "Lockers that reported within the last 30 s",
            lockers_online.clone(),
        );
        store.metrics().register(&mut registry);
        registry.register_collector(Box::new(PluginCollector(plugins)));
        registry.register_collector(Box::new(EdgeCollector(devices.clone())));
        Metrics {
            registry,
            requests,
            latency,
            reservations,
            conflicts,
            notifications,
            snapshot_age,
            lockers_online,
            devices,
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
        let online = self.devices.online_count(self.store.now());
        self.lockers_online
            .set(i64::try_from(online).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SlotLabels {
    world: String,
    scope: String,
    plugin: String,
    version: String,
}

/// Reads the plugin host's counters at each scrape: calls, failures, whether a plugin serves,
/// and call latency, per world and scope.
struct PluginCollector(Arc<PluginHost>);

impl std::fmt::Debug for PluginCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PluginCollector")
    }
}

impl Collector for PluginCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let slots: Vec<_> = self
            .0
            .report()
            .into_iter()
            .map(|r| {
                let shown = r
                    .serving
                    .clone()
                    .or_else(|| r.quarantined.clone().map(|q| q.0));
                let labels = SlotLabels {
                    world: r.world.to_string(),
                    scope: r.scope.to_string(),
                    plugin: shown
                        .as_ref()
                        .map_or_else(|| "built-in".into(), |p| p.name.clone()),
                    version: shown.map_or_else(String::new, |p| p.version.clone()),
                };
                (labels, r)
            })
            .collect();
        let mut calls = encoder.encode_descriptor(
            "lockergrid_plugin_calls",
            "Plugin calls per world and scope",
            None,
            MetricType::Counter,
        )?;
        for (labels, r) in &slots {
            calls
                .encode_family(labels)?
                .encode_counter::<NoLabelSet, _, u64>(&r.stats.calls, None)?;
        }
        let mut failures = encoder.encode_descriptor(
            "lockergrid_plugin_failures",
            "Plugin calls that failed and fell back to the built-in behaviour",
            None,
            MetricType::Counter,
        )?;
        for (labels, r) in &slots {
            failures
                .encode_family(labels)?
                .encode_counter::<NoLabelSet, _, u64>(&r.stats.failures, None)?;
        }
        let mut serving = encoder.encode_descriptor(
            "lockergrid_plugin_in_service",
            "1 while a plugin serves the slot, 0 when it was taken out of service",
            None,
            MetricType::Gauge,
        )?;
        for (labels, r) in &slots {
            serving
                .encode_family(labels)?
                .encode_gauge(&i64::from(r.serving.is_some()))?;
        }
        let mut latency = encoder.encode_descriptor(
            "lockergrid_plugin_call_duration_seconds",
            "Plugin call latency, including instantiation",
            None,
            MetricType::Histogram,
        )?;
        for (labels, r) in &slots {
            let buckets: Vec<(f64, u64)> = r
                .stats
                .latency
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    // The last bucket holds everything slower; the encoder writes it as +Inf.
                    let le = if i + 1 == r.stats.latency.len() {
                        f64::MAX
                    } else {
                        (1u64 << i) as f64 / 1e6
                    };
                    (le, *n)
                })
                .collect();
            latency
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(
                    r.stats.latency_sum.as_secs_f64(),
                    r.stats.calls,
                    &buckets,
                    None,
                )?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EdgeLabels {
    edge: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EdgeSizeLabels {
    edge: String,
    size: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EdgeBatchLabels {
    edge: String,
    kind: &'static str,
}

/// Reads each edge node's sync state at each scrape.
#[derive(Debug)]
struct EdgeCollector(Arc<Devices>);

impl Collector for EdgeCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let edges = self.0.edges();
        let label = |e: &crate::devices::EdgeState| EdgeLabels { edge: e.id.clone() };
        let mut connected = encoder.encode_descriptor(
            "lockergrid_edge_connected",
            "1 while the edge node's uplink is connected",
            None,
            MetricType::Gauge,
        )?;
        for e in &edges {
            connected
                .encode_family(&label(e))?
                .encode_gauge(&i64::from(e.connected))?;
        }
        let mut lag = encoder.encode_descriptor(
            "lockergrid_edge_sync_lag",
            "Sync versions the edge node has not confirmed yet",
            None,
            MetricType::Gauge,
        )?;
        for e in &edges {
            lag.encode_family(&label(e))?
                .encode_gauge(&i64::try_from(e.lag()).unwrap_or(i64::MAX))?;
        }
        let mut last_sync = encoder.encode_descriptor(
            "lockergrid_edge_last_sync_timestamp_seconds",
            "When the edge node last confirmed the newest version",
            None,
            MetricType::Gauge,
        )?;
        for e in &edges {
            if let Some(at) = e.last_sync {
                last_sync
                    .encode_family(&label(e))?
                    .encode_gauge(&(at.millis() as f64 / 1000.0))?;
            }
        }
        let mut offset = encoder.encode_descriptor(
            "lockergrid_edge_clock_offset_seconds",
            "The edge node's clock minus the gateway's at its last report",
            None,
            MetricType::Gauge,
        )?;
        for e in &edges {
            if let Some(ms) = e.clock_offset_ms {
                offset
                    .encode_family(&label(e))?
                    .encode_gauge(&(ms as f64 / 1000.0))?;
            }
        }
        let mut outbox = encoder.encode_descriptor(
            "lockergrid_edge_outbox",
            "Decisions waiting in the edge node's outbox at its last report",
            None,
            MetricType::Gauge,
        )?;
        for e in &edges {
            outbox
                .encode_family(&label(e))?
                .encode_gauge(&i64::try_from(e.outbox).unwrap_or(i64::MAX))?;
        }
        let mut leased = encoder.encode_descriptor(
            "lockergrid_edge_lease_compartments",
            "Compartments leased to the edge node for offline drop-offs, over its stations",
            None,
            MetricType::Gauge,
        )?;
        for e in &edges {
            for size in lockergrid_protocol::Size::ALL {
                let n: u32 = e.leases.iter().filter_map(|l| l.sizes.get(&size)).sum();
                leased
                    .encode_family(&EdgeSizeLabels {
                        edge: e.id.clone(),
                        size: size.as_str(),
                    })?
                    .encode_gauge(&i64::from(n))?;
            }
        }
        let mut batches = encoder.encode_descriptor(
            "lockergrid_edge_sync_batches",
            "Sync batches sent to the edge node: deltas and full resyncs",
            None,
            MetricType::Counter,
        )?;
        for e in &edges {
            for (kind, n) in [("delta", e.deltas_sent), ("full", e.full_resyncs)] {
                batches
                    .encode_family(&EdgeBatchLabels {
                        edge: e.id.clone(),
                        kind,
                    })?
                    .encode_counter::<NoLabelSet, _, u64>(&n, None)?;
            }
        }
        Ok(())
    }
}
