//! Tests of the `lockergrid` binary as a process: the command line and crash durability.

mod cli;
mod device_cli;
mod door_loss;
mod durability;
mod edge_kill;
mod firmware_cli;
mod log_leaks;
mod notify_kill;
mod pki_cli;
mod plugin_cli;
mod process;
mod rollout_kill;
mod tokens;
