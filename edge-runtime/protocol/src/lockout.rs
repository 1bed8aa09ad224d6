//! The lock-out on wrong codes at a station, one rule for every level that checks codes (gateway,
//! edge node, a locker alone; DESIGN.md §7, docs/security.md).
//!
//! An attempt is counted *before* its code is checked and given back once the code turned out
//! right, so a burst of entries in flight can never have more codes checked than the budget
//! allows: whoever counts and checks in one step (a store's write transaction, a locker's single
//! task) refuses the rest unchecked. Five failures are free; after that each further attempt
//! waits twice as long as the one before, from 30 seconds up to an hour, so a person who
//! mistypes a few times costs the next customer seconds while a patient attacker gets at most
//! one check an hour. A day without a failure forgets the count.

use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Failures a station allows before attempts have to wait.
pub const FREE_FAILURES: u32 = 5;
/// The wait after the first failure beyond the free ones; it doubles with each further one.
pub const FIRST_DELAY: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(60 * 60);
/// How long without a failure before the count starts again from zero.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// A station's wrong-code count.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockout {
    /// Failures counted (attempts in flight included) since the count last started from zero.
    pub failures: u32,
    /// When the last of them was counted.
    pub last_failure_at: Option<Timestamp>,
}

impl Lockout {
    /// The count as it stands at `now`: zero once a day passed without a failure.
    fn current(&self, now: Timestamp) -> u32 {
        match self.last_failure_at {
            Some(at) if now.since(at) < FORGET_AFTER => self.failures,
            _ => 0,
        }
    }

    /// How long an attempt at `now` has to wait, `None` if it may be checked now.
    pub fn wait(&self, now: Timestamp) -> Option<Duration> {
        let failures = self.current(now);
        let at = self.last_failure_at?;
        let free_until = at.plus(delay_after(failures)?);
        (free_until > now).then(|| free_until.since(now))
    }

    /// Checks and counts an attempt at `now` in one step: `Err(wait)` refuses it unchecked,
    /// `Ok(())` counts it as a failure until [`Lockout::give_back`] says its code was right.
    pub fn admit(&mut self, now: Timestamp) -> Result<(), Duration> {
        if let Some(wait) = self.wait(now) {
            return Err(wait);
        }
        self.failures = self.current(now).saturating_add(1);
        self.last_failure_at = Some(now);
        Ok(())
    }

    /// An admitted attempt whose code was right: it is no failure.
    pub fn give_back(&mut self) {
        self.failures = self.failures.saturating_sub(1);
    }

    /// Attempts left before the next one has to wait.
    pub fn attempts_left(&self, now: Timestamp) -> u32 {
        FREE_FAILURES.saturating_sub(self.current(now))
    }

    /// Takes in a count made elsewhere for the same station (an edge node's while it was cut
    /// off, the node's on a locker): the larger count and the later failure, so neither side's
    /// failures give the other a fresh budget.
    pub fn merge(&mut self, other: &Lockout) {
        self.failures = self.failures.max(other.failures);
        self.last_failure_at = self.last_failure_at.max(other.last_failure_at);
    }
}

/// The wait after `failures` failures, `None` while they are free.
fn delay_after(failures: u32) -> Option<Duration> {
    let beyond = failures.checked_sub(FREE_FAILURES)?;
    let doubled = 2u32
        .checked_pow(beyond)
        .and_then(|factor| FIRST_DELAY.checked_mul(factor))
        .unwrap_or(MAX_DELAY);
    Some(doubled.min(MAX_DELAY))
}

#[cfg(test)]
mod tests;
