//! `lockergrid pki …`: the deployment's certificate authority for lockers, edge nodes and the
//! nodes' device listeners.

use crate::config::{ConfigError, DeployConfig};
use clap::{Args, Subcommand};
use lockergrid_device_plane::{CertificateAuthority, Identity, Kind, PkiError};
use std::path::PathBuf;
use std::str::FromStr;

/// Where the CA lives: `--dir`, or `<data_dir>/pki` of the deployment file.
#[derive(Debug, Args)]
pub struct PkiDir {
    /// The deployment file (for its data directory).
    #[arg(long, default_value = "deploy.toml")]
    config: PathBuf,
    /// The CA directory, instead of `<data_dir>/pki`.
    #[arg(long)]
    dir: Option<PathBuf>,
}

impl PkiDir {
    fn path(&self) -> Result<PathBuf, ConfigError> {
        match &self.dir {
            Some(dir) => Ok(dir.clone()),
            None => Ok(DeployConfig::load(&self.config)?.pki_dir()),
        }
    }
}

/// What `lockergrid pki` can do.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create the deployment's CA and an empty revocation list (refuses to replace a CA).
    Init {
        #[command(flatten)]
        at: PkiDir,
        /// The CA's name.
        #[arg(long, default_value = "Lockergrid device CA")]
        name: String,
    },
    /// Issue a certificate with a fresh key; writes `<id>.pem`, `<id>.key.pem` (0600) and
    /// `ca.pem` into `--out`.
    Issue {
        #[command(flatten)]
        at: PkiDir,
        /// locker, edge or node.
        #[arg(long, value_parser = Kind::from_str)]
        kind: Kind,
        /// The locker, edge node or node id.
        #[arg(long)]
        id: String,
        /// For a node: a DNS name or IP address its device listener answers on; repeat.
        #[arg(long = "host")]
        hosts: Vec<String>,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
        /// The directory to write the certificate and key into.
        #[arg(long)]
        out: PathBuf,
    },
    /// Revoke a device's live certificates (or one serial) and publish the new revocation list;
    /// nodes refuse it at once and cut its sessions within seconds.
    Revoke {
        #[command(flatten)]
        at: PkiDir,
        /// locker, edge or node (with `--id`).
        #[arg(long, value_parser = Kind::from_str, requires = "id")]
        kind: Option<Kind>,
        /// The id whose certificates to revoke (with `--kind`).
        #[arg(long, requires = "kind", conflicts_with = "serial")]
        id: Option<String>,
        /// One certificate's serial, hex.
        #[arg(long, required_unless_present = "id")]
        serial: Option<String>,
    },
    /// Sign and publish the revocation list again.
    Crl {
        #[command(flatten)]
        at: PkiDir,
    },
    /// List every certificate issued.
    List {
        #[command(flatten)]
        at: PkiDir,
    },
}

/// The request was wrong (exit 64); anything else is a failure (exit 1).
fn failure(error: PkiError) -> anyhow::Error {
    match error {
        PkiError::Exists(_) | PkiError::Missing(_) | PkiError::Invalid(_) => {
            ConfigError::Invalid(error.to_string()).into()
        }
        other => other.into(),
    }
}

/// Runs one `pki` command.
pub fn run(command: PkiCommand) -> anyhow::Result<()> {
    match command {
        PkiCommand::Init { at, name } => {
            let path = at.path()?;
            CertificateAuthority::create(&path, &name).map_err(failure)?;
            println!("created CA {name:?} in {}", path.display());
        }
        PkiCommand::Issue {
            at,
            kind,
            id,
            hosts,
            days,
            out,
        } => {
            let mut ca = CertificateAuthority::open(&at.path()?).map_err(failure)?;
            let identity = Identity::new(kind, id).map_err(failure)?;
            let bundle = ca.issue(&identity, &hosts, days).map_err(failure)?;
            bundle
                .write_to(&out, &identity.id, ca.ca_pem())
                .map_err(failure)?;
            println!(
                "issued {identity} serial {} until {} into {}",
                bundle.issued.serial,
                bundle.issued.not_after,
                out.display()
            );
        }
        PkiCommand::Revoke {
            at,
            kind,
            id,
            serial,
        } => {
            let mut ca = CertificateAuthority::open(&at.path()?).map_err(failure)?;
            let revoked = match (kind, id, serial) {
                (Some(kind), Some(id), _) => ca
                    .revoke(&Identity::new(kind, id).map_err(failure)?)
                    .map_err(failure)?,
                (_, _, Some(serial)) => vec![ca.revoke_serial(&serial).map_err(failure)?],
                _ => {
                    return Err(ConfigError::Invalid(
                        "revoke needs --kind and --id, or --serial".into(),
                    )
                    .into());
                }
            };
            for issued in revoked {
                println!(
                    "revoked {} {} serial {}",
                    issued.kind, issued.id, issued.serial
                );
            }
        }
        PkiCommand::Crl { at } => {
            let path = at.path()?;
            CertificateAuthority::open(&path)
                .and_then(|mut ca| ca.publish_crl())
                .map_err(failure)?;
            println!(
                "published {}",
                path.join(lockergrid_device_plane::CRL).display()
            );
        }
        PkiCommand::List { at } => {
            let ca = CertificateAuthority::open(&at.path()?).map_err(failure)?;
            println!(
                "{:<34} {:<7} {:<24} {:>12} revoked",
                "serial", "kind", "id", "not after"
            );
            for issued in ca.issued() {
                let revoked = issued
                    .revoked_at
                    .map_or_else(|| "-".to_string(), |at| at.to_string());
                println!(
                    "{:<34} {:<7} {:<24} {:>12} {revoked}",
                    issued.serial, issued.kind, issued.id, issued.not_after
                );
            }
        }
    }
    Ok(())
}
