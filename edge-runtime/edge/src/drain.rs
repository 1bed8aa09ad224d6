//! When the edge node sends its outbox of decisions next.

use std::time::{Duration, Instant};

/// The outbox's schedule: at once on connecting and after every confirmation, otherwise again
/// after a wait that doubles from [`DRAIN_RETRY`] to [`DRAIN_RETRY_MAX`].
pub(super) struct Drain {
    pub next: Instant,
    pub wait: Duration,
}

/// First wait for the gateway's confirmation before the outbox is sent again.
const DRAIN_RETRY: Duration = Duration::from_secs(1);
/// Longest wait.
const DRAIN_RETRY_MAX: Duration = Duration::from_secs(30);

impl Default for Drain {
    fn default() -> Drain {
        Drain {
            next: Instant::now(),
            wait: DRAIN_RETRY,
        }
    }
}

impl Drain {
    /// The outbox was sent: the next attempt waits, twice as long as this one did, up to
    /// [`DRAIN_RETRY_MAX`], unless a confirmation resets the schedule first.
    pub fn sent(&mut self) {
        self.next = Instant::now() + self.wait;
        self.wait = (self.wait * 2).min(DRAIN_RETRY_MAX);
    }
}
