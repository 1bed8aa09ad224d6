//! Integration tests of the store against a real redb file.

mod crash;
mod devices;
mod doors;
mod expiry;
mod flows;
mod leases;
mod lockouts;
mod maintenance;
mod maintenance_month;
mod notifications;
mod race;
mod revocations;
mod rollouts;
mod support;
mod sync;
mod telemetry;
