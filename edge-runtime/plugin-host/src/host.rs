//! What a plugin call runs with: the per-call store state, the `host` interface implemented on it,
//! and the one function that decides which WASI a plugin sees.

use super::bindings::{host, types};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::StoreLimits;
use wasmtime::component::{HasData, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliCtx, WasiCliCtxView, WasiCliView};
use wasmtime_wasi::p2::bindings::{cli, io};

/// Longest log line a plugin may write; the rest is cut.
const MAX_LOG_LINE: usize = 1_024;

/// The state of one plugin call's store.
pub struct CallState {
    /// Memory and instance limits the store enforces.
    pub limits: StoreLimits,
    /// The only WASI state a plugin reaches: the command line's. A whole `WasiCtx` would also
    /// seed random generators and box clocks for every call, for interfaces never linked.
    cli: WasiCliCtx,
    table: ResourceTable,
    settings: Arc<BTreeMap<String, String>>,
    plugin: Arc<str>,
    now_ms: u64,
}

impl CallState {
    /// State for a call of `plugin` with its settings, at `now_ms`.
    pub fn new(
        plugin: Arc<str>,
        settings: Arc<BTreeMap<String, String>>,
        limits: StoreLimits,
        now_ms: u64,
    ) -> CallState {
        CallState {
            limits,
            // No arguments, no environment, no preopened directories, stdio to nowhere.
            cli: WasiCliCtx::default(),
            table: ResourceTable::new(),
            settings,
            plugin,
            now_ms,
        }
    }
}

impl host::Host for CallState {
    fn log(&mut self, level: host::Level, message: String) {
        let mut message = message;
        if message.len() > MAX_LOG_LINE {
            let mut cut = MAX_LOG_LINE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let plugin = &*self.plugin;
        match level {
            host::Level::Debug => tracing::debug!(plugin, "{message}"),
            host::Level::Info => tracing::info!(plugin, "{message}"),
            host::Level::Warn => tracing::warn!(plugin, "{message}"),
            host::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }

    fn now_ms(&mut self) -> u64 {
        self.now_ms
    }

    fn setting(&mut self, key: String) -> Option<String> {
        self.settings.get(&key).cloned()
    }
}

impl types::Host for CallState {}

impl WasiCliView for CallState {
    fn cli(&mut self) -> WasiCliCtxView<'_> {
        WasiCliCtxView {
            ctx: &mut self.cli,
            table: &mut self.table,
        }
    }
}

struct Io;

impl HasData for Io {
    type Data<'a> = &'a mut ResourceTable;
}

/// The WASI a plugin may import: the command-line and stream interfaces that Rust's standard
/// library links against, backed by an empty environment and stdio that goes nowhere. Nothing
/// else is linked: a component that imports files, sockets, clocks or randomness fails to link
/// and is refused when it is loaded.
pub fn link_wasi(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    fn table(s: &mut CallState) -> &mut ResourceTable {
        &mut s.table
    }
    io::error::add_to_linker::<CallState, Io>(linker, table)?;
    io::poll::add_to_linker::<CallState, Io>(linker, table)?;
    io::streams::add_to_linker::<CallState, Io>(linker, table)?;
    let view = <CallState as WasiCliView>::cli;
    cli::environment::add_to_linker::<CallState, WasiCli>(linker, view)?;
    cli::exit::add_to_linker::<CallState, WasiCli>(linker, view)?;
    cli::stdin::add_to_linker::<CallState, WasiCli>(linker, view)?;
    cli::stdout::add_to_linker::<CallState, WasiCli>(linker, view)?;
    cli::stderr::add_to_linker::<CallState, WasiCli>(linker, view)?;
    cli::terminal_input::add_to_linker::<CallState, WasiCli>(linker, view)?;
    cli::terminal_output::add_to_linker::<CallState, WasiCli>(linker, view)?;
    cli::terminal_stdin::add_to_linker::<CallState, WasiCli>(linker, view)?;
    cli::terminal_stdout::add_to_linker::<CallState, WasiCli>(linker, view)?;
    cli::terminal_stderr::add_to_linker::<CallState, WasiCli>(linker, view)?;
    Ok(())
}
