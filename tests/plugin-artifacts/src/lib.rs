//! The plugins of `plugins/`, built for this checkout by `build.rs`, as component bytes: the
//! three defaults the gateway bundles and installs on first start, and the misbehaving ones the
//! tests attack the host with.

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
    /// The default notification router.
    NOTIFY_MULTICHANNEL,
    "notify_multichannel"
);
component!(
    /// The default site rules.
    SITE_RULES_STANDARD,
    "site_rules_standard"
);

/// A default plugin: the world it implements, its name and version, and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Bundled {
    /// The WIT world, e.g. `reservation-policy`.
    pub world: &'static str,
    /// The plugin's name.
    pub name: &'static str,
    /// Its version.
    pub version: &'static str,
    /// The component.
    pub bytes: &'static [u8],
}

/// The default plugins, one per world, at the version of this checkout.
pub const DEFAULTS: [Bundled; 3] = [
    Bundled {
        world: "reservation-policy",
        name: "reservation-balanced",
        version: env!("CARGO_PKG_VERSION"),
        bytes: RESERVATION_BALANCED,
    },
    Bundled {
        world: "notification-router",
        name: "notify-multichannel",
        version: env!("CARGO_PKG_VERSION"),
        bytes: NOTIFY_MULTICHANNEL,
    },
    Bundled {
        world: "site-rules",
        name: "site-rules-standard",
        version: env!("CARGO_PKG_VERSION"),
        bytes: SITE_RULES_STANDARD,
    },
];

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
