//! The telemetry a node keeps (DESIGN.md §9): each heartbeat's readings as a raw sample for a
//! day, folded into one-minute rollups kept for 30 days and hourly ones kept for a year.

use lockergrid_protocol::{CompartmentId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How long raw samples are kept.
pub const RAW_KEPT: Duration = Duration::from_secs(24 * 3_600);
/// How long one-minute rollups are kept.
pub const MINUTES_KEPT: Duration = Duration::from_secs(30 * 24 * 3_600);
/// How long hourly rollups are kept.
pub const HOURS_KEPT: Duration = Duration::from_secs(365 * 24 * 3_600);

/// One heartbeat's readings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When the locker took them.
    pub at: Timestamp,
    /// Battery charge, percent.
    pub battery_percent: u8,
    /// Mains power present.
    pub mains: bool,
    /// The tamper switch tripped.
    pub tamper: bool,
    /// Doors standing open.
    pub doors_open: u32,
    /// Events waiting in the locker's queue.
    pub queued_events: u32,
    /// Each thermometer's reading, °C.
    pub temperatures: Vec<(CompartmentId, f32)>,
}

/// Minimum, maximum and mean of a reading over a rollup's samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stat {
    /// The lowest.
    pub min: f64,
    /// The highest.
    pub max: f64,
    /// The sum, for the mean.
    pub sum: f64,
    /// How many.
    pub n: u32,
}

impl Stat {
    /// A statistic of one value.
    pub fn of(value: f64) -> Stat {
        Stat {
            min: value,
            max: value,
            sum: value,
            n: 1,
        }
    }

    /// Takes in one more value.
    pub fn add(&mut self, value: f64) {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum += value;
        self.n += 1;
    }

    /// The mean.
    pub fn mean(&self) -> f64 {
        self.sum / f64::from(self.n.max(1))
    }
}

/// What a minute's or an hour's samples of one station came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// Where its interval begins.
    pub start: Timestamp,
    /// How many samples it took in.
    pub samples: u32,
    /// Battery charge.
    pub battery_percent: Stat,
    /// Samples taken on battery (mains lost).
    pub on_battery: u32,
    /// Samples with the tamper switch tripped.
    pub tampered: u32,
    /// Doors standing open.
    pub doors_open: Stat,
    /// Events waiting in the locker's queue.
    pub queued_events: Stat,
    /// Each thermometer, by compartment.
    pub temperatures: BTreeMap<CompartmentId, Stat>,
}

impl Rollup {
    /// A rollup of `sample` alone, for the interval beginning at `start`.
    pub fn first(start: Timestamp, sample: &Sample) -> Rollup {
        Rollup {
            start,
            samples: 1,
            battery_percent: Stat::of(f64::from(sample.battery_percent)),
            on_battery: u32::from(!sample.mains),
            tampered: u32::from(sample.tamper),
            doors_open: Stat::of(f64::from(sample.doors_open)),
            queued_events: Stat::of(f64::from(sample.queued_events)),
            temperatures: sample
                .temperatures
                .iter()
                .map(|(c, t)| (c.clone(), Stat::of(f64::from(*t))))
                .collect(),
        }
    }

    /// Takes in one more sample of its interval.
    pub fn add(&mut self, sample: &Sample) {
        self.samples += 1;
        self.battery_percent.add(f64::from(sample.battery_percent));
        self.on_battery += u32::from(!sample.mains);
        self.tampered += u32::from(sample.tamper);
        self.doors_open.add(f64::from(sample.doors_open));
        self.queued_events.add(f64::from(sample.queued_events));
        for (c, t) in &sample.temperatures {
            let t = f64::from(*t);
            match self.temperatures.get_mut(c) {
                Some(stat) => stat.add(t),
                None => {
                    self.temperatures.insert(c.clone(), Stat::of(t));
                }
            }
        }
    }
}

/// The start of the interval of `every` that `at` falls in.
pub fn bucket(at: Timestamp, every: Duration) -> Timestamp {
    let every = every.as_millis() as u64;
    Timestamp(at.millis() - at.millis() % every.max(1))
}
