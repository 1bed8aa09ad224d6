//! The plugins of `plugins/`, built for this checkout by `build.rs`, as component bytes.

macro_rules! component {
    ($(#[$doc:meta])* $name:ident, $file:literal) => {
        $(#[$doc])*
        pub const $name: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".wasm"));
    };
}

component!(
    /// The default reservation policy.
    RESERVATION_BALANCED,
    "reservation_balanced"
);
component!(
    /// A policy that never returns.
    MISBEHAVE_LOOP,
    "misbehave_loop"
);
component!(
    /// A policy that traps on every call.
    MISBEHAVE_TRAP,
    "misbehave_trap"
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
