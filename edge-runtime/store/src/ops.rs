//! The writer operations, one file each: the `Store` method a caller awaits and the `Writer`
//! method that applies it inside a batch's transaction, side by side. The records they share
//! live in the modules named after those records (`reservations`, `returns`, `leases`, …).

mod admit_code_entry;
mod apply_decisions;
mod apply_sync;
mod authorize_return;
mod change_device;
mod collect;
mod deposit;
mod device_seen;
mod device_self_test;
mod door_closed;
mod drained;
mod expire_due;
pub(crate) mod lockdown;
mod maintain_leases;
mod offline_pickup;
mod offline_rejection;
mod override_site_rules;
mod plan_notification;
mod provision_device;
mod raise_counter;
pub(crate) mod record_alerts;
pub(crate) mod record_delivery;
pub(crate) mod record_telemetry;
pub(crate) mod reissue_code;
mod reject_code;
mod relay_command;
mod release;
pub(crate) mod relocate_reservation;
mod reserve;
mod revoke_tokens;
pub(crate) mod rollouts;
mod seed;
pub(crate) mod service_compartment;
mod set_station_status;
mod settle_command;
mod settle_event;
mod unlock_for_collection;
mod unlock_for_deposit;
mod unlock_for_pickup;
