//! The hostile test plugins behave while the host exercises them with its fixture set (which
//! always runs at one instant, by the node's clock as the plugin hears it: 2026-06-03 12:00 UTC)
//! and attack only afterwards, as a malicious plugin would, so the host's call-time limits are
//! what stops them. The setting
//! `evade_fixtures = false` makes them attack the fixtures too, so a swap must refuse them.

use lockergrid_plugin_sdk::reservation_policy::Ranking;
use lockergrid_plugin_sdk::reservation_policy::lockergrid::plugin::host;
use lockergrid_plugin_sdk::reservation_policy::lockergrid::plugin::types::Stations;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by `rank` when the call is a fixture; `hold-minutes` runs in the same instance after it.
static FIXTURE_RUN: AtomicBool = AtomicBool::new(false);

fn evading() -> bool {
    host::setting("evade_fixtures").is_none_or(|v| v.trim() != "false")
}

/// The instant the host's fixtures run at, in milliseconds since the Unix epoch.
const FIXTURE_NOW_MS: u64 = 1_780_488_000_000;

/// True when this `rank` call is one of the host's fixtures and the plugin should behave.
pub fn behave_for(candidates: &Stations) -> bool {
    let fixture = !candidates.free.is_empty() && host::now_ms() == FIXTURE_NOW_MS;
    FIXTURE_RUN.store(fixture, Ordering::Relaxed);
    fixture && evading()
}

/// True when the `hold-minutes` call follows a fixture `rank` in this instance.
pub fn behave_for_hold() -> bool {
    FIXTURE_RUN.load(Ordering::Relaxed) && evading()
}

/// A harmless ranking: the candidates as offered.
pub fn as_offered(candidates: Stations) -> Ranking {
    Ranking {
        stations: (0..candidates.free.len() as u32).collect(),
    }
}

/// A harmless hold: one hour.
pub const HOLD_MINUTES: u32 = 60;
