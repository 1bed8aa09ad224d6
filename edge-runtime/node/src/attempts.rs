//! Failed code entries per station. Five failures within ten minutes lock the station's code
//! entry for fifteen minutes, which makes guessing an eight-digit code hopeless. The gateway keeps
//! one count for the stations it decides for, an edge node its own for the codes it decides
//! while its uplink is down. Kept in memory: a restart forgets the count, which costs an attacker
//! a restart they cannot cause.

use lockergrid_protocol::{StationId, Timestamp};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Failures that lock a station.
pub const MAX_FAILURES: usize = 5;
/// The window the failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long a lock lasts.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Default)]
struct StationAttempts {
    failures: VecDeque<Timestamp>,
    locked_until: Option<Timestamp>,
}

/// Failed attempts of every station.
#[derive(Debug, Default)]
pub struct CodeAttempts {
    stations: Mutex<HashMap<StationId, StationAttempts>>,
}

impl CodeAttempts {
    /// How long the station stays locked, if it is locked at `now`.
    pub fn locked(&self, station: &StationId, now: Timestamp) -> Option<Duration> {
        let stations = self.stations.lock().unwrap_or_else(|p| p.into_inner());
        let until = stations.get(station)?.locked_until?;
        (until > now).then(|| until.since(now))
    }

    /// Counts a failure at `now`; returns how many more are allowed before the lock.
    pub fn fail(&self, station: &StationId, now: Timestamp) -> usize {
        let mut stations = self.stations.lock().unwrap_or_else(|p| p.into_inner());
        let entry = stations.entry(station.clone()).or_default();
        while entry
            .failures
            .front()
            .is_some_and(|t| now.since(*t) >= WINDOW)
        {
            entry.failures.pop_front();
        }
        entry.failures.push_back(now);
        if entry.failures.len() >= MAX_FAILURES {
            entry.locked_until = Some(now.plus(LOCKOUT));
            entry.failures.clear();
            return 0;
        }
        MAX_FAILURES - entry.failures.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_failures_in_ten_minutes_lock_the_station_for_a_while() {
        let attempts = CodeAttempts::default();
        let station = StationId::new("st").expect("valid");
        let t0 = Timestamp(1_000_000);
        for i in 0..4 {
            attempts.fail(&station, t0.plus(Duration::from_secs(60 * i)));
        }
        assert_eq!(attempts.locked(&station, t0.plus(WINDOW)), None);
        assert_eq!(
            attempts.fail(&station, t0.plus(Duration::from_secs(300))),
            0
        );
        let now = t0.plus(Duration::from_secs(301));
        assert!(attempts.locked(&station, now).is_some());
        assert_eq!(attempts.locked(&station, now.plus(LOCKOUT)), None);
    }

    #[test]
    fn failures_spread_over_more_than_ten_minutes_do_not_lock() {
        let attempts = CodeAttempts::default();
        let station = StationId::new("st").expect("valid");
        for i in 0..20 {
            let now = Timestamp(0).plus(Duration::from_secs(200 * i));
            attempts.fail(&station, now);
            assert_eq!(attempts.locked(&station, now), None, "failure {i}");
        }
    }
}
