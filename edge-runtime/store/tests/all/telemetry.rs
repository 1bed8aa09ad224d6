//! Telemetry as a time series on a clock the test controls: raw samples folded into minute and
//! hour rollups as they are written, read back by resolution, and each resolution removed when
//! it is older than it is kept.

use crate::support::{START, open, seed, station_id};
use lockergrid_model::{Sample, Stat};
use lockergrid_protocol::{CompartmentId, Timestamp};
use lockergrid_store::{Expired, Series, Step};
use std::time::Duration;

fn sample(at: Timestamp, battery: u8, celsius: f32) -> Sample {
    Sample {
        at,
        battery_percent: battery,
        mains: battery > 50,
        tamper: false,
        doors_open: 0,
        queued_events: 0,
        temperatures: vec![(CompartmentId::new("st-a:S001").unwrap(), celsius)],
    }
}

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test]
async fn samples_roll_up_by_minute_and_hour_and_each_resolution_expires_in_its_time() {
    let t = open(vec![seed("st-a", [1, 0, 0, 0])]).await;
    let st = station_id("st-a");
    // Four samples in the first minute, one in the next: two minutes, one hour.
    let at = |seconds: u64| START.plus(Duration::from_secs(seconds));
    let samples = [
        (0, 90, 4.0),
        (15, 80, 6.0),
        (30, 70, 5.0),
        (45, 60, 5.0),
        (75, 40, 9.0),
    ];
    t.store
        .record_telemetry(
            samples
                .iter()
                .map(|(s, b, c)| (st.clone(), sample(at(*s), *b, *c)))
                .collect(),
        )
        .await
        .unwrap();
    let span = (START, START.plus(DAY));
    let Series::Raw(raw) = t.store.telemetry(&st, span, Step::Raw, 100).unwrap() else {
        panic!("raw samples");
    };
    assert_eq!(raw.len(), 5);
    let Series::Rollups(minutes) = t.store.telemetry(&st, span, Step::Minute, 100).unwrap() else {
        panic!("rollups");
    };
    assert_eq!(minutes.len(), 2);
    let first = &minutes[0];
    assert_eq!(
        (first.start, first.samples, first.on_battery),
        (START, 4, 0)
    );
    assert_eq!(
        first.battery_percent,
        Stat {
            min: 60.0,
            max: 90.0,
            sum: 300.0,
            n: 4
        }
    );
    let s001 = CompartmentId::new("st-a:S001").unwrap();
    assert_eq!(first.temperatures[&s001].mean(), 5.0);
    assert_eq!(minutes[1].on_battery, 1);
    let Series::Rollups(hours) = t.store.telemetry(&st, span, Step::Hour, 100).unwrap() else {
        panic!("rollups");
    };
    assert_eq!((hours.len(), hours[0].samples), (1, 5));
    assert_eq!(hours[0].temperatures[&s001].max, 9.0);

    // A day later the raw samples go; 30 days later the minutes; a year later the hours.
    t.clock.advance(DAY + Duration::from_secs(120));
    let gone = t.store.expire_telemetry().await.unwrap();
    assert_eq!(
        gone,
        Expired {
            raw: 5,
            minutes: 0,
            hours: 0
        }
    );
    t.clock.advance(30 * DAY);
    assert_eq!(t.store.expire_telemetry().await.unwrap().minutes, 2);
    t.clock.advance(335 * DAY);
    assert_eq!(t.store.expire_telemetry().await.unwrap().hours, 1);
    let Series::Rollups(hours) = t.store.telemetry(&st, span, Step::Hour, 100).unwrap() else {
        panic!("rollups");
    };
    assert!(hours.is_empty());
    assert_eq!(
        t.store.expire_telemetry().await.unwrap(),
        Expired::default()
    );
}
