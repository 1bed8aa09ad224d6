//! The fixture set a new plugin version must answer validly, within its limits, before it is
//! swapped in: a spread of requests, stations, access attempts, readings, events and recipients
//! that a production plugin meets every day.

use super::{
    Loaded, PluginError, PluginHost, Pre, RankRequest, bounded, check_alerts, check_decision,
    check_hold, check_plan, check_ranking, check_reminders, convert, wit, wit_request,
};
use lockergrid_model::Candidate;
use lockergrid_model::{
    AccessAttempt, AccessMethod, AccessRole, NotificationEvent, NotifyChannel, Reading, Recipient,
    Telemetry,
};
use lockergrid_model::{SizeCount, StationView};
use lockergrid_model::{StationKind, StationRecord};
use lockergrid_protocol::{CompartmentId, GeoPoint, ParcelSpec, Size, StationId, Tier, Timestamp};
use std::sync::Arc;

/// Noon on a weekday, 2026-06-03 12:00 UTC.
const NOW: Timestamp = Timestamp(1_780_488_000_000);

fn id(text: &str) -> StationId {
    StationId::new(text).expect("fixture ids are valid")
}

/// Twelve stations of every kind, fuller the farther they are.
fn stations() -> Vec<StationView> {
    let kinds = [
        StationKind::Urban,
        StationKind::Suburban,
        StationKind::TransitHub,
        StationKind::Residential,
    ];
    (0..12u32)
        .map(|i| {
            let total = 20 + i * 10;
            let free = (total * (12 - i)) / 12;
            let mut sizes = [SizeCount::default(); 4];
            sizes[0] = SizeCount { free, total };
            sizes[1] = SizeCount {
                free: free / 2,
                total: total / 2,
            };
            StationView::new(
                StationRecord::new(
                    id(&format!("fixture-{i:02}")),
                    format!("Fixture {i}"),
                    kinds[i as usize % kinds.len()],
                    GeoPoint {
                        lat: 52.37,
                        lon: 4.89,
                    },
                ),
                sizes,
                [[0; 5]; 4],
            )
        })
        .collect()
}

/// The fixture stations as candidates, nearest first.
fn candidates(stations: &[StationView]) -> Vec<Candidate<'_>> {
    (0..)
        .zip(stations)
        .map(|(i, station)| Candidate {
            station,
            distance_m: 150.0 + f64::from(i) * 310.0,
            score: 0.0,
        })
        .collect()
}

fn requests() -> [RankRequest; 3] {
    let parcel = |l, w, h, g| ParcelSpec {
        length_mm: l,
        width_mm: w,
        height_mm: h,
        weight_g: g,
    };
    [
        RankRequest {
            parcel: parcel(200, 150, 100, 500),
            size: Size::Small,
            tier: Tier::Standard,
        },
        RankRequest {
            parcel: parcel(380, 300, 150, 4_000),
            size: Size::Medium,
            tier: Tier::Prime,
        },
        RankRequest {
            parcel: parcel(100, 100, 50, 200),
            size: Size::Small,
            tier: Tier::Business,
        },
    ]
}

fn attempts() -> Vec<AccessAttempt> {
    let attempt = |role, method, local_minute, climate_controlled| AccessAttempt {
        station: id("fixture-00"),
        compartment: CompartmentId::new("S001").expect("valid"),
        role,
        method,
        at: NOW,
        local_minute,
        climate_controlled,
    };
    vec![
        attempt(AccessRole::Customer, AccessMethod::PickupCode, 720, false),
        attempt(AccessRole::Customer, AccessMethod::QrCode, 180, false),
        attempt(AccessRole::Agent, AccessMethod::Credential, 420, true),
        attempt(AccessRole::Carrier, AccessMethod::Credential, 1_380, false),
    ]
}

fn readings() -> Vec<Reading> {
    let reading = |(value, climate_controlled)| Reading {
        station: id("fixture-00"),
        compartment: Some(CompartmentId::new("S001").expect("valid")),
        climate_controlled,
        at: NOW,
        value,
    };
    [
        (Telemetry::TemperatureC(4.5), true),
        (Telemetry::TemperatureC(31.0), true),
        (Telemetry::TemperatureC(31.0), false),
        (Telemetry::BatteryPercent(7), false),
        (Telemetry::MainsPower(false), false),
        (Telemetry::Tamper(true), false),
        (Telemetry::DoorOpenSeconds(900), false),
    ]
    .into_iter()
    .map(reading)
    .collect()
}

fn recipients() -> Vec<Recipient> {
    vec![
        Recipient {
            id: "fixture-customer".into(),
            channels: vec![
                NotifyChannel::Push,
                NotifyChannel::Sms,
                NotifyChannel::Email,
            ],
            quiet_hours: Some((22 * 60, 7 * 60)),
            local_minute: 23 * 60 + 30,
        },
        Recipient {
            id: "fixture-email-only".into(),
            channels: vec![NotifyChannel::Email],
            quiet_hours: None,
            local_minute: 12 * 60,
        },
        Recipient {
            id: "fixture-unreachable".into(),
            channels: Vec::new(),
            quiet_hours: None,
            local_minute: 12 * 60,
        },
    ]
}

/// Runs every fixture of the plugin's world through it; the first invalid answer or failed call
/// refuses it.
pub(super) async fn exercise(host: &PluginHost, loaded: &Arc<Loaded>) -> Result<(), PluginError> {
    let named =
        |what: String| move |e: PluginError| PluginError::InvalidAnswer(format!("{what}: {e}"));
    let limits = &loaded.limits;
    match &loaded.pre {
        Pre::Policy(_) => {
            let views = stations();
            for (n, request) in requests().into_iter().enumerate() {
                let offered = candidates(&views);
                let stations = convert::stations(&offered, request.size);
                let run = host.start(loaded, NOW, |mut store, loaded| async move {
                    let instance = loaded.pre.policy().instantiate_async(&mut store).await?;
                    let ranking = instance
                        .call_rank(&mut store, wit_request(request), &stations)
                        .await?;
                    let hold = instance
                        .call_hold_minutes(&mut store, wit_request(request))
                        .await?;
                    Ok((ranking.stations, hold))
                });
                let (order, hold) = bounded(limits, run)
                    .await
                    .map_err(named(format!("request {n}")))?;
                check_ranking(&order, offered.len()).map_err(named(format!("request {n}")))?;
                check_hold(hold).map_err(named(format!("request {n}")))?;
            }
        }
        Pre::Rules(_) => {
            for (n, attempt) in attempts().iter().enumerate() {
                let wit_attempt = attempt.into();
                let run = host.start(loaded, NOW, |mut store, loaded| async move {
                    let instance = loaded.pre.rules().instantiate_async(&mut store).await?;
                    instance.call_check_access(&mut store, &wit_attempt).await
                });
                let decision = bounded(limits, run)
                    .await
                    .map_err(named(format!("access attempt {n}")))?;
                check_decision(decision.into()).map_err(named(format!("access attempt {n}")))?;
            }
            for (n, reading) in readings().iter().enumerate() {
                let wit_reading = reading.into();
                let run = host.start(loaded, NOW, |mut store, loaded| async move {
                    let instance = loaded.pre.rules().instantiate_async(&mut store).await?;
                    instance.call_assess(&mut store, &wit_reading).await
                });
                let alerts = bounded(limits, run)
                    .await
                    .map_err(named(format!("reading {n}")))?;
                check_alerts(alerts.into_iter().map(Into::into).collect())
                    .map_err(named(format!("reading {n}")))?;
            }
        }
        Pre::Router(_) => {
            for recipient in recipients() {
                let wit_recipient: wit::Recipient = (&recipient).into();
                for event in NotificationEvent::ALL {
                    let wit_recipient = &wit_recipient;
                    let run = host.start(loaded, NOW, |mut store, loaded| async move {
                        let instance = loaded.pre.router().instantiate_async(&mut store).await?;
                        instance
                            .call_route(&mut store, event.into(), wit_recipient)
                            .await
                    });
                    let plan = bounded(limits, run)
                        .await
                        .map_err(named(format!("{event:?} for {}", recipient.id)))?;
                    check_plan(plan.into(), &recipient.channels)
                        .map_err(named(format!("{event:?} for {}", recipient.id)))?;
                }
            }
            let run = host.start(loaded, NOW, |mut store, loaded| async move {
                let instance = loaded.pre.router().instantiate_async(&mut store).await?;
                instance.call_reminder_hours(&mut store).await
            });
            let hours = bounded(limits, run)
                .await
                .map_err(named("reminder hours".into()))?;
            check_reminders(hours).map_err(named("reminder hours".into()))?;
        }
    }
    Ok(())
}
