//! Service tiers and the pickup window each one gets.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The delivery tier the checkout chose; it decides how long a parcel waits for pickup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Three days.
    Standard,
    /// Seven days.
    Prime,
    /// Fourteen days.
    Business,
}

impl Tier {
    /// How long a stored parcel waits for pickup before it expires.
    pub const fn pickup_window(self) -> Duration {
        const DAY: u64 = 24 * 60 * 60;
        Duration::from_secs(
            DAY * match self {
                Tier::Standard => 3,
                Tier::Prime => 7,
                Tier::Business => 14,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickup_windows_follow_the_tier() {
        assert_eq!(
            Tier::Standard.pickup_window(),
            Duration::from_secs(3 * 86_400)
        );
        assert_eq!(Tier::Prime.pickup_window(), Duration::from_secs(7 * 86_400));
        assert_eq!(
            Tier::Business.pickup_window(),
            Duration::from_secs(14 * 86_400)
        );
    }
}
