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
