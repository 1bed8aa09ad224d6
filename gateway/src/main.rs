//! The `lockergrid` binary: parses the command line, installs logging, runs the command and turns
//! its failure into a message and an exit code.

use clap::Parser;
use lockergrid_gateway::cli::{self, Cli};
use std::process::ExitCode;

/// mimalloc rather than glibc's allocator: the store's writer allocates a buffer for every page a
/// batch dirties and frees them all at commit, and glibc's bookkeeping of that churn (with the
/// page faults behind it) was about a quarter of the writer's time (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            // rumqttd logs every device that goes away as an error; the device front's audit
            // (access log and warnings) reports sessions instead. RUST_LOG overrides this.
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn,rumqttd=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lockergrid: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("lockergrid: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
