//! Predictive maintenance (DESIGN.md §9): trend detectors over a station's hourly telemetry
//! rollups that say "maintenance due" before the hardware fails, each with its evidence. Pure
//! functions of the series, so a node runs them on what it stored and a test on a month it
//! made up.
//!
//! - **Battery capacity falling across discharges**: the highest charge a battery reaches each
//!   day (it recharges on mains) declines steadily.
//! - **A temperature that drifts**: a compartment's daily mean moves steadily one way (a cooling
//!   unit losing its grip, a failing thermometer).
//!
//! And over a station's [`DeviceDay`] counts, which the store keeps from commands and events:
//!
//! - **A door sensor that flaps**: doors reported opening with no latch released before them,
//!   several a day, day after day.
//! - **Latch retries rising**: the share of unlocks the latch failed grows.
//! - **Round-trip latency creeping up**: the mean time from an unlock issued to the locker's
//!   answer grows steadily.
//!
//! A trend is the least-squares slope over the last [`WINDOW_DAYS`] days, and it must also have
//! moved the value by a material amount over them, so day-to-day noise is not a trend.

use crate::Rollup;
use lockergrid_protocol::CompartmentId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Days a trend is fitted over.
pub const WINDOW_DAYS: usize = 14;
/// Fewest days with data a trend needs.
const MIN_DAYS: usize = 7;
/// A battery whose daily peak loses this many points a day or more…
const BATTERY_SLOPE: f64 = -0.6;
/// …and this many over the window is wearing out.
const BATTERY_DROP: f64 = 6.0;
/// A compartment whose daily mean moves this many °C a day or more…
const DRIFT_SLOPE: f64 = 0.15;
/// …and this many over the window is drifting.
const DRIFT_MOVE: f64 = 2.0;

/// A trend a detector found.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// A stable code: `battery-capacity-falling`, `temperature-drifting`,
    /// `door-sensor-flapping`, `latch-failures-rising`, `latency-creeping`.
    pub code: &'static str,
    /// What it concerns: `battery`, `temperature:<compartment>`, `doors`, `latches`,
    /// `latency`.
    pub source: String,
    /// The evidence, for people.
    pub evidence: String,
}

/// What the detectors find in `hours`, a station's hourly rollups oldest first.
pub fn findings(hours: &[Rollup]) -> Vec<Finding> {
    let days = by_day(hours);
    let recent: Vec<&Day> = days.values().rev().take(WINDOW_DAYS).rev().collect();
    let mut found = Vec::new();
    let peaks: Vec<(f64, f64)> = recent
        .iter()
        .map(|d| (d.index as f64, d.battery_peak))
        .collect();
    if let Some((slope, moved)) = trend(&peaks)
        && slope <= BATTERY_SLOPE
        && -moved >= BATTERY_DROP
    {
        found.push(Finding {
            code: "battery-capacity-falling",
            source: "battery".into(),
            evidence: format!(
                "the battery's daily peak charge fell {:.1} points over {} days ({slope:.2} a day)",
                -moved,
                peaks.len()
            ),
        });
    }
    let compartments: Vec<&CompartmentId> = recent
        .iter()
        .flat_map(|d| d.temperature.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    for compartment in compartments {
        let means: Vec<(f64, f64)> = recent
            .iter()
            .filter_map(|d| Some((d.index as f64, *d.temperature.get(compartment)?)))
            .collect();
        if let Some((slope, moved)) = trend(&means)
            && slope.abs() >= DRIFT_SLOPE
            && moved.abs() >= DRIFT_MOVE
        {
            found.push(Finding {
                code: "temperature-drifting",
                source: format!("temperature:{compartment}"),
                evidence: format!(
                    "the daily mean temperature moved {moved:+.1} °C over {} days ({slope:+.2} a day)",
                    means.len()
                ),
            });
        }
    }
    found
}

/// One day of a station's locker activity, as the store counts it: the unlocks its latch did
/// and did not carry out, their round-trip times, and door movements no unlock explains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceDay {
    /// Days since the Unix epoch.
    pub day: i64,
    /// Unlocks the latch carried out.
    pub unlocks: u32,
    /// Unlocks the latch failed.
    pub latch_failures: u32,
    /// Sum of the round trips (command issued → the locker's answer), milliseconds.
    pub rtt_ms_sum: u64,
    /// Round trips summed.
    pub rtt_n: u32,
    /// Doors that closed with no unlock having released them (a sensor that flaps, or a door
    /// forced).
    pub stray_doors: u32,
}

impl DeviceDay {
    /// The day `at` falls on.
    pub fn index(at: lockergrid_protocol::Timestamp) -> i64 {
        (at.millis() / 86_400_000) as i64
    }
}

/// Days in a row with stray door movements that make a flapping sensor.
const FLAP_DAYS: usize = 3;
/// Stray door movements a day that count.
const FLAPS_A_DAY: u32 = 3;
/// A latch failure share rising this much a day or more…
const LATCH_SLOPE: f64 = 0.01;
/// …that reached this share over the last days is wearing out.
const LATCH_SHARE: f64 = 0.1;
/// A mean round trip growing this many milliseconds a day or more…
const LATENCY_SLOPE: f64 = 10.0;
/// …and by this many over the window, and by half of where it started, is creeping.
const LATENCY_MOVE: f64 = 100.0;

/// What the detectors find in `days`, a station's device days oldest first (days without
/// activity may be missing).
pub fn device_findings(days: &[DeviceDay]) -> Vec<Finding> {
    let recent: Vec<&DeviceDay> = days.iter().rev().take(WINDOW_DAYS).rev().collect();
    let mut found = Vec::new();
    let last_day = recent.last().map_or(0, |d| d.day);
    let flapping: Vec<&&DeviceDay> = recent
        .iter()
        .filter(|d| d.day > last_day - FLAP_DAYS as i64 && d.stray_doors >= FLAPS_A_DAY)
        .collect();
    if flapping.len() == FLAP_DAYS {
        let n: u32 = flapping.iter().map(|d| d.stray_doors).sum();
        found.push(Finding {
            code: "door-sensor-flapping",
            source: "doors".into(),
            evidence: format!(
                "{n} door movements no unlock explains over the last {FLAP_DAYS} days"
            ),
        });
    }
    let shares: Vec<(f64, f64)> = recent
        .iter()
        .filter(|d| d.unlocks + d.latch_failures > 0)
        .map(|d| {
            let tries = f64::from(d.unlocks + d.latch_failures);
            (d.day as f64, f64::from(d.latch_failures) / tries)
        })
        .collect();
    if let Some((slope, _)) = trend(&shares)
        && slope >= LATCH_SLOPE
    {
        let tail: Vec<&&DeviceDay> = recent.iter().rev().take(FLAP_DAYS).collect();
        let (failed, tries) = tail.iter().fold((0u32, 0u32), |(f, t), d| {
            (f + d.latch_failures, t + d.unlocks + d.latch_failures)
        });
        let share = f64::from(failed) / f64::from(tries.max(1));
        if share >= LATCH_SHARE {
            found.push(Finding {
                code: "latch-failures-rising",
                source: "latches".into(),
                evidence: format!(
                    "{failed} of {tries} unlocks failed over the last {} days, rising {:.1} points a day",
                    tail.len(),
                    slope * 100.0
                ),
            });
        }
    }
    let means: Vec<(f64, f64)> = recent
        .iter()
        .filter(|d| d.rtt_n > 0)
        .map(|d| (d.day as f64, d.rtt_ms_sum as f64 / f64::from(d.rtt_n)))
        .collect();
    if let Some((slope, moved)) = trend(&means)
        && slope >= LATENCY_SLOPE
        && moved >= LATENCY_MOVE
    {
        let start = means.first().map_or(0.0, |(_, m)| *m);
        let end = means.last().map_or(0.0, |(_, m)| *m);
        if moved >= start / 2.0 {
            found.push(Finding {
                code: "latency-creeping",
                source: "latency".into(),
                evidence: format!(
                    "the mean unlock round trip went from {start:.0} ms to {end:.0} ms over {} days ({slope:+.0} ms a day)",
                    means.len()
                ),
            });
        }
    }
    found
}

/// One day of a station's readings.
struct Day {
    index: i64,
    battery_peak: f64,
    temperature: BTreeMap<CompartmentId, f64>,
}

/// A day's battery peak so far, and each thermometer's sum and count.
type Gathered = (f64, BTreeMap<CompartmentId, (f64, u32)>);

fn by_day(hours: &[Rollup]) -> BTreeMap<i64, Day> {
    const DAY_MS: u64 = 86_400_000;
    let mut days: BTreeMap<i64, Gathered> = BTreeMap::new();
    for hour in hours {
        let index = (hour.start.millis() / DAY_MS) as i64;
        let (peak, temps) = days.entry(index).or_insert((f64::MIN, BTreeMap::new()));
        *peak = peak.max(hour.battery_percent.max);
        for (c, stat) in &hour.temperatures {
            let (sum, n) = temps.entry(c.clone()).or_insert((0.0, 0));
            *sum += stat.sum;
            *n += stat.n;
        }
    }
    days.into_iter()
        .map(|(index, (battery_peak, temps))| {
            let temperature = temps
                .into_iter()
                .map(|(c, (sum, n))| (c, sum / f64::from(n.max(1))))
                .collect();
            (
                index,
                Day {
                    index,
                    battery_peak,
                    temperature,
                },
            )
        })
        .collect()
}

/// The least-squares slope of `points` (x, y) and how far the fitted line moved over their
/// span; `None` with fewer than [`MIN_DAYS`] points.
fn trend(points: &[(f64, f64)]) -> Option<(f64, f64)> {
    if points.len() < MIN_DAYS {
        return None;
    }
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 {
        return None;
    }
    let slope = num / den;
    let span = points.last()?.0 - points.first()?.0;
    Some((slope, slope * span))
}

#[cfg(test)]
mod tests;
