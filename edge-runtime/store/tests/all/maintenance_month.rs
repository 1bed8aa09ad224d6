//! Predictive maintenance over a simulated month, through the store's own rollups: 50 healthy
//! lockers and six that degrade slowly (three batteries losing capacity, three cooled
//! compartments drifting warm), an hourly heartbeat each with seeded noise. The detectors run
//! once a day on the last 14 days; every degrading locker must be flagged before its hardware
//! fails (a peak charge under 60 %, a cooled compartment over 8 °C), and the false flags over
//! the healthy lockers are counted and printed (the goal, and the bar, is 0).

use crate::support::{START, open, seed, station_id};
use lockergrid_model::{Sample, findings};
use lockergrid_protocol::{CompartmentId, StationId, Timestamp};
use lockergrid_store::{Series, Step};
use std::time::Duration;

const DAYS: u64 = 30;
const HEALTHY: usize = 50;
const SEED: u64 = 0x5eed_2026_1201;

/// xorshift64*: deterministic noise from the printed seed.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal, mean 0, standard deviation 1 (the sum of four uniforms, rescaled).
    fn gauss(&mut self) -> f64 {
        ((0..4).map(|_| self.next()).sum::<f64>() - 2.0) * 1.732
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Health {
    Healthy,
    /// The daily peak charge falls this many points a day from day `from`.
    Battery {
        from: u64,
        per_day: f64,
    },
    /// The cooled compartment warms this many °C a day from day `from`.
    Cooling {
        from: u64,
        per_day: f64,
    },
}

/// The locker's reading at hour `h`: charged on mains by day, on battery for four hours each
/// night; the cooled compartment held near 5 °C.
fn reading(health: Health, h: u64, noise: &mut Noise, c: &CompartmentId) -> Sample {
    let day = (h / 24) as f64;
    let hour = h % 24;
    let peak = match health {
        Health::Battery { from, per_day } if day >= from as f64 => {
            100.0 - per_day * (day - from as f64)
        }
        _ => 100.0,
    };
    let on_battery = (1..5).contains(&hour);
    let charge = if on_battery {
        peak - 4.0 * hour as f64
    } else {
        peak - noise.next() * 1.5
    };
    let drift = match health {
        Health::Cooling { from, per_day } if day >= from as f64 => per_day * (day - from as f64),
        _ => 0.0,
    };
    Sample {
        at: START.plus(Duration::from_secs(h * 3_600)),
        battery_percent: charge.clamp(0.0, 100.0) as u8,
        mains: !on_battery,
        tamper: false,
        doors_open: 0,
        queued_events: 0,
        temperatures: vec![(c.clone(), (5.0 + drift + noise.gauss() * 0.4) as f32)],
    }
}

/// The day its hardware fails, if it does within the month.
fn fails(health: Health) -> Option<u64> {
    (0..DAYS).find(|&d| match health {
        Health::Healthy => false,
        Health::Battery { from, per_day } => {
            d >= from && 100.0 - per_day * ((d - from) as f64) < 60.0
        }
        Health::Cooling { from, per_day } => d >= from && 5.0 + per_day * ((d - from) as f64) > 8.0,
    })
}

#[tokio::test]
async fn over_a_month_every_degrading_locker_is_flagged_before_it_fails_and_no_healthy_one() {
    let mut fleet: Vec<(StationId, Health)> = (0..HEALTHY)
        .map(|i| (station_id(&format!("ok-{i:02}")), Health::Healthy))
        .collect();
    fleet.extend([
        (
            station_id("bat-1"),
            Health::Battery {
                from: 3,
                per_day: 2.0,
            },
        ),
        (
            station_id("bat-2"),
            Health::Battery {
                from: 6,
                per_day: 2.5,
            },
        ),
        (
            station_id("bat-3"),
            Health::Battery {
                from: 2,
                per_day: 1.6,
            },
        ),
        (
            station_id("cool-1"),
            Health::Cooling {
                from: 4,
                per_day: 0.25,
            },
        ),
        (
            station_id("cool-2"),
            Health::Cooling {
                from: 8,
                per_day: 0.3,
            },
        ),
        (
            station_id("cool-3"),
            Health::Cooling {
                from: 2,
                per_day: 0.2,
            },
        ),
    ]);
    let t = open(
        fleet
            .iter()
            .map(|(id, _)| seed(id.as_str(), [1, 0, 0, 0]))
            .collect(),
    )
    .await;
    println!("seed {SEED:#x}");
    let mut noise = Noise(SEED);
    let mut flagged: Vec<Option<u64>> = vec![None; fleet.len()];
    let mut false_flags = 0;
    for day in 0..DAYS {
        let mut samples = Vec::new();
        for (id, health) in &fleet {
            let c =
                CompartmentId::numbered(id.as_str(), lockergrid_protocol::Size::Small, 1).unwrap();
            for h in day * 24..(day + 1) * 24 {
                samples.push((id.clone(), reading(*health, h, &mut noise, &c)));
            }
        }
        t.store.record_telemetry(samples).await.unwrap();
        let end = START.plus(Duration::from_secs((day + 1) * 86_400));
        let since = Timestamp(end.millis().saturating_sub(14 * 86_400_000));
        for (n, (id, health)) in fleet.iter().enumerate() {
            let Series::Rollups(hours) = t
                .store
                .telemetry(id, (since, end), Step::Hour, 400)
                .unwrap()
            else {
                panic!("rollups");
            };
            if findings(&hours).is_empty() {
                continue;
            }
            if *health == Health::Healthy {
                false_flags += 1;
                println!("false flag: {id} on day {day}: {:?}", findings(&hours));
            } else if flagged[n].is_none() {
                flagged[n] = Some(day);
            }
        }
    }
    for (n, (id, health)) in fleet.iter().enumerate().skip(HEALTHY) {
        let failed = fails(*health).expect("it fails within the month");
        println!(
            "{id}: flagged on day {:?}, fails on day {failed}",
            flagged[n]
        );
        assert!(
            flagged[n].is_some_and(|d| d < failed),
            "{id} ({health:?}) flagged on {:?}, failed on day {failed}",
            flagged[n]
        );
    }
    println!("false flags over {HEALTHY} healthy lockers in {DAYS} days: {false_flags}");
    assert_eq!(false_flags, 0);
}
