//! Running an edge node from the deployment file: `lockergrid edge --id <id>`. Its data
//! directory is `<data_dir>/edges/<id>/` unless given; `certs/` there holds its client
//! certificate for the uplink (kind `edge`), the certificate its own device listener serves
//! (kind `node`, file `listener.pem`), the deployment CA's certificate and the revocation list,
//! which the gateway keeps current over the uplink, and `plugin-trust.toml`, the keys whose
//! plugin signatures it accepts (those the gateway trusted when it was enrolled; the gateway
//! cannot add to them over the uplink). Its own keys (the command key its lockers trust,
//! its code key) live in `secrets/` there, one file each.

use crate::config::{ConfigError, DeployConfig};
use crate::plugins::PluginStore;
use crate::secrets::Secrets;
use anyhow::Context;
use lockergrid_device_plane::DeviceOptions;
use lockergrid_device_plane::{CRL, CertificateAuthority, Identity, Kind};
use lockergrid_edge::{EdgeOptions, RunningEdge, UplinkOptions};
use lockergrid_firmware_shim::tls::client_config;
use lockergrid_model::{Clock, SystemClock};
use lockergrid_model::{PolicyFile, Trust, TrustedKey};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often an edge node reports its status to the gateway.
pub const EDGE_HEARTBEAT: Duration = Duration::from_secs(5);
/// The name of the edge node's listener certificate in `certs/`.
const LISTENER: &str = "listener";
/// The keys it accepts plugin signatures from, in `certs/`: a policy file with
/// `[[trusted_key]]` entries only.
pub const PLUGIN_TRUST: &str = "plugin-trust.toml";

/// Where and how one edge node runs.
pub struct EdgeLaunch {
    /// Its id, as the deployment names it.
    pub id: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The gateway's device listener.
    pub gateway: SocketAddr,
    /// Where its own lockers connect.
    pub devices: SocketAddr,
    /// How often it reports.
    pub heartbeat: Duration,
    /// Its clock.
    pub clock: Arc<dyn Clock>,
    /// The deployment's region.
    pub region: String,
    /// The deployment's offset from UTC, minutes.
    pub utc_offset_minutes: i32,
}

impl EdgeLaunch {
    /// An edge node of `deployment` with its defaults: data under `<data_dir>/edges/<id>/`, the
    /// deployment's device listener, the system clock.
    pub fn new(deployment: &DeployConfig, id: &str) -> Result<EdgeLaunch, ConfigError> {
        let Some(node) = deployment.edges.iter().find(|e| e.id == id) else {
            return Err(ConfigError::Invalid(format!(
                "the deployment names no edge node {id:?}"
            )));
        };
        Ok(EdgeLaunch {
            id: id.to_owned(),
            data_dir: deployment.data_dir.join("edges").join(id),
            gateway: deployment.devices,
            devices: node.devices,
            heartbeat: EDGE_HEARTBEAT,
            clock: Arc::new(SystemClock),
            region: deployment.region_id.clone(),
            utc_offset_minutes: deployment.utc_offset_minutes,
        })
    }

    /// Where its certificate, key and CA certificate are read from.
    pub fn certs(&self) -> PathBuf {
        self.data_dir.join("certs")
    }

    /// Enrols it with the gateway whose data directory is `gateway_data`, unless it is enrolled:
    /// its certificates from the CA there, with the revocation list as it is now, and the keys
    /// the gateway's plugin policy trusts now. For a deployment whose gateway and edge nodes
    /// share a machine (`lockergrid up`, tests).
    pub fn enrol(&self, gateway_data: &Path) -> anyhow::Result<()> {
        let certs = self.certs();
        let trust = certs.join(PLUGIN_TRUST);
        if !trust.exists() {
            let trusted_keys = PluginStore::open(gateway_data)?
                .policy()?
                .map(|p| p.trusted_keys)
                .unwrap_or_default();
            #[derive(serde::Serialize)]
            struct TrustFile {
                version: u32,
                trusted_key: Vec<TrustedKey>,
            }
            let file = TrustFile {
                version: 1,
                trusted_key: trusted_keys,
            };
            lockergrid_files::private_dir(&certs).with_context(|| format!("create {certs:?}"))?;
            let text = format!(
                "# The keys whose plugin signatures edge node {} accepts.\n{}",
                self.id,
                toml::to_string_pretty(&file)?
            );
            std::fs::write(&trust, text).with_context(|| format!("write {trust:?}"))?;
        }
        if certs.join(format!("{}.pem", self.id)).exists() {
            return Ok(());
        }
        let pki = gateway_data.join("pki");
        let mut ca = CertificateAuthority::open(&pki).context("device CA")?;
        ca.issue(&Identity::new(Kind::Edge, &self.id)?, &[], 825)
            .and_then(|bundle| bundle.write_to(&certs, &self.id, ca.ca_pem()))
            .with_context(|| format!("certificate for edge node {}", self.id))?;
        let hosts = ["localhost".to_string(), "127.0.0.1".to_string()];
        ca.issue(&Identity::new(Kind::Node, &self.id)?, &hosts, 825)
            .and_then(|bundle| bundle.write_to(&certs, LISTENER, ca.ca_pem()))
            .with_context(|| format!("listener certificate for edge node {}", self.id))?;
        std::fs::copy(pki.join(CRL), certs.join(CRL)).context("revocation list")?;
        Ok(())
    }

    /// The key its lockers verify commands with, creating its secrets on first use.
    pub fn command_key(&self) -> anyhow::Result<lockergrid_protocol::command::CommandPublicKey> {
        Ok(Secrets::load_or_create(&self.data_dir)?
            .command_key()
            .public())
    }

    /// Starts it: opens its store, its device listener and its uplink.
    pub async fn start(self) -> anyhow::Result<RunningEdge> {
        let certs = self.certs();
        let cert = certs.join(format!("{}.pem", self.id));
        let listener = certs.join(format!("{LISTENER}.pem"));
        for (file, kind) in [(&cert, "edge"), (&listener, "node")] {
            if !file.exists() {
                anyhow::bail!(ConfigError::Invalid(format!(
                    "no {} in {}; issue it with `lockergrid pki issue --kind {kind} --id {} --out {}`{} and copy the CA's crl.pem there",
                    file.display(),
                    certs.display(),
                    self.id,
                    certs.display(),
                    if kind == "node" {
                        " --host <address>, renamed listener.pem and listener.key.pem,"
                    } else {
                        ""
                    },
                )));
            }
        }
        let tls = client_config(
            &certs.join("ca.pem"),
            &cert,
            &certs.join(format!("{}.key.pem", self.id)),
        )?;
        lockergrid_files::private_dir(&self.data_dir)
            .with_context(|| format!("cannot create data directory {:?}", self.data_dir))?;
        let plugin_trust = read_trust(&certs.join(PLUGIN_TRUST))?;
        let secrets = Secrets::load_or_create(&self.data_dir)?;
        let options = EdgeOptions {
            data_dir: self.data_dir.clone(),
            uplink: UplinkOptions {
                edge: self.id.clone(),
                host: self.gateway.ip().to_string(),
                port: self.gateway.port(),
                tls,
                heartbeat: self.heartbeat,
            },
            devices: DeviceOptions::new(
                self.devices,
                certs.clone(),
                listener,
                certs.join(format!("{LISTENER}.key.pem")),
            ),
            command_key: secrets.command_key(),
            code_key: secrets.code_key(),
            clock: self.clock,
            plugin_trust,
            region: self.region,
            utc_offset_minutes: self.utc_offset_minutes,
        };
        lockergrid_edge::start(options)
            .await
            .with_context(|| format!("edge node {}", self.id))
    }
}

/// The keys an edge node accepts plugin signatures from.
fn read_trust(path: &Path) -> anyhow::Result<Trust> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Invalid(format!(
            "{}: {e}; write the `version = 1` line and the [[trusted_key]] entries of the gateway's plugins/policy.toml there",
            path.display()
        ))
    })?;
    let file = PolicyFile::parse(&text).with_context(|| format!("{}", path.display()))?;
    if !file.plugins.is_empty() {
        anyhow::bail!(ConfigError::Invalid(format!(
            "{} binds plugins; it lists trusted keys only (the gateway sends the plugins)",
            path.display()
        )));
    }
    Ok(file.trust()?)
}
