//! The misbehaving plugins of `plugins/`, built for this checkout by `build.rs`, as component
//! bytes the tests attack the host with, beside the bundled defaults. Only tests and benchmarks
//! depend on this crate.

pub use lockergrid_bundled_plugins::{
    Bundled, DEFAULTS, NOTIFY_MULTICHANNEL, RESERVATION_BALANCED, SITE_RULES_STANDARD,
};

macro_rules! component {
    ($(#[$doc:meta])* $name:ident, $file:literal) => {
        $(#[$doc])*
        pub const $name: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".wasm"));
    };
}

component!(
    /// A policy that never returns (after behaving through the host's fixtures, as each of the
    /// misbehaving ones does).
    MISBEHAVE_LOOP,
    "misbehave_loop"
);
component!(
    /// A policy that traps on every call.
    MISBEHAVE_TRAP,
    "misbehave_trap"
);
component!(
    /// Site rules that trap on every call but the host's fixtures.
    MISBEHAVE_SITE_TRAP,
    "misbehave_site_trap"
);
component!(
    /// A policy that recurses without bound.
    MISBEHAVE_RECURSION,
    "misbehave_recursion"
);
component!(
    /// A policy that ranks a station nobody offered.
    MISBEHAVE_UNKNOWN_STATION,
    "misbehave_unknown_station"
);
component!(
    /// A policy that answers with about 10 MiB.
    MISBEHAVE_HUGE_ANSWER,
    "misbehave_huge_answer"
);
component!(
    /// A policy that grows its memory towards 4 GiB.
    MISBEHAVE_MEMORY,
    "misbehave_memory"
);
