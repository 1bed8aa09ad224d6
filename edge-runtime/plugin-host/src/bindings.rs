//! The only `bindgen!` of the host: Rust types for the WIT worlds in `wit/`. The `types` and
//! `host` interfaces are generated once, with the reservation-policy world, and shared by the
//! other two, so every world speaks the same Rust types. Calls into a plugin are `async`, so a
//! call runs on the caller's task and yields at each epoch tick instead of holding its thread
//! (see `engine`); what a plugin imports from the host stays synchronous.

/// The `reservation-policy` world, and the `types` and `host` interfaces every world shares.
pub mod reservation_policy {
    wasmtime::component::bindgen!({
        world: "reservation-policy",
        path: "../../wit",
        exports: { default: async },
    });
}

/// The `notification-router` world.
pub mod notification_router {
    wasmtime::component::bindgen!({
        world: "notification-router",
        path: "../../wit",
        exports: { default: async },
        with: {
            "lockergrid:plugin/types": super::reservation_policy::lockergrid::plugin::types,
            "lockergrid:plugin/host": super::reservation_policy::lockergrid::plugin::host,
        },
    });
}

/// The `site-rules` world.
pub mod site_rules {
    wasmtime::component::bindgen!({
        world: "site-rules",
        path: "../../wit",
        exports: { default: async },
        with: {
            "lockergrid:plugin/types": super::reservation_policy::lockergrid::plugin::types,
            "lockergrid:plugin/host": super::reservation_policy::lockergrid::plugin::host,
        },
    });
}

pub use reservation_policy::lockergrid::plugin::{host, types};
