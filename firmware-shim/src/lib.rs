//! The firmware shim that runs on a locker controller. It owns what the locker decides for
//! itself: whether a command from a node may be executed. It depends on the protocol crate only
//! and must never link wasmtime or redb.

pub mod verify;
