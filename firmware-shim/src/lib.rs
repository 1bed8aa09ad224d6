//! The firmware shim that runs on a locker controller. It owns what the locker decides for
//! itself: whether a command from a node may be executed, and the hardware it drives (a trait,
//! with a simulation that behaves like the real thing). It depends on the protocol crate only
//! and must never link wasmtime or redb.

pub mod hardware;
pub mod sim;
pub mod tls;
pub mod verify;
