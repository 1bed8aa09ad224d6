//! `lockergrid-shim`: the locker controller. Connects to its node over MQTT with TLS 1.3 and its
//! device certificate, verifies every command before a latch moves, and queues its events until
//! the node acknowledges them. This build drives the simulated hardware, controlled through a
//! line protocol on a loopback socket (see the `control` module).

use anyhow::Context;
use clap::Parser;
use lockergrid_firmware_shim::agent::{self, AgentOptions, FirmwareOptions, Status};
use lockergrid_firmware_shim::control;
use lockergrid_firmware_shim::sim::SimLocker;
use lockergrid_firmware_shim::tls::client_config;
use lockergrid_protocol::command::CommandPublicKey;
use lockergrid_protocol::firmware::FirmwarePublicKey;
use lockergrid_protocol::size::Size;
use lockergrid_protocol::{CompartmentId, LockerId};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Exit code for bad arguments or files (EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// A Lockergrid locker controller with simulated hardware.
#[derive(Debug, Parser)]
#[command(name = "lockergrid-shim", version)]
struct Args {
    /// This locker's id (its certificate's id).
    #[arg(long)]
    locker: LockerId,
    /// The node's device listener, host:port (the host as the node's certificate names it).
    #[arg(long, default_value = "127.0.0.1:8883")]
    node: String,
    /// The directory from `lockergrid pki issue`: `ca.pem`, `<locker>.pem`, `<locker>.key.pem`.
    #[arg(long)]
    certs: PathBuf,
    /// The node's command-signing public key, hex.
    #[arg(long, env = "LOCKERGRID_COMMAND_KEY")]
    command_key: String,
    /// Where the command counter, the event queue and the code cache live.
    #[arg(long)]
    state_dir: PathBuf,
    /// Compartments per size: small,medium,large,oversized.
    #[arg(long, value_delimiter = ',', num_args = 4, default_values_t = [4, 3, 2, 1])]
    layout: Vec<u32>,
    /// Heartbeat interval.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    heartbeat: Duration,
    /// The simulation control socket (loopback only).
    #[arg(long, default_value = "127.0.0.1:0")]
    control: SocketAddr,
    /// This controller's hardware model: firmware for another is refused.
    #[arg(long, default_value = agent::SIM_MODEL)]
    model: String,
    /// A firmware key whose signed images it installs, hex (repeat or separate with commas;
    /// none: it installs no update).
    #[arg(
        long = "firmware-key",
        env = "LOCKERGRID_FIRMWARE_KEYS",
        value_delimiter = ','
    )]
    firmware_keys: Vec<String>,
    /// How long a new firmware image has from its boot to pass its health check.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    health_window: Duration,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            eprintln!("lockergrid-shim: {e:#}");
            ExitCode::from(code)
        }
    }
}

async fn run(args: Args) -> Result<(), (u8, anyhow::Error)> {
    let usage = |e: anyhow::Error| (EXIT_USAGE, e);
    let command_key = CommandPublicKey::from_hex(&args.command_key)
        .context("--command-key is not an Ed25519 public key in hex")
        .map_err(usage)?;
    let mut trusted = Vec::new();
    for key in &args.firmware_keys {
        trusted.push(
            FirmwarePublicKey::from_hex(key.trim())
                .with_context(|| {
                    format!("--firmware-key {key:?} is not an Ed25519 public key in hex")
                })
                .map_err(usage)?,
        );
    }
    let (host, port) = args
        .node
        .rsplit_once(':')
        .and_then(|(host, port)| Some((host.to_string(), port.parse::<u16>().ok()?)))
        .with_context(|| format!("--node {:?} is not host:port", args.node))
        .map_err(usage)?;
    if !args.control.ip().is_loopback() {
        return Err(usage(anyhow::anyhow!(
            "--control {} must be a loopback address",
            args.control
        )));
    }
    let name = args.locker.as_str();
    let tls = client_config(
        &args.certs.join("ca.pem"),
        &args.certs.join(format!("{name}.pem")),
        &args.certs.join(format!("{name}.key.pem")),
    )
    .map_err(|e| usage(e.into()))?;
    let mut compartments = Vec::new();
    for (size, count) in Size::ALL.into_iter().zip(&args.layout) {
        for n in 1..=*count {
            compartments.push(
                CompartmentId::numbered(name, size, n)
                    .context("compartment id")
                    .map_err(usage)?,
            );
        }
    }
    let sim = Arc::new(Mutex::new(SimLocker::new(compartments)));
    let (status_tx, status) = tokio::sync::watch::channel(Status::default());
    let listener = tokio::net::TcpListener::bind(args.control)
        .await
        .with_context(|| format!("bind the control socket {}", args.control))
        .map_err(|e| (1, e))?;
    let control_addr = listener
        .local_addr()
        .context("control socket address")
        .map_err(|e| (1, e))?;
    tokio::spawn(control::serve(listener, sim.clone(), status));
    // Tests and `lockergrid up` read this line to find the control socket.
    println!("lockergrid-shim {name} control on {control_addr}");
    let options = AgentOptions {
        locker: args.locker,
        host,
        port,
        tls,
        command_key,
        state_dir: args.state_dir,
        heartbeat: args.heartbeat,
        clock: agent::system_clock(),
        firmware: FirmwareOptions {
            model: args.model,
            trusted,
            health_window: args.health_window,
        },
    };
    agent::run(options, sim, status_tx)
        .await
        .map_err(|e| (1, e.into()))
}
