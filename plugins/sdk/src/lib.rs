//! The guest side of Lockergrid plugins: one module per WIT world in `wit/`, each with the types,
//! the `host` imports and an export macro. A plugin crate implements its world's `Guest` trait
//! and names it with the macro, e.g.
//! `lockergrid_plugin_sdk::export_reservation_policy!(Plugin with_types_in lockergrid_plugin_sdk::reservation_policy);`

#![allow(
    unsafe_code,
    reason = "wit-bindgen's generated glue is unsafe by nature"
)]

/// The `reservation-policy` world: rank candidate stations, choose the hold.
#[expect(
    clippy::too_many_arguments,
    reason = "wit-bindgen's generated glue passes flattened records as arguments"
)]
pub mod reservation_policy {
    wit_bindgen::generate!({
        world: "reservation-policy",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_reservation_policy",
        default_bindings_module: "lockergrid_plugin_sdk::reservation_policy",
    });
}

/// The `notification-router` world: channels, order and delays for one event and recipient.
#[expect(
    clippy::too_many_arguments,
    reason = "wit-bindgen's generated glue passes flattened records as arguments"
)]
pub mod notification_router {
    wit_bindgen::generate!({
        world: "notification-router",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_notification_router",
        default_bindings_module: "lockergrid_plugin_sdk::notification_router",
    });
}

/// The `site-rules` world: allow or deny access, turn readings into alerts.
#[expect(
    clippy::too_many_arguments,
    reason = "wit-bindgen's generated glue passes flattened records as arguments"
)]
pub mod site_rules {
    wit_bindgen::generate!({
        world: "site-rules",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_site_rules",
        default_bindings_module: "lockergrid_plugin_sdk::site_rules",
    });
}
