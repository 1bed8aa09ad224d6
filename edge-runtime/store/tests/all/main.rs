//! Integration tests of the store against a real redb file.

mod crash;
mod device;
mod doors;
mod expiry;
mod flows;
mod leases;
mod plugins;
mod race;
mod support;
mod sync;
