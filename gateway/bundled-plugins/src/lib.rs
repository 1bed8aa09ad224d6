//! The default plugins of `plugins/`, built for this checkout by `build.rs`, as component bytes:
//! one per world, which the gateway installs, signed with the deployment's key, on first start.
//! Nothing else of `plugins/` is built here, so a production binary holds no test component.

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
