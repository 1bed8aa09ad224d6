//! `lockergrid plugin …`: make a signing key, sign a policy's bindings (each signature covers
//! world, scope, name, version, the component's SHA-256, settings and limits), check a policy's
//! components against their pins and signatures, and push a policy's plugins to a running
//! gateway.

use crate::config::ConfigError;
use anyhow::Context;
use base64::Engine as _;
use clap::Subcommand;
use lockergrid_model::{Binding, PluginSigner, PolicyFile, Scope, World, sha256_hex};
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
    /// Sign a policy's bindings: pins each component's SHA-256 and writes the binding's
    /// signature into the policy file (which is rewritten, without its comments).
    Sign {
        /// The secret key file from `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The policy file; component files are relative to its folder.
        #[arg(long)]
        policy: PathBuf,
        /// Sign only the binding of this world.
        #[arg(long)]
        world: Option<World>,
        /// Sign only the binding at this scope.
        #[arg(long)]
        scope: Option<Scope>,
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
        PluginCommand::Sign {
            key,
            policy,
            world,
            scope,
        } => sign(&key, &policy, world, scope),
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
    super::secret_key::create(out, &signer.secret_hex())?;
    println!(
        "secret key written to {out:?}\n\n# add to the policy's trusted keys:\n[[trusted_key]]\nname = \"{}\"\npublic_key = \"{}\"",
        out.file_stem()
            .map_or("operator".into(), |s| s.to_string_lossy()),
        signer.public_hex()
    );
    Ok(())
}

fn sign(key: &Path, path: &Path, world: Option<World>, scope: Option<Scope>) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(key).with_context(|| format!("cannot read {key:?}"))?;
    let signer = PluginSigner::parse(&text).map_err(|e| usage(format!("{key:?}: {e}")))?;
    let mut policy = load_policy(path)?;
    let mut signed = 0;
    for binding in &mut policy.plugins {
        if !chosen(binding, world, scope.as_ref()) {
            continue;
        }
        let bytes = component_of(path, binding)?;
        binding.sha256 = Some(sha256_hex(&bytes));
        binding.signature = Some(signer.sign(binding).to_string());
        signed += 1;
        println!(
            "signed  {} at {}: {} {} sha256 {}",
            binding.world,
            binding.scope,
            binding.name,
            binding.version,
            sha256_hex(&bytes)
        );
    }
    anyhow::ensure!(signed > 0, "no binding in {path:?} matches");
    std::fs::write(path, policy.to_toml()).with_context(|| format!("cannot write {path:?}"))?;
    Ok(())
}

/// Whether `binding` is one of those `world` and `scope` pick (all when neither is given).
fn chosen(binding: &Binding, world: Option<World>, scope: Option<&Scope>) -> bool {
    world.is_none_or(|w| binding.world == w) && scope.is_none_or(|s| &binding.scope == s)
}

fn load_policy(path: &Path) -> anyhow::Result<PolicyFile> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path:?}"))?;
    PolicyFile::parse(&text).map_err(|e| usage(format!("{path:?}: {e}")))
}

/// A binding's component bytes, from its file relative to the policy's folder.
fn component_of(policy: &Path, binding: &Binding) -> anyhow::Result<Vec<u8>> {
    let file = binding.file.as_deref().ok_or_else(|| {
        usage(format!(
            "{} at {} names no file",
            binding.world, binding.scope
        ))
    })?;
    let path = policy.parent().unwrap_or(Path::new(".")).join(file);
    std::fs::read(&path).with_context(|| format!("cannot read {path:?}"))
}

fn verify(path: &Path) -> anyhow::Result<()> {
    let policy = load_policy(path)?;
    let trust = policy.trust().map_err(|e| usage(e.to_string()))?;
    let mut failed = 0;
    for binding in &policy.plugins {
        let bytes = component_of(path, binding)?;
        match trust.verify(&bytes, binding) {
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
    let picked: Vec<&Binding> = policy
        .plugins
        .iter()
        .filter(|b| chosen(b, world, scope.as_ref()))
        .collect();
    anyhow::ensure!(!picked.is_empty(), "no binding in {path:?} matches");
    let client = reqwest::Client::new();
    let url = format!("{}/v1/admin/plugins", gateway.trim_end_matches('/'));
    let mut refused = 0;
    for binding in picked {
        let bytes = component_of(path, binding)?;
        let body = serde_json::json!({
            "world": binding.world,
            "scope": binding.scope,
            "name": binding.name,
            "version": binding.version,
            "sha256": binding.sha256,
            "signature": binding.signature,
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
