//! End-to-end tests: a real gateway on a loopback socket, real HTTP, a real redb file.

mod bad_input;
mod delivery;
mod devices;
mod doors;
mod edge_plugins;
mod edges;
mod expiry;
mod fleet;
mod flows;
mod leaks;
mod limits;
mod notifications;
mod openapi;
mod plugins;
mod race;
mod returns;
mod roles;
mod rollouts;
mod security;
