//! Running an edge node from the deployment file: `lockergrid edge --id <id>`. Its data
//! directory is `<data_dir>/edges/<id>/` unless given, its certificate (kind `edge`, from the
//! deployment's CA) is read from `certs/` there, and its uplink goes to the gateway's device
//! listener.

use crate::config::{ConfigError, Deployment};
use anyhow::Context;
use lockergrid_edge_runtime::edge::{self, EdgeOptions, RunningEdge};
use lockergrid_edge_runtime::pki::{Authority, Identity, Kind};
use lockergrid_edge_runtime::sync::uplink::UplinkOptions;
use lockergrid_edge_runtime::{Clock, SystemClock};
use lockergrid_firmware_shim::tls::client_config;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How often an edge node reports its status to the gateway.
pub const EDGE_HEARTBEAT: Duration = Duration::from_secs(5);

/// Where and how one edge node runs.
pub struct EdgeLaunch {
    /// Its id, as the deployment names it.
    pub id: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The gateway's device listener.
    pub gateway: SocketAddr,
    /// How often it reports.
    pub heartbeat: Duration,
    /// Its clock.
    pub clock: Arc<dyn Clock>,
}

impl EdgeLaunch {
    /// An edge node of `deployment` with its defaults: data under `<data_dir>/edges/<id>/`, the
    /// deployment's device listener, the system clock.
    pub fn new(deployment: &Deployment, id: &str) -> Result<EdgeLaunch, ConfigError> {
        if !deployment.edges.iter().any(|e| e.id == id) {
            return Err(ConfigError::Invalid(format!(
                "the deployment names no edge node {id:?}"
            )));
        }
        Ok(EdgeLaunch {
            id: id.to_owned(),
            data_dir: deployment.data_dir.join("edges").join(id),
            gateway: deployment.devices,
            heartbeat: EDGE_HEARTBEAT,
            clock: Arc::new(SystemClock),
        })
    }

    /// Where its certificate, key and CA certificate are read from.
    pub fn certs(&self) -> PathBuf {
        self.data_dir.join("certs")
    }

    /// Issues its certificate from the CA in `pki` unless it has one: for a deployment whose
    /// gateway and edge nodes share a machine (`lockergrid up`, tests).
    pub fn issue_certificate(&self, pki: &Path) -> anyhow::Result<()> {
        let certs = self.certs();
        if certs.join(format!("{}.pem", self.id)).exists() {
            return Ok(());
        }
        let mut ca = Authority::open(pki).context("device CA")?;
        ca.issue(&Identity::new(Kind::Edge, &self.id)?, &[], 825)
            .and_then(|bundle| bundle.write_to(&certs, &self.id, ca.ca_pem()))
            .with_context(|| format!("certificate for edge node {}", self.id))
    }

    /// Starts it: opens its store and connects its uplink.
    pub fn start(self) -> anyhow::Result<RunningEdge> {
        let certs = self.certs();
        let cert = certs.join(format!("{}.pem", self.id));
        if !cert.exists() {
            anyhow::bail!(ConfigError::Invalid(format!(
                "no certificate for edge node {:?} in {}; issue one with `lockergrid pki issue --kind edge --id {} --out {}`",
                self.id,
                certs.display(),
                self.id,
                certs.display()
            )));
        }
        let tls = client_config(
            &certs.join("ca.pem"),
            &cert,
            &certs.join(format!("{}.key.pem", self.id)),
        )?;
        std::fs::create_dir_all(&self.data_dir)
            .with_context(|| format!("cannot create data directory {:?}", self.data_dir))?;
        let options = EdgeOptions {
            data_dir: self.data_dir.clone(),
            uplink: UplinkOptions {
                edge: self.id.clone(),
                host: self.gateway.ip().to_string(),
                port: self.gateway.port(),
                tls,
                heartbeat: self.heartbeat,
            },
            clock: self.clock,
        };
        edge::start(options).with_context(|| format!("edge node {}", self.id))
    }
}
