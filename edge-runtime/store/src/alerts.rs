//! Alert records (DESIGN.md §9): one open record per station, source and code; what the writer
//! operations in `ops/record_alerts.rs` change, and the reads operators and the telemetry path
//! use.

use crate::tables::{ALERTS_V1, OPEN_ALERTS_V1};
use crate::{Store, StoreError};
use lockergrid_model::{AlertRecord, AlertStatus, DecidedBy, Severity};
use lockergrid_protocol::StationId;
use redb::ReadableDatabase;

/// An alert to raise, unless one with its station, source and code is open.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDraft {
    /// The station.
    pub station: StationId,
    /// What raised it (see [`AlertRecord::source`]).
    pub source: String,
    /// Its stable code.
    pub code: String,
    /// How urgent.
    pub severity: Severity,
    /// For people.
    pub message: String,
    /// The site rules that raised it, when they did.
    pub decided_by: Option<DecidedBy>,
}

impl Store {
    /// The alerts of `station` not yet resolved.
    pub fn open_alerts_at(&self, station: &StationId) -> Result<Vec<AlertRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let open = rx.open_table(OPEN_ALERTS_V1.def())?;
        let alerts = rx.open_table(ALERTS_V1.def())?;
        let mut found = Vec::new();
        for (_, id) in OPEN_ALERTS_V1.with_prefix(&open, &format!("{station}/"))? {
            if let Some(alert) = ALERTS_V1.get(&alerts, id.as_str())? {
                found.push(alert);
            }
        }
        Ok(found)
    }

    /// The newest `limit` alerts, newest first, of `status` if given.
    pub fn alerts(
        &self,
        status: Option<AlertStatus>,
        limit: usize,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(ALERTS_V1.def())?;
        ALERTS_V1.newest(&table, limit, |a| status.is_none_or(|s| s == a.status))
    }

    /// How many alerts are in each status and severity now, for the metrics.
    pub fn alert_counts(&self) -> Result<Vec<(AlertStatus, Severity, u64)>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let open = rx.open_table(OPEN_ALERTS_V1.def())?;
        let alerts = rx.open_table(ALERTS_V1.def())?;
        let mut counts: Vec<(AlertStatus, Severity, u64)> = Vec::new();
        for (_, id) in OPEN_ALERTS_V1.entries(&open)? {
            let Some(alert) = ALERTS_V1.get(&alerts, id.as_str())? else {
                continue;
            };
            match counts
                .iter_mut()
                .find(|(s, v, _)| *s == alert.status && *v == alert.severity)
            {
                Some(entry) => entry.2 += 1,
                None => counts.push((alert.status, alert.severity, 1)),
            }
        }
        Ok(counts)
    }
}
