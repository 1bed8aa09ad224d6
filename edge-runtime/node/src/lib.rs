//! What any Lockergrid node does with its lockers, whichever node it is: the gateway for the
//! lockers wired to it, an edge node for its own.
//!
//! It owns the rules of a code typed on a keypad: the lock-out on wrong codes ([`CodeAttempts`]).
//! It must never depend on the HTTP layer or on the gateway: both the gateway and the edge node
//! use it.

mod attempts;

pub use attempts::*;
