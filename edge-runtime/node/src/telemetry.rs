//! A locker's heartbeat put to its station's site rules (DESIGN.md §9): each reading it carries
//! (battery, mains, tamper, every compartment thermometer, with whether the deployment made that
//! compartment climate-controlled) is assessed, alerts the rules raise are opened as records,
//! and open alerts whose reading the rules now find clean are resolved. Nothing is written when
//! nothing changed, so a steady heartbeat costs reads only. The maintenance detectors run over
//! the stored hourly series the same way.

use crate::{Node, locker_actor};
use lockergrid_model::{
    DeviceDay, Reading, Severity, Telemetry, WINDOW_DAYS, World, device_findings, findings,
};
use lockergrid_protocol::message::TelemetryMessage;
use lockergrid_protocol::{StationId, Timestamp};
use lockergrid_store::{AlertChanges, AlertDraft, Series, Step, StoreError};
use std::time::Duration;

const HOUR: Duration = Duration::from_secs(3_600);

impl Node {
    /// Assesses every reading of `telemetry` from `station`'s locker and records what changed.
    pub async fn assess_telemetry(
        &self,
        station: &StationId,
        telemetry: &TelemetryMessage,
    ) -> Result<AlertChanges, StoreError> {
        let mut raise: Vec<AlertDraft> = Vec::new();
        let mut sources = Vec::new();
        for (source, reading) in self.readings(station, telemetry) {
            let assessed = self.plugins.assess(&reading).await;
            let decided_by = assessed.decider.decided_by(World::SiteRules);
            raise.extend(assessed.answer.into_iter().map(|alert| AlertDraft {
                station: station.clone(),
                source: source.clone(),
                code: alert.code,
                severity: alert.severity,
                message: alert.message,
                decided_by: Some(decided_by.clone()),
            }));
            sources.push(source);
        }
        let open = self.store.open_alerts_at(station)?;
        let resolve: Vec<String> = open
            .iter()
            .filter(|a| sources.contains(&a.source))
            .filter(|a| {
                !raise
                    .iter()
                    .any(|d| d.source == a.source && d.code == a.code)
            })
            .map(|a| a.id.clone())
            .collect();
        raise.retain(|d| {
            !open
                .iter()
                .any(|a| a.source == d.source && a.code == d.code)
        });
        if raise.is_empty() && resolve.is_empty() {
            return Ok(AlertChanges::default());
        }
        let actor = locker_actor(station.as_str());
        self.store.record_alerts(raise, resolve, actor).await
    }

    /// Runs the maintenance detectors over `station`'s last [`WINDOW_DAYS`] days of hourly
    /// telemetry and device days: a trend found opens a `maintenance-due`-kind alert with its evidence (filed
    /// under `maintenance:<source>`), one no longer found resolves it.
    pub async fn maintenance_due(&self, station: &StationId) -> Result<AlertChanges, StoreError> {
        let now = self.store.now();
        let since = Timestamp(now.millis().saturating_sub(WINDOW_DAYS as u64 * 86_400_000));
        let Series::Rollups(hours) = self.store.telemetry(
            station,
            (since, now.plus(HOUR)),
            Step::Hour,
            24 * WINDOW_DAYS + 1,
        )?
        else {
            return Ok(AlertChanges::default());
        };
        let days = self
            .store
            .device_days(station, DeviceDay::index(now) - WINDOW_DAYS as i64)?;
        let raise: Vec<AlertDraft> = findings(&hours)
            .into_iter()
            .chain(device_findings(&days))
            .map(|f| AlertDraft {
                station: station.clone(),
                source: format!("maintenance:{}", f.source),
                code: f.code.to_owned(),
                severity: Severity::Warning,
                message: format!("maintenance due: {}", f.evidence),
                decided_by: None,
            })
            .collect();
        let open = self.store.open_alerts_at(station)?;
        let resolve: Vec<String> = open
            .iter()
            .filter(|a| a.source.starts_with("maintenance:"))
            .filter(|a| {
                !raise
                    .iter()
                    .any(|d| d.source == a.source && d.code == a.code)
            })
            .map(|a| a.id.clone())
            .collect();
        let raise: Vec<AlertDraft> = raise
            .into_iter()
            .filter(|d| {
                !open
                    .iter()
                    .any(|a| a.source == d.source && a.code == d.code)
            })
            .collect();
        if raise.is_empty() && resolve.is_empty() {
            return Ok(AlertChanges::default());
        }
        let actor = locker_actor(station.as_str());
        self.store.record_alerts(raise, resolve, actor).await
    }

    /// The readings a heartbeat carries, each with the source its alerts are filed under.
    fn readings(&self, station: &StationId, t: &TelemetryMessage) -> Vec<(String, Reading)> {
        let reading = |compartment, climate_controlled, value| Reading {
            station: station.clone(),
            compartment,
            climate_controlled,
            at: t.at,
            value,
        };
        let mut readings = vec![
            (
                "battery".to_owned(),
                reading(None, false, Telemetry::BatteryPercent(t.battery_percent)),
            ),
            (
                "mains".to_owned(),
                reading(None, false, Telemetry::MainsPower(t.mains)),
            ),
            (
                "tamper".to_owned(),
                reading(None, false, Telemetry::Tamper(t.tamper)),
            ),
        ];
        for (compartment, celsius) in &t.temperatures {
            let climate = self.climate_controlled(station, compartment);
            readings.push((
                format!("temperature:{compartment}"),
                reading(
                    Some(compartment.clone()),
                    climate,
                    Telemetry::TemperatureC(*celsius),
                ),
            ));
        }
        readings
    }
}
