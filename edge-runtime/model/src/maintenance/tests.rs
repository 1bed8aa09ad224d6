use super::*;
use crate::{Sample, bucket};
use lockergrid_protocol::Timestamp;
use std::time::Duration;

fn hours(days: u64, battery: impl Fn(u64) -> u8, celsius: impl Fn(u64) -> f32) -> Vec<Rollup> {
    let c = CompartmentId::new("st-a:S001").unwrap();
    (0..days * 24)
        .map(|h| {
            let at = Timestamp(1_796_083_200_000 + h * 3_600_000);
            let sample = Sample {
                at,
                battery_percent: battery(h),
                mains: true,
                tamper: false,
                doors_open: 0,
                queued_events: 0,
                temperatures: vec![(c.clone(), celsius(h))],
            };
            Rollup::first(bucket(at, Duration::from_secs(3_600)), &sample)
        })
        .collect()
}

#[test]
fn a_steady_station_is_not_flagged() {
    let steady = hours(
        30,
        |h| if h % 24 < 12 { 100 } else { 80 },
        |h| 5.0 + (h % 5) as f32 * 0.1,
    );
    assert_eq!(findings(&steady), vec![]);
}

#[test]
fn a_battery_that_peaks_lower_every_day_is_flagged_with_its_evidence() {
    let wearing = hours(30, |h| (100 - h / 24) as u8, |_| 5.0);
    let found = findings(&wearing);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].code, "battery-capacity-falling");
    assert!(
        found[0].evidence.contains("fell 13.0 points"),
        "{}",
        found[0].evidence
    );
}

#[test]
fn a_temperature_that_creeps_up_is_flagged_and_too_few_days_are_not_a_trend() {
    let warming = hours(20, |_| 100, |h| 4.0 + h as f32 * 0.3 / 24.0);
    let found = findings(&warming);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].source, "temperature:st-a:S001");
    assert!(findings(&hours(5, |h| (100 - h / 2) as u8, |_| 5.0)).is_empty());
}

// The device-day detectors over a simulated month: 50 healthy lockers and three of each kind
// that degrade slowly (a door sensor that starts flapping, a latch failing more often, unlock
// round trips growing), each day's counts drawn with seeded noise. The detectors run once a day
// on what is recorded so far; every degrading locker must be flagged before its hardware fails
// (a latch failing a third of its unlocks, round trips over a second, a sensor flapping ten
// times a day), and no healthy locker may be.

const DEVICE_SEED: u64 = 0x5eed_2026_1202;
const DAYS: i64 = 30;

struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A count with mean `mean` (a sum of Bernoulli draws).
    fn count(&mut self, tries: u32, p: f64) -> u32 {
        (0..tries).filter(|_| self.next() < p).count() as u32
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Wear {
    Healthy,
    /// Stray door movements a day grow by this much from day `from`.
    Flapping {
        from: i64,
        per_day: f64,
    },
    /// The latch's failure chance grows by this much a day from day `from`.
    Latch {
        from: i64,
        per_day: f64,
    },
    /// The round trip grows this many ms a day from day `from`.
    Latency {
        from: i64,
        per_day: f64,
    },
}

/// A locker's day: 40 unlocks, a base failure chance of 1 %, round trips near 150 ms, a stray
/// door movement now and then (a door pushed after it closed).
fn day(wear: Wear, d: i64, noise: &mut Noise) -> (DeviceDay, bool) {
    let since = |from: i64| (d - from).max(0) as f64;
    let (fail, rtt, strays) = match wear {
        Wear::Healthy => (0.01, 150.0, 0.3),
        Wear::Flapping { from, per_day } => (0.01, 150.0, 0.3 + per_day * since(from)),
        Wear::Latch { from, per_day } => (0.01 + per_day * since(from), 150.0, 0.3),
        Wear::Latency { from, per_day } => (0.01, 150.0 + per_day * since(from), 0.3),
    };
    let tries = 40;
    let latch_failures = noise.count(tries, fail.min(1.0));
    let stray_doors = noise.count(40, (strays / 40.0).min(1.0));
    let rtt_day: f64 = (0..tries - latch_failures)
        .map(|_| rtt * (0.8 + 0.4 * noise.next()))
        .sum();
    let failed = fail >= 1.0 / 3.0 || rtt >= 1_000.0 || strays >= 10.0;
    let record = DeviceDay {
        day: 20_000 + d,
        unlocks: tries - latch_failures,
        latch_failures,
        rtt_ms_sum: rtt_day as u64,
        rtt_n: tries - latch_failures,
        stray_doors,
    };
    (record, failed)
}

#[test]
fn over_a_month_every_degrading_locker_is_flagged_before_it_fails_and_no_healthy_one_is() {
    let mut noise = Noise(DEVICE_SEED);
    let mut lockers: Vec<Wear> = vec![Wear::Healthy; 50];
    lockers.extend([
        Wear::Flapping {
            from: 5,
            per_day: 0.6,
        },
        Wear::Flapping {
            from: 10,
            per_day: 0.8,
        },
        Wear::Flapping {
            from: 2,
            per_day: 0.5,
        },
        Wear::Latch {
            from: 4,
            per_day: 0.015,
        },
        Wear::Latch {
            from: 8,
            per_day: 0.02,
        },
        Wear::Latch {
            from: 1,
            per_day: 0.012,
        },
        Wear::Latency {
            from: 3,
            per_day: 40.0,
        },
        Wear::Latency {
            from: 6,
            per_day: 50.0,
        },
        Wear::Latency {
            from: 0,
            per_day: 35.0,
        },
    ]);
    let mut false_flags = 0;
    for (i, wear) in lockers.iter().enumerate() {
        let mut history = Vec::new();
        let mut flagged = None;
        let mut failed = None;
        for d in 0..DAYS {
            let (record, broke) = day(*wear, d, &mut noise);
            history.push(record);
            if broke && failed.is_none() {
                failed = Some(d);
            }
            if flagged.is_none() && !device_findings(&history).is_empty() {
                flagged = Some(d);
            }
        }
        match wear {
            Wear::Healthy => false_flags += usize::from(flagged.is_some()),
            _ => {
                let flagged =
                    flagged.unwrap_or_else(|| panic!("locker {i} ({wear:?}) never flagged"));
                let failed = failed.unwrap_or(DAYS);
                println!("locker {i} {wear:?}: flagged on day {flagged}, fails on day {failed}");
                assert!(
                    flagged < failed,
                    "locker {i} ({wear:?}) flagged on day {flagged}, failed on day {failed}"
                );
            }
        }
    }
    println!("false flags over 50 healthy lockers: {false_flags} (seed {DEVICE_SEED:#x})");
    assert_eq!(false_flags, 0);
}
