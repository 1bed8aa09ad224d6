//! The only `bindgen!` of the host: Rust types for the WIT worlds in `wit/`.

/// The `reservation-policy` world.
pub mod reservation_policy {
    wasmtime::component::bindgen!({
        world: "reservation-policy",
        path: "../wit",
    });
}
