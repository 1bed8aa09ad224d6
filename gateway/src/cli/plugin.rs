//! `lockergrid plugin …`: make a signing key, sign a component, check a policy's components
//! against their pins and signatures, and push a policy's plugins to a running gateway.

use crate::config::ConfigError;
use anyhow::Context;
use base64::Engine as _;
use clap::Subcommand;
use lockergrid_model::{Binding, PluginSigner, PolicyFile, Scope, World, sha256_hex};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// What `lockergrid plugin` can do.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create an Ed25519 plugin-signing key; prints the public key for a policy's trusted keys.
    Keygen {
        /// Where to write the secret key (created with mode 0600, never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign a component: writes `<component>.sig` and prints its SHA-256 for the policy.
    Sign {
        /// The secret key file from `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The component (`.wasm`).
        component: PathBuf,
    },
    /// Check every component a policy names against its SHA-256 and its signature.
    Verify {
        /// The policy file; component files are relative to its folder.
        #[arg(long)]
        policy: PathBuf,
    },
    /// Send a policy's plugins to a running gateway, which verifies, tests and swaps them in.
    Push {
        /// The policy file; component files are relative to its folder.
        #[arg(long)]
        policy: PathBuf,
        /// The gateway, e.g. `http://127.0.0.1:8080`.
        #[arg(long)]
        gateway: String,
        /// An operator token.
        #[arg(long, env = "LOCKERGRID_TOKEN", hide_env_values = true)]
        token: String,
        /// Push only the binding of this world.
        #[arg(long)]
        world: Option<World>,
        /// Push only the binding at this scope.
        #[arg(long)]
        scope: Option<Scope>,
    },
}

fn usage(message: String) -> anyhow::Error {
    ConfigError::Invalid(message).into()
}

/// Runs one plugin command.
pub async fn run(command: PluginCommand) -> anyhow::Result<()> {
    match command {
        PluginCommand::Keygen { out } => keygen(&out),
        PluginCommand::Sign { key, component } => sign(&key, &component),
        PluginCommand::Verify { policy } => verify(&policy),
        PluginCommand::Push {
            policy,
            gateway,
            token,
            world,
            scope,
        } => push(&policy, &gateway, &token, world, scope).await,
    }
}

fn keygen(out: &Path) -> anyhow::Result<()> {
    let signer = PluginSigner::from_secret(rand::random());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| format!("cannot create {out:?} (it is never overwritten)"))?;
    writeln!(file, "{}", signer.secret_hex())?;
    file.sync_all()?;
    println!(
        "secret key written to {out:?}\n\n# add to the policy's trusted keys:\n[[trusted_key]]\nname = \"{}\"\npublic_key = \"{}\"",
        out.file_stem()
            .map_or("operator".into(), |s| s.to_string_lossy()),
        signer.public_hex()
    );
    Ok(())
}

fn sign(key: &Path, component: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(key).with_context(|| format!("cannot read {key:?}"))?;
    let signer = PluginSigner::parse(&text).map_err(|e| usage(format!("{key:?}: {e}")))?;
    let bytes = std::fs::read(component).with_context(|| format!("cannot read {component:?}"))?;
    let sig_path = signature_path(component);
    std::fs::write(&sig_path, format!("{}\n", signer.sign(&bytes)))
        .with_context(|| format!("cannot write {sig_path:?}"))?;
    println!(
        "signed {component:?} -> {sig_path:?}\nsha256 = \"{}\"",
        sha256_hex(&bytes)
    );
    Ok(())
}

fn signature_path(component: &Path) -> PathBuf {
    let mut name = component.as_os_str().to_owned();
    name.push(".sig");
    PathBuf::from(name)
}

fn load_policy(path: &Path) -> anyhow::Result<PolicyFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path:?}"))?;
    PolicyFile::parse(&text).map_err(|e| usage(format!("{path:?}: {e}")))
}

/// A binding's component bytes and signature text, relative to the policy's folder.
fn component_of(policy: &Path, binding: &Binding) -> anyhow::Result<(Vec<u8>, Option<String>)> {
    let file = binding.file.as_deref().ok_or_else(|| {
        usage(format!(
            "{} at {} names no file",
            binding.world, binding.scope
        ))
    })?;
    let path = policy.parent().unwrap_or(Path::new(".")).join(file);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path:?}"))?;
    let signature = std::fs::read_to_string(signature_path(&path)).ok();
    Ok((bytes, signature))
}

fn verify(path: &Path) -> anyhow::Result<()> {
    let policy = load_policy(path)?;
    let trust = policy.trust().map_err(|e| usage(e.to_string()))?;
    let mut failed = 0;
    for binding in &policy.plugins {
        let (bytes, signature) = component_of(path, binding)?;
        match trust.verify(&bytes, binding.sha256.as_deref(), signature.as_deref()) {
            Ok(key) => println!(
                "ok      {} at {}: {} {} signed by {key}",
                binding.world, binding.scope, binding.name, binding.version
            ),
            Err(e) => {
                failed += 1;
                println!(
                    "REFUSED {} at {}: {} {}: {e}",
                    binding.world, binding.scope, binding.name, binding.version
                );
            }
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} plugins refused",
        policy.plugins.len()
    );
    Ok(())
}

async fn push(
    path: &Path,
    gateway: &str,
    token: &str,
    world: Option<World>,
    scope: Option<Scope>,
) -> anyhow::Result<()> {
    let policy = load_policy(path)?;
    let chosen: Vec<&Binding> = policy
        .plugins
        .iter()
        .filter(|b| world.is_none_or(|w| b.world == w))
        .filter(|b| scope.as_ref().is_none_or(|s| &b.scope == s))
        .collect();
    anyhow::ensure!(!chosen.is_empty(), "no binding in {path:?} matches");
    let client = reqwest::Client::new();
    let url = format!("{}/v1/admin/plugins", gateway.trim_end_matches('/'));
    let mut refused = 0;
    for binding in chosen {
        let (bytes, signature) = component_of(path, binding)?;
        let body = serde_json::json!({
            "world": binding.world,
            "scope": binding.scope,
            "name": binding.name,
            "version": binding.version,
            "sha256": binding.sha256,
            "signature": signature.map(|s| s.trim().to_owned()),
            "component": base64::engine::general_purpose::STANDARD.encode(&bytes),
            "settings": binding.settings,
            "limits": binding.limits,
        });
        let response = client
            .post(&url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        if status.is_success() {
            println!(
                "serving {} at {}: {} {} ({})",
                binding.world,
                binding.scope,
                binding.name,
                binding.version,
                answer["plugin"]["digest"].as_str().unwrap_or("?")
            );
        } else {
            refused += 1;
            println!(
                "REFUSED {} at {}: {} {}: {} ({status})",
                binding.world,
                binding.scope,
                binding.name,
                binding.version,
                answer["detail"].as_str().unwrap_or("no detail")
            );
        }
    }
    anyhow::ensure!(refused == 0, "{refused} plugins refused");
    Ok(())
}
