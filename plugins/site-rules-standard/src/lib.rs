//! `site-rules-standard`: opening hours per site (customers, agents and carriers only while the
//! site is open; operators always), temperature limits for climate-controlled compartments,
//! a station lock-down after a tamper alert, and firmware updates in the site's quiet hours.
//! Settings: `opens` and `closes` as "HH:MM" local time (default open all day),
//! `min_temperature_c` and `max_temperature_c` (defaults 2 and 8), `low_battery_percent`
//! (default 20), `update_hours` as "HH:MM-HH:MM" local time (default "01:00-05:00";
//! "00:00-24:00" for any time).

use lockergrid_plugin_sdk::site_rules::lockergrid::plugin::host;
use lockergrid_plugin_sdk::site_rules::lockergrid::plugin::types::{
    AccessAttempt, AccessRole, Alert, Reading, Severity, Telemetry, UpdateCheck,
};
use lockergrid_plugin_sdk::site_rules::{Decision, Guest, UpdateDecision};

struct Standard;

/// Minutes in a day.
const DAY: u16 = 24 * 60;

/// A local time setting "HH:MM" as minutes since midnight.
fn minute_of_day(key: &str) -> Option<u16> {
    parse_minute(&host::setting(key)?)
}

fn setting_f32(key: &str, default: f32) -> f32 {
    host::setting(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn open_at(minute: u16) -> Result<(), String> {
    let (Some(opens), Some(closes)) = (minute_of_day("opens"), minute_of_day("closes")) else {
        return Ok(());
    };
    let open = if opens <= closes {
        (opens..closes).contains(&minute)
    } else {
        minute >= opens || minute < closes
    };
    if open {
        Ok(())
    } else {
        Err(format!(
            "the site is closed; it opens at {:02}:{:02}",
            opens / 60,
            opens % 60
        ))
    }
}

/// A local time "HH:MM" as minutes since midnight.
fn parse_minute(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h <= 24 && m < 60 && h * 60 + m <= DAY).then_some(h * 60 + m)
}

/// The quiet hours updates install in, from `update_hours` ("HH:MM-HH:MM").
fn update_hours() -> (u16, u16) {
    host::setting("update_hours")
        .and_then(|text| {
            let (from, to) = text.split_once('-')?;
            Some((parse_minute(from)?, parse_minute(to)?))
        })
        .unwrap_or((60, 5 * 60))
}

fn alert(severity: Severity, code: &str, message: String, lock_down: bool) -> Alert {
    Alert {
        severity,
        code: code.into(),
        message,
        lock_down,
    }
}

impl Guest for Standard {
    fn check_access(attempt: AccessAttempt) -> Decision {
        if attempt.role == AccessRole::Operator {
            return Decision::Allow;
        }
        match open_at(attempt.local_minute) {
            Ok(()) => Decision::Allow,
            Err(reason) => Decision::Deny(reason),
        }
    }

    fn assess(reading: Reading) -> Vec<Alert> {
        let place = reading.compartment_id.as_deref().map_or_else(
            || reading.station_id.clone(),
            |c| format!("{}/{c}", reading.station_id),
        );
        match reading.value {
            Telemetry::Tamper(true) => vec![alert(
                Severity::Critical,
                "tamper",
                format!("tamper switch tripped at {place}; station locked down"),
                true,
            )],
            Telemetry::TemperatureC(t) if reading.climate_controlled => {
                let (min, max) = (
                    setting_f32("min_temperature_c", 2.0),
                    setting_f32("max_temperature_c", 8.0),
                );
                if t < min || t > max {
                    // Far out of range spoils what is inside: someone must act now.
                    let severity = if t < min - 5.0 || t > max + 5.0 {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    };
                    vec![alert(
                        severity,
                        "temperature-out-of-range",
                        format!("{t:.1} °C at {place}, allowed {min:.1} to {max:.1} °C"),
                        false,
                    )]
                } else {
                    Vec::new()
                }
            }
            Telemetry::BatteryPercent(p)
                if f32::from(p) < setting_f32("low_battery_percent", 20.0) =>
            {
                let severity = if p < 5 {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                vec![alert(
                    severity,
                    "battery-low",
                    format!("battery at {p} % at {place}"),
                    false,
                )]
            }
            Telemetry::MainsPower(false) => vec![alert(
                Severity::Warning,
                "mains-lost",
                format!("{place} runs on battery"),
                false,
            )],
            Telemetry::DoorOpenSeconds(s) if s >= 300 => vec![alert(
                Severity::Warning,
                "door-left-open",
                format!("a door at {place} has been open {s} s"),
                false,
            )],
            _ => Vec::new(),
        }
    }

    fn may_update(check: UpdateCheck) -> UpdateDecision {
        let (from, to) = update_hours();
        let minute = check.local_minute % DAY;
        let inside = if from <= to {
            (from..to).contains(&minute)
        } else {
            minute >= from || minute < to
        };
        if inside {
            UpdateDecision::Now
        } else {
            UpdateDecision::Defer(u32::from((from + DAY - minute) % DAY))
        }
    }
}

lockergrid_plugin_sdk::site_rules::export_site_rules!(Standard with_types_in lockergrid_plugin_sdk::site_rules);
