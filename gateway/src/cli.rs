//! The `lockergrid` command line: `up`, `gateway`, `edge`, `token issue`, `pki …` and `plugin …`.

mod compartment;
mod device;
mod firmware;
mod pki;
mod plugin;
mod remote;
mod rollout;
mod secret_key;

use crate::auth::Role;
use crate::auth::keyring::Keyring;
use crate::config::{ConfigError, DeployConfig};
use crate::edge::EdgeLaunch;
use crate::notifications::webhook::Secrets;
use crate::run::{self, GatewayOptions};
use crate::simulated::inbox::DemoInbox;
use anyhow::Context;
use clap::{Parser, Subcommand};
use lockergrid_edge::RunningEdge;
use lockergrid_model::Clock;
use lockergrid_model::SystemClock;
use lockergrid_protocol::StationId;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Exit code for bad configuration or usage (EX_USAGE).
pub const EXIT_USAGE: u8 = 64;

/// Lockergrid: parcel-locker network gateway and tools.
#[derive(Debug, Parser)]
#[command(name = "lockergrid", version)]
pub struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Debug, Subcommand)]
enum CliCommand {
    /// Start the default deployment from deploy.toml and print how to try it.
    Up {
        /// The deployment file.
        #[arg(long, default_value = "deploy.toml")]
        config: PathBuf,
    },
    /// Run the gateway.
    Gateway {
        /// The deployment file.
        #[arg(long, default_value = "deploy.toml")]
        config: PathBuf,
        /// Override the data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Override the listen address (port 0 picks a free port).
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Override the device listener's address (port 0 picks a free port).
        #[arg(long)]
        devices: Option<SocketAddr>,
    },
    /// Run an edge node of the deployment.
    Edge {
        /// The deployment file.
        #[arg(long, default_value = "deploy.toml")]
        config: PathBuf,
        /// Which edge node (its `[[edge]]` id).
        #[arg(long)]
        id: String,
        /// Override its data directory (default `<data_dir>/edges/<id>`; its certificate is read
        /// from `certs/` there).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Override the gateway's device listener it connects to.
        #[arg(long)]
        gateway: Option<SocketAddr>,
    },
    /// Bearer tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The deployment's certificate authority: CA, device certificates, revocation.
    Pki {
        #[command(subcommand)]
        command: pki::PkiCommand,
    },
    /// Plugin signing keys, signatures, verification and pushes.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
    /// The device registry of a running gateway: provision, list, suspend, resume,
    /// decommission.
    Device {
        #[command(subcommand)]
        command: device::DeviceCommand,
    },
    /// Firmware images: a signing key of their own, signed manifests, verification.
    Firmware {
        #[command(subcommand)]
        command: firmware::FirmwareCommand,
    },
    /// Compartments of a running gateway's stations out of service and back.
    Compartment {
        #[command(subcommand)]
        command: compartment::CompartmentCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a token signed with the gateway's key.
    Issue {
        /// The deployment file (for its data directory).
        #[arg(long, default_value = "deploy.toml")]
        config: PathBuf,
        /// Override the data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// The role.
        #[arg(long, value_enum)]
        role: Role,
        /// Who holds it, as the audit log will name them.
        #[arg(long)]
        subject: String,
        /// A station it may act on (agents, carriers, stations); repeat for several.
        #[arg(long = "station")]
        stations: Vec<StationId>,
        /// How long it is valid, e.g. `30d`, `12h`; at most, and by default, the longest its role
        /// allows (operator 1 day, agent and carrier 30 days, checkout 90, station 365).
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
    },
}

/// A failure with the exit code it should end the process with.
#[derive(Debug)]
pub struct Failure {
    /// The process exit code.
    pub code: u8,
    /// What went wrong.
    pub error: anyhow::Error,
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Failure {
        Failure {
            code: EXIT_USAGE,
            error: error.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        let code = if error.downcast_ref::<ConfigError>().is_some() {
            EXIT_USAGE
        } else {
            1
        };
        Failure { code, error }
    }
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        CliCommand::Up { config } => up(&DeployConfig::load(&config)?).await?,
        CliCommand::Gateway {
            config,
            data_dir,
            listen,
            devices,
        } => {
            let deployment = DeployConfig::load(&config)?;
            let options = GatewayOptions {
                data_dir,
                listen,
                devices,
                ..GatewayOptions::default()
            };
            let gateway = run::start(&deployment, options).await?;
            // The API line comes last: scripts read up to it and may stop reading there.
            println!(
                "lockergrid devices listening on mqtts://{}",
                gateway.devices_addr
            );
            println!("lockergrid gateway listening on http://{}", gateway.addr);
            wait_for_signal(gateway.stopped()).await;
            gateway.stop().await?;
        }
        CliCommand::Edge {
            config,
            id,
            data_dir,
            gateway,
        } => {
            let deployment = DeployConfig::load(&config)?;
            let mut launch = EdgeLaunch::new(&deployment, &id)?;
            if let Some(dir) = data_dir {
                launch.data_dir = dir;
            }
            if let Some(gateway) = gateway {
                launch.gateway = gateway;
            }
            let gateway = launch.gateway;
            let edge = launch.start().await?;
            println!(
                "lockergrid edge {id}: lockers connect to mqtts://{} and verify commands with key {}; uplink to mqtts://{gateway}",
                edge.devices_addr(),
                edge.command_key().to_hex(),
            );
            wait_for_signal(std::future::pending::<()>()).await;
            edge.stop().await;
        }
        CliCommand::Token { command } => issue(command)?,
        CliCommand::Pki { command } => pki::run(command)?,
        CliCommand::Plugin { command } => plugin::run(command).await?,
        CliCommand::Device { command } => device::run(command).await?,
        CliCommand::Compartment { command } => compartment::run(command).await?,
        CliCommand::Firmware { command } => firmware::run(command).await?,
    }
    Ok(())
}

fn issue(command: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Issue {
        config,
        data_dir,
        role,
        subject,
        stations,
        ttl,
    } = command;
    let data_dir = match data_dir {
        Some(dir) => dir,
        None => DeployConfig::load(&config)?.data_dir,
    };
    lockergrid_files::private_dir(&data_dir)
        .with_context(|| format!("cannot create data directory {data_dir:?}"))?;
    let ttl = ttl.unwrap_or(role.max_lifetime());
    let (token, claims) = Keyring::open(&data_dir)?
        .signing_key()
        .issue(&subject, role, stations, SystemClock.now(), ttl)
        .map_err(|e| anyhow::Error::new(ConfigError::Invalid(e.to_string())))?;
    eprintln!(
        "token id {} for {} ({role}), valid until {}",
        claims.jti,
        claims.sub,
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_millis(claims.exp.millis())
        ),
    );
    println!("{token}");
    Ok(())
}

/// Waits for Ctrl-C, SIGTERM or `stopped`.
async fn wait_for_signal(stopped: impl std::future::Future<Output = ()>) {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        match term.as_mut() {
            Some(t) => {
                t.recv().await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminated => {}
        _ = stopped => {}
    }
}

/// Where `lockergrid up` runs the demo customer's app.
const DEMO_INBOX: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 8090);

/// The demo customer's app, when the deployment sends to a customer app (the gateway created
/// its signing secret on first start).
async fn demo_inbox(deployment: &DeployConfig) -> anyhow::Result<Option<DemoInbox>> {
    let Some(push) = &deployment.notifications.push else {
        return Ok(None);
    };
    let inbox = DemoInbox::start(DEMO_INBOX, Secrets::load(&push.secret_file)?)
        .await
        .with_context(|| format!("cannot start the demo inbox on {DEMO_INBOX}"))?;
    Ok(Some(inbox))
}

/// Waits (ten seconds at most) until `edge` mirrors the registry entries of its `stations`, so
/// its lockers are admitted at their first connection; after that they would be on a retry.
async fn mirrored(edge: &RunningEdge, stations: usize) {
    let store = edge.store();
    let mut changed = store.devices_changed();
    let all = async {
        while store.devices().map_or(0, |d| d.len()) < stations {
            if changed.changed().await.is_err() {
                return;
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), all)
        .await
        .is_err()
    {
        tracing::warn!(
            "an edge node has not synced its lockers' registry entries yet; they connect once it has"
        );
    }
}

async fn up(deployment: &DeployConfig) -> anyhow::Result<()> {
    let gateway = run::start(deployment, GatewayOptions::default()).await?;
    let inbox = demo_inbox(deployment).await?;
    // Every locker is in the registry before the edge nodes start, so their first sync brings
    // the entries they admit their lockers by.
    for seed in &deployment.stations {
        crate::simulated::provision(&gateway.app.fleet, &seed.record.id, &gateway.data_dir)
            .await
            .with_context(|| format!("provisioning the simulated locker of {}", seed.record.id))?;
    }
    let mut edges = Vec::new();
    for node in &deployment.edges {
        let mut launch = EdgeLaunch::new(deployment, &node.id)?;
        launch.gateway = gateway.devices_addr;
        launch.enrol(&gateway.data_dir)?;
        let edge = launch.start().await?;
        mirrored(&edge, node.stations.len()).await;
        edges.push((node.id.as_str(), edge));
    }
    let running: Vec<(&str, &RunningEdge)> = edges.iter().map(|(id, e)| (*id, e)).collect();
    let lockers = crate::simulated::start_deployment(
        deployment,
        &gateway.data_dir,
        gateway.simulation(Duration::from_secs(10))?,
        &running,
    )
    .await?;
    let edge_lines: String = deployment
        .edges
        .iter()
        .map(|e| {
            let stations: Vec<&str> = e.stations.iter().map(StationId::as_str).collect();
            let addr = edges
                .iter()
                .find(|(id, _)| *id == e.id)
                .map(|(_, running)| running.devices_addr().to_string())
                .unwrap_or_default();
            format!("  {:<20} mqtts://{addr}  {}\n", e.id, stations.join(", "))
        })
        .collect();
    let controls: String = lockers
        .iter()
        .map(|l| format!("  {:<20} {}\n", l.station.as_str(), l.control))
        .collect();
    let first = &deployment
        .stations
        .first()
        .context("the deployment has no stations")?
        .record
        .id;
    let all: Vec<StationId> = deployment
        .stations
        .iter()
        .map(|s| s.record.id.clone())
        .collect();
    let checkout = gateway.token("demo-checkout", Role::Checkout, vec![])?;
    let agent = gateway.token("demo-agent", Role::Agent, all)?;
    let station = gateway.token("demo-touchscreen", Role::Station, vec![first.clone()])?;
    let operator = gateway.token("demo-operator", Role::Operator, vec![])?;
    let base = format!("http://{}", gateway.addr);
    println!(
        "Lockergrid region {region:?} is up.\n\
         gateway   {base}  (data in {data:?}, {n} stations)\n\
         openapi   {base}/openapi.json\n\
         metrics   {base}/metrics\n\
         plugins   {base}/v1/admin/plugins  (operator token; policy in force: {policy})\n\
         devices   mqtts://{devices}  (TLS 1.3, certificates from {pki})\n\
         edges     {n_edges} edge node(s); their stations' lockers connect to them ({base}/v1/admin/edges):\n{edge_lines}\
         lockers   {n} simulated lockers, each with a control socket for `status`, `press 123456#`,\n\
         \x20         `open <compartment>`, `close <compartment>`, `tamper on` (one command per line, e.g.\n\
         \x20         exec 3<>/dev/tcp/HOST/PORT; echo status >&3; head -1 <&3):\n{controls}\n\
         Try it (bash):\n\
         export CHECKOUT={checkout}\n\
         export AGENT={agent}\n\
         export STATION={station}\n\
         export OPERATOR={operator}\n\
         L={first_control}; locker() {{ exec 3<>/dev/tcp/${{L%:*}}/${{L#*:}}; echo \"$*\" >&3; head -1 <&3; exec 3>&-; }}\n\n\
         # 1. reserve a compartment at {first} for a customer whose app is the demo inbox ({inbox})\n\
         RES=$(curl -s -X POST {base}/v1/reservations -H \"Authorization: Bearer $CHECKOUT\" -H \"Idempotency-Key: demo-$RANDOM\" -H 'Content-Type: application/json' -d '{{\"order_id\":\"demo-1\",\"parcel\":{{\"length_mm\":300,\"width_mm\":200,\"height_mm\":100,\"weight_g\":1200}},\"tier\":\"standard\",\"station_id\":\"{first}\",\"recipient\":{{\"id\":\"demo-customer\",\"channels\":[\"push\"],\"contact\":{{\"app_url\":\"{inbox}/customer\"}}}}}}' | tee /dev/stderr)\n\
         ID=$(echo \"$RES\" | sed -n 's/.*\"id\":\"\\([^\"]*\\)\".*/\\1/p'); BOX=$(echo \"$RES\" | sed -n 's/.*\"compartment_id\":\"\\([^\"]*\\)\".*/\\1/p')\n\
         # 2. the agent's deposit unlocks the compartment; the agent opens it, puts the parcel in, closes it (no code in the answer)\n\
         (sleep 1; locker open $BOX; locker close $BOX) &\n\
         curl -s -X POST {base}/v1/reservations/$ID/deposit -H \"Authorization: Bearer $AGENT\"; echo\n\
         # 3. the code reaches the customer alone, in a signed webhook to their app: read it from the demo inbox\n\
         sleep 1; curl -s {inbox}/messages; echo; CODE=$(curl -s {inbox}/messages | sed -n 's/.*\"code\":\"\\([0-9]*\\)\".*/\\1/p')\n\
         # 4. the customer types the code on the locker's keypad, takes the parcel and closes the door\n\
         locker press $CODE#; sleep 1; locker open $BOX; locker close $BOX\n\
         # 5. the locker's heartbeat and alerts\n\
         curl -s {base}/v1/stations/{first}/health -H \"Authorization: Bearer $OPERATOR\"\n\n\
         Ctrl-C stops it.",
        region = deployment.region_name,
        inbox = inbox.as_ref().map_or_else(
            || format!("http://{DEMO_INBOX}"),
            |i| format!("http://{}", i.addr())
        ),
        data = gateway.data_dir,
        policy = gateway.data_dir.join("plugins/policy.toml").display(),
        devices = gateway.devices_addr,
        pki = gateway.data_dir.join("pki").display(),
        n = deployment.stations.len(),
        n_edges = deployment.edges.len(),
        first_control = lockers
            .first()
            .map(|l| l.control.to_string())
            .unwrap_or_default(),
    );
    wait_for_signal(gateway.stopped()).await;
    for (_, edge) in edges {
        edge.stop().await;
    }
    gateway.stop().await
}
