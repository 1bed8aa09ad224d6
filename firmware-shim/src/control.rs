//! The simulation control: a line protocol on a loopback socket through which a person or a test
//! acts on a simulated locker — presses keys, opens and closes doors, trips the tamper switch.
//!
//! One command per line, one answer per line: `ok`, `ok <json>` for `status`, or
//! `error <message>`.
//!
//! | command | effect |
//! |---|---|
//! | `press <keys>` | keypad: digits, `*` clears, `#` confirms |
//! | `qr <text>` | a QR code at the reader |
//! | `open <compartment>` / `close <compartment>` | a person opens or closes a door |
//! | `tamper on\|off`, `mains on\|off` | switches |
//! | `temp <compartment> <celsius>` | a thermometer reading |
//! | `jam <compartment>` | the latch stops releasing |
//! | `wear battery <points a day>`, `wear <compartment> <°C a day>`, `wear latency <ms a day>` | hardware that wears out as it ages |
//! | `flap <compartment> <movements a day>`, `weaken <compartment> <failure chance a day>` | a flapping door sensor, a weakening latch, as it ages |
//! | `age <days>` | ages the hardware |
//! | `status` | the agent's status, the open doors and the shut doors whose latch is released, JSON |

use crate::agent::Status;
use crate::hardware::{Door, Hardware};
use crate::sim::SimLocker;
use lockergrid_protocol::CompartmentId;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Longest command line accepted.
const MAX_LINE: usize = 1024;

/// Serves the control protocol on `listener` for `sim`, forever.
pub async fn serve(
    listener: TcpListener,
    sim: Arc<Mutex<SimLocker>>,
    status: watch::Receiver<Status>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let sim = sim.clone();
        let status = status.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let answer = if line.len() > MAX_LINE {
                    "error line too long".to_string()
                } else {
                    apply(&line, &sim, &status)
                };
                if write
                    .write_all(format!("{answer}\n").as_bytes())
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
    }
}

fn compartment(arg: Option<&str>) -> Result<CompartmentId, String> {
    let arg = arg.ok_or("which compartment?")?;
    CompartmentId::new(arg).map_err(|e| format!("compartment {arg:?}: {e}"))
}

fn switch(arg: Option<&str>) -> Result<bool, String> {
    match arg {
        Some("on") => Ok(true),
        Some("off") => Ok(false),
        other => Err(format!("expected on or off, got {other:?}")),
    }
}

/// Applies one command line and returns the answer line.
pub fn apply(line: &str, sim: &Mutex<SimLocker>, status: &watch::Receiver<Status>) -> String {
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or_default();
    let first = words.next();
    let second = words.next();
    let mut sim = sim.lock().expect("sim lock");
    let result: Result<Option<String>, String> = match verb {
        "press" => first
            .ok_or_else(|| "which keys?".to_string())
            .and_then(|keys| sim.press(keys).map_err(|e| e.to_string()))
            .map(|()| None),
        "qr" => first
            .ok_or_else(|| "which text?".to_string())
            .map(|text| sim.show_qr(text))
            .map(|()| None),
        "open" => compartment(first)
            .and_then(|c| sim.open_door(&c).map_err(|e| e.to_string()))
            .map(|()| None),
        "close" => compartment(first)
            .and_then(|c| sim.close_door(&c).map_err(|e| e.to_string()))
            .map(|()| None),
        "tamper" => switch(first).map(|on| sim.set_tamper(on)).map(|()| None),
        "mains" => switch(first).map(|on| sim.set_mains(on)).map(|()| None),
        "temp" => compartment(first).and_then(|c| {
            let celsius: f32 = second
                .and_then(|t| t.parse().ok())
                .ok_or("temperature in °C?")?;
            sim.set_temperature(&c, celsius)
                .map_err(|e| e.to_string())
                .map(|()| None)
        }),
        "jam" => compartment(first).map(|c| sim.jam(&c)).map(|()| None),
        "wear" => second
            .and_then(|p| p.parse::<f64>().ok())
            .filter(|p| p.is_finite())
            .ok_or_else(|| {
                "wear battery <points a day>, wear latency <ms a day>, or wear <compartment> <°C a day>?".to_string()
            })
            .and_then(|per_day| match first {
                Some("battery") => {
                    sim.wear_battery(per_day);
                    Ok(None)
                }
                Some("latency") => {
                    sim.slow_down(per_day);
                    Ok(None)
                }
                other => compartment(other).and_then(|c| {
                    sim.drift_temperature(&c, per_day)
                        .map_err(|e| e.to_string())
                        .map(|()| None)
                }),
            }),
        "flap" | "weaken" => compartment(first).and_then(|c| {
            let per_day: f64 = second
                .and_then(|p| p.parse().ok())
                .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                .ok_or("how much a day?")?;
            let worn = if verb == "flap" {
                sim.flap(&c, per_day)
            } else {
                sim.weaken(&c, per_day)
            };
            worn.map_err(|e| e.to_string()).map(|()| None)
        }),
        "age" => first
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d >= 0.0 && *d <= 3_650.0)
            .ok_or_else(|| "age by how many days (0 to 3650)?".to_string())
            .map(|days| sim.age(days))
            .map(|()| None),
        "battery" => first
            .and_then(|p| p.parse::<u8>().ok())
            .filter(|p| *p <= 100)
            .ok_or_else(|| "battery charge in percent, 0 to 100?".to_string())
            .map(|p| sim.set_battery(p))
            .map(|()| None),
        "status" => {
            let s = status.borrow().clone();
            let open: Vec<String> = sim
                .compartments()
                .into_iter()
                .filter(|c| sim.door(c) == Ok(Door::Open))
                .map(|c| c.to_string())
                .collect();
            Ok(Some(
                serde_json::json!({
                    "connected": s.connected,
                    "sessions": s.sessions,
                    "queued_events": s.queued_events,
                    "executed": s.executed,
                    "cached_codes": s.cached_codes,
                    "refused_codes": s.refused_codes,
                    "refused": s.refused,
                    "out_of_service": s.out_of_service,
                    "firmware": s.firmware,
                    "on_trial": s.on_trial,
                    "boots": s.boots,
                    "doors_open": open,
                    "unlatched": sim.unlatched(),
                })
                .to_string(),
            ))
        }
        other => Err(format!("unknown command {other:?}")),
    };
    match result {
        Ok(None) => "ok".into(),
        Ok(Some(json)) => format!("ok {json}"),
        Err(e) => format!("error {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hardware::{HardwareError, Sensed};

    #[test]
    fn the_control_acts_like_a_person_at_the_locker_and_refuses_nonsense() {
        let door = CompartmentId::new("ams-zuid:S001").unwrap();
        let sim = Mutex::new(SimLocker::new([door.clone()]));
        let (_tx, status) = watch::channel(Status::default());
        let run = |line: &str| apply(line, &sim, &status);
        assert_eq!(run("press 123456#"), "ok");
        assert!(
            run("open ams-zuid:S001").starts_with("error"),
            "a latched door stays shut"
        );
        sim.lock().unwrap().unlock(&door).unwrap();
        assert!(run("status").contains("\"unlatched\":[\"ams-zuid:S001\"]"));
        assert_eq!(run("open ams-zuid:S001"), "ok");
        assert!(run("status").contains("\"doors_open\":[\"ams-zuid:S001\"]"));
        assert_eq!(run("close ams-zuid:S001"), "ok");
        assert_eq!(run("tamper on"), "ok");
        for bad in [
            "",
            "fly",
            "press",
            "press 12a",
            "open",
            "open nope:X001",
            "tamper maybe",
            "temp ams-zuid:S001 warm",
        ] {
            assert!(run(bad).starts_with("error "), "{bad:?}: {}", run(bad));
        }
        assert_eq!(
            sim.lock().unwrap().drain(),
            vec![
                Sensed::CodeEntered("123456".into()),
                Sensed::DoorOpened(door.clone()),
                Sensed::DoorClosed(door),
                Sensed::Tamper(true),
            ]
        );
    }

    #[test]
    fn worn_hardware_ages_a_battery_and_a_cooled_compartment_and_nonsense_is_refused() {
        let cool = CompartmentId::new("ams-zuid:S001").unwrap();
        let sim = Mutex::new(SimLocker::new([cool.clone()]));
        let (_tx, status) = watch::channel(Status::default());
        let run = |line: &str| apply(line, &sim, &status);
        assert_eq!(run("temp ams-zuid:S001 5"), "ok");
        assert_eq!(run("wear battery 1.5"), "ok");
        assert_eq!(run("wear ams-zuid:S001 0.25"), "ok");
        assert_eq!(run("age 10"), "ok");
        let mut worn = sim.lock().unwrap();
        assert_eq!(worn.battery_percent(), 85, "15 points of capacity gone");
        worn.set_battery(100);
        assert_eq!(
            worn.battery_percent(),
            85,
            "a full charge reaches what is left"
        );
        assert_eq!(
            worn.drain().last(),
            Some(&Sensed::Temperature(cool.clone(), 7.5)),
            "2.5 °C warmer after ten days"
        );
        drop(worn);
        assert_eq!(run("flap ams-zuid:S001 2.5"), "ok");
        assert_eq!(run("weaken ams-zuid:S001 1"), "ok");
        assert_eq!(run("wear latency 0"), "ok");
        assert_eq!(run("age 2"), "ok");
        let mut worn = sim.lock().unwrap();
        let flaps = worn
            .drain()
            .iter()
            .filter(|s| matches!(s, Sensed::DoorOpened(_)))
            .count();
        assert_eq!(flaps, 5, "2.5 movements a day for two days");
        assert_eq!(
            worn.unlock(&cool),
            Err(HardwareError::LatchFailed("ams-zuid:S001".into())),
            "a latch failing every unlock after two days at 1 a day"
        );
        drop(worn);
        for bad in [
            "wear",
            "flap ams-zuid:S001 -1",
            "weaken nope:X001 0.1",
            "wear battery fast",
            "wear nope:X001 1",
            "age -1",
            "age forever",
        ] {
            assert!(run(bad).starts_with("error "), "{bad:?}: {}", run(bad));
        }
    }
}
