//! Tests of the `lockergrid` binary as a process: the command line and crash durability.

mod cli;
mod durability;
mod pki_cli;
mod plugin_cli;
mod process;
