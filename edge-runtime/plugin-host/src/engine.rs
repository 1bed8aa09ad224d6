//! The one wasmtime `Engine` every plugin runs on, with each limit and why, and the thread that
//! advances its epoch so deadlines fire.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; a call's deadline is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Most linear memory one plugin instance may have.
pub const MAX_MEMORY_BYTES: usize = 64 << 20;
/// Address space reserved for each linear memory: all a 32-bit index can reach.
const GUEST_ADDRESS_SPACE: u64 = 1 << 32;
/// Unmapped space after each reservation, so an access at a static offset past the end of the
/// index space faults too.
const GUARD_BYTES: u64 = 32 << 20;
/// Plugin calls that may run at once (the pooling allocator's slots).
pub const MAX_CONCURRENT_CALLS: u32 = 128;
/// How much of a slot's linear memory and table stays mapped between calls and is wiped in
/// place: a Rust plugin's 1 MiB stack and the data and heap above it.
const KEEP_RESIDENT: usize = 2 << 20;

/// Builds the engine; `deadlines` turns epoch interruption on (always, except to measure its
/// cost).
pub fn engine(deadlines: bool) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    // One slot per concurrent call; a call beyond that fails fast and the built-in answers.
    pool.total_component_instances(MAX_CONCURRENT_CALLS)
        .total_core_instances(MAX_CONCURRENT_CALLS * 4)
        .total_memories(MAX_CONCURRENT_CALLS * 2)
        .total_tables(MAX_CONCURRENT_CALLS * 2)
        .total_stacks(MAX_CONCURRENT_CALLS)
        // A plugin may not grow past this, whatever it asks for.
        .max_memory_size(MAX_MEMORY_BYTES)
        // Each call's instance starts from a clean slot. Resetting one with `madvise` costs a
        // page fault per page the next call touches and a TLB shootdown that interrupts the
        // other cores; up to this much of a memory or table is wiped with `memset` instead,
        // and only the pages a call dirtied where the kernel's page map can tell them
        // (`PAGEMAP_SCAN`, Linux 6.7 and later; elsewhere the whole of it).
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        // A 32-bit memory's whole index space, and a guard past it for the static offsets:
        // address space only (never committed, the pool's `max_memory_size` still caps what a
        // plugin may grow to), and it lets Cranelift leave out the explicit bounds check on
        // every load and store, which a fault in the reservation replaces.
        .memory_reservation(GUEST_ADDRESS_SPACE)
        .memory_guard_size(GUARD_BYTES)
        // Deadlines by epoch: cheap checks at loop heads and calls, no per-instruction cost.
        .epoch_interruption(deadlines)
        // Unbounded recursion traps instead of exhausting the host thread's stack.
        .max_wasm_stack(512 << 10);
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: &Engine) -> std::io::Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("lockergrid-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
