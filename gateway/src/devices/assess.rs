//! The gateway's telemetry: every heartbeat its lockers send (their own or relayed by an edge
//! node) goes to the station's site rules off the device task, which must never wait for a
//! plugin, and into the time series, written once a second for all stations, swept for
//! retention once a minute and read by the maintenance detectors once an hour. The queue between them is bounded; a heartbeat that does not fit is counted
//! and skipped, as only the newest matters and the next one of the station is assessed.

use super::DeviceMetrics;
use super::metrics::AlertLabels;
use lockergrid_model::{AlertStatus, Sample};
use lockergrid_node::Node;
use lockergrid_protocol::StationId;
use lockergrid_protocol::message::TelemetryMessage;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Heartbeats waiting for their assessment.
const QUEUE: usize = 1_024;
/// How often the samples gathered are written: one store operation for all of them.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Flushes between two retention sweeps (a minute).
const RETAIN_EVERY: u32 = 60;
/// Flushes between two runs of the maintenance detectors (an hour: they read hourly rollups).
const SCAN_EVERY: u32 = 3_600;

/// The device task's end of the queue.
pub(super) struct Assessor(mpsc::Sender<(StationId, TelemetryMessage)>);

impl Assessor {
    /// Starts the assessment task for `node`'s lockers; it stops with `shutdown`.
    pub(super) fn start(
        node: Arc<Node>,
        metrics: Arc<super::Devices>,
        shutdown: CancellationToken,
    ) -> (Assessor, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(node, metrics, rx, shutdown));
        (Assessor(tx), task)
    }

    /// Queues a heartbeat of `station` for assessment.
    pub(super) fn heard(
        &self,
        station: &StationId,
        telemetry: &TelemetryMessage,
        m: &DeviceMetrics,
    ) {
        if self
            .0
            .try_send((station.clone(), telemetry.clone()))
            .is_err()
        {
            m.assess_skipped.inc();
        }
    }
}

async fn run(
    node: Arc<Node>,
    devices: Arc<super::Devices>,
    mut rx: mpsc::Receiver<(StationId, TelemetryMessage)>,
    shutdown: CancellationToken,
) {
    let mut kept = Vec::new();
    let mut flush = tokio::time::interval(FLUSH_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut flushes: u32 = 0;
    loop {
        let (station, telemetry) = tokio::select! {
            () = shutdown.cancelled() => break,
            _ = flush.tick() => {
                keep(&node, &mut kept).await;
                flushes = flushes.wrapping_add(1);
                if flushes.is_multiple_of(RETAIN_EVERY) {
                    retain(&node).await;
                }
                if flushes.is_multiple_of(SCAN_EVERY) {
                    scan(&node, &devices).await;
                }
                continue;
            }
            next = rx.recv() => match next {
                Some(next) => next,
                None => break,
            },
        };
        kept.push((station.clone(), sample(&telemetry)));
        match node.assess_telemetry(&station, &telemetry).await {
            Ok(changes) if changes.raised.is_empty() && changes.resolved.is_empty() => {}
            Ok(changes) => {
                let metrics = devices.metrics();
                for (alerts, status) in
                    [(&changes.raised, "raised"), (&changes.resolved, "resolved")]
                {
                    for alert in alerts {
                        tracing::warn!(%station, code = %alert.code, status, message = %alert.message, "alert");
                        let labels = AlertLabels {
                            status,
                            severity: alert.severity.as_str(),
                        };
                        metrics.alert_changes.get_or_create(&labels).inc();
                    }
                }
                devices.recount_alerts(node.store());
            }
            Err(e) => tracing::error!(%station, error = %e, "telemetry not assessed"),
        }
    }
    keep(&node, &mut kept).await;
}

/// Writes the samples gathered since the last flush, in one store operation.
async fn keep(node: &Node, kept: &mut Vec<(StationId, Sample)>) {
    if kept.is_empty() {
        return;
    }
    if let Err(e) = node.store().record_telemetry(std::mem::take(kept)).await {
        tracing::error!(error = %e, "telemetry samples not kept");
    }
}

/// Runs the maintenance detectors over every station's series.
async fn scan(node: &Node, devices: &super::Devices) {
    let stations: Vec<StationId> = node
        .store()
        .snapshot()
        .stations
        .iter()
        .map(|s| s.record.id.clone())
        .collect();
    for station in stations {
        match node.maintenance_due(&station).await {
            Ok(changes) => {
                for alert in &changes.raised {
                    tracing::warn!(%station, code = %alert.code, message = %alert.message, "maintenance due");
                }
                if !changes.raised.is_empty() || !changes.resolved.is_empty() {
                    devices.recount_alerts(node.store());
                }
            }
            Err(e) => tracing::error!(%station, error = %e, "maintenance detectors failed"),
        }
    }
}

/// Removes what each resolution of the time series keeps no longer.
async fn retain(node: &Node) {
    match node.store().expire_telemetry().await {
        Ok(gone) if gone != Default::default() => {
            tracing::info!(
                raw = gone.raw,
                minutes = gone.minutes,
                hours = gone.hours,
                "telemetry past its retention removed"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "telemetry retention failed"),
    }
}

/// The readings of a heartbeat as the time series keeps them.
fn sample(t: &TelemetryMessage) -> Sample {
    Sample {
        at: t.at,
        battery_percent: t.battery_percent,
        mains: t.mains,
        tamper: t.tamper,
        doors_open: t.doors_open.len() as u32,
        queued_events: t.queued_events,
        temperatures: t.temperatures.clone(),
    }
}

impl super::Devices {
    /// Sets the open-alert gauges from `store`: after a change, and at a scrape's request.
    pub fn recount_alerts(&self, store: &lockergrid_store::Store) {
        count_open(store, self.metrics());
    }
}

fn count_open(store: &lockergrid_store::Store, metrics: &DeviceMetrics) {
    match store.alert_counts() {
        Ok(counts) => {
            metrics.alerts.clear();
            for (status, level, n) in counts {
                let status = match status {
                    AlertStatus::Open => "open",
                    AlertStatus::Acknowledged => "acknowledged",
                    AlertStatus::Resolved => continue,
                };
                let labels = AlertLabels {
                    status,
                    severity: level.as_str(),
                };
                metrics.alerts.get_or_create(&labels).set(n as i64);
            }
        }
        Err(e) => tracing::error!(error = %e, "alerts not counted"),
    }
}
