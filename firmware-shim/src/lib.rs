//! The firmware shim that runs on a locker controller. It owns what the locker decides for
//! itself: whether a command from a node may be executed, the hardware it drives (a trait, with a
//! simulation that behaves like the real thing), its MQTT connection over TLS 1.3 with its own
//! certificate, and the durable queue that keeps its events until the node acknowledges them. It
//! depends on the protocol crate only and must never link wasmtime or redb.

pub mod agent;
pub mod control;
pub mod hardware;
pub mod queue;
pub mod sim;
pub mod slots;
pub mod state;
pub mod tls;
pub mod update;
pub mod verify;
