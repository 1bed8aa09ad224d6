//! `lockergrid firmware …`: the firmware release side. A firmware key of its own (neither the
//! plugin key nor the command key) signs an image's manifest — version, hardware model,
//! SHA-256, size, the oldest version it may replace and its anti-rollback counter — and anyone
//! holding the public key verifies an image against it, with the reason code a locker would
//! report for a refusal.

use super::remote::{Gateway, call};
use crate::config::ConfigError;
use anyhow::Context;
use base64::Engine as _;
use clap::Subcommand;
use lockergrid_protocol::firmware::{
    FirmwareKey, FirmwareManifest, FirmwarePublicKey, FirmwareVersion, SignedManifest,
};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// What `lockergrid firmware` can do.
#[derive(Debug, Subcommand)]
pub enum FirmwareCommand {
    /// Upload an image with its signed manifest to a running gateway.
    Upload {
        #[command(flatten)]
        at: Gateway,
        /// The image.
        #[arg(long)]
        image: PathBuf,
        /// Its signed manifest.
        #[arg(long)]
        manifest: PathBuf,
    },
    /// List the images a running gateway holds.
    List {
        #[command(flatten)]
        at: Gateway,
    },
    /// Roll an image out to lockers in waves, and watch, pause, resume or abort it.
    Rollout {
        #[command(subcommand)]
        command: super::rollout::RolloutCommand,
    },
    /// Create a firmware signing key; prints the public key nodes and lockers trust.
    Keygen {
        /// Where to write the secret key (created with mode 0600, never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Sign an image: writes its manifest with the signature.
    Sign {
        /// The secret key file from `keygen`.
        #[arg(long)]
        key: PathBuf,
        /// The image.
        #[arg(long)]
        image: PathBuf,
        /// Its version, major.minor.patch.
        #[arg(long)]
        version: FirmwareVersion,
        /// The hardware model it runs on.
        #[arg(long)]
        model: String,
        /// The oldest version it may replace.
        #[arg(long, default_value = "0.0.0")]
        min_version: FirmwareVersion,
        /// Its anti-rollback counter: raise it when an older image must never run again.
        #[arg(long, default_value_t = 0)]
        counter: u32,
        /// Where to write the signed manifest (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Verify an image against its signed manifest and the keys given.
    Verify {
        /// The signed manifest.
        #[arg(long)]
        manifest: PathBuf,
        /// The image.
        #[arg(long)]
        image: PathBuf,
        /// A trusted firmware public key, hex; repeat for several.
        #[arg(long = "trust", required = true)]
        trusted: Vec<String>,
    },
}

/// Runs one `firmware` command.
pub async fn run(command: FirmwareCommand) -> anyhow::Result<()> {
    match command {
        FirmwareCommand::Upload {
            at,
            image,
            manifest,
        } => {
            let header = base64::engine::general_purpose::STANDARD.encode(read(&manifest)?);
            let bytes = read(&image)?;
            let answer = send(&at, bytes, header).await?;
            println!(
                "{} {} stored at the gateway",
                answer["manifest"]["model"].as_str().unwrap_or("?"),
                answer["manifest"]["version"].as_str().unwrap_or("?")
            );
        }
        FirmwareCommand::Rollout { command } => super::rollout::run(command).await?,
        FirmwareCommand::List { at } => {
            let answer = call(&at, reqwest::Method::GET, "/v1/admin/firmware", None).await?;
            println!(
                "{:<24} {:<10} {:>10} {:>8} sha256",
                "model", "version", "bytes", "counter"
            );
            for image in answer["images"].as_array().into_iter().flatten() {
                let m = &image["manifest"];
                println!(
                    "{:<24} {:<10} {:>10} {:>8} {}",
                    m["model"].as_str().unwrap_or("?"),
                    m["version"].as_str().unwrap_or("?"),
                    m["size"],
                    m["counter"],
                    m["sha256"].as_str().unwrap_or("?")
                );
            }
        }
        FirmwareCommand::Keygen { out } => {
            let secret: [u8; 32] = rand::random();
            super::secret_key::create(&out, &lockergrid_protocol::to_hex(&secret))?;
            let public = FirmwareKey::from_secret(secret).public().to_hex();
            println!("secret key written to {out:?}\npublic key: {public}");
        }
        FirmwareCommand::Sign {
            key,
            image,
            version,
            model,
            min_version,
            counter,
            out,
        } => {
            let key = read_key(&key)?;
            let bytes = read(&image)?;
            let manifest = FirmwareManifest::of(&bytes, version, model, min_version, counter);
            let signed = manifest.sign(&key);
            let json = serde_json::to_string_pretty(&signed)?;
            std::fs::write(&out, json + "\n").with_context(|| format!("cannot write {out:?}"))?;
            println!(
                "signed {version} for {} ({} bytes, sha256 {}) into {out:?}",
                signed.manifest.model, signed.manifest.size, signed.manifest.sha256
            );
        }
        FirmwareCommand::Verify {
            manifest,
            image,
            trusted,
        } => {
            let trusted = trusted
                .iter()
                .map(|k| {
                    FirmwarePublicKey::from_hex(k)
                        .ok_or_else(|| usage(format!("{k:?} is not an Ed25519 public key in hex")))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let text = String::from_utf8(read(&manifest)?)
                .with_context(|| format!("{manifest:?} is not text"))?;
            let signed: SignedManifest = serde_json::from_str(&text)
                .map_err(|e| usage(format!("{manifest:?} is not a signed manifest: {e}")))?;
            let bytes = read(&image)?;
            let checked = signed
                .verify(&trusted)
                .and_then(|m| m.matches(&bytes).map(|()| m));
            match checked {
                Ok(m) => println!("ok: {} for {} signed by {}", m.version, m.model, signed.key),
                Err(refusal) => anyhow::bail!("refused: {}: {refusal}", refusal.code()),
            }
        }
    }
    Ok(())
}

/// Bytes of an upload per progress step.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// Posts an image with its manifest header, with a progress bar on a terminal; the gateway's
/// answer, or its refusal (exit 64 for a 4xx).
async fn send(at: &Gateway, image: Vec<u8>, header: String) -> anyhow::Result<serde_json::Value> {
    let url = at.url("/v1/admin/firmware");
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(image.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "upload [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .map_err(|e| anyhow::anyhow!("progress template: {e}"))?
        .progress_chars("=> "),
    );
    let len = image.len();
    let chunks: Vec<Vec<u8>> = image.chunks(UPLOAD_CHUNK).map(<[u8]>::to_vec).collect();
    let counted = bar.clone();
    let body = futures_util::stream::iter(chunks.into_iter().map(move |chunk| {
        counted.inc(chunk.len() as u64);
        Ok::<_, std::io::Error>(chunk)
    }));
    let response = at
        .request(reqwest::Method::POST, &url)
        .header("lockergrid-manifest", header)
        .header("content-type", "application/octet-stream")
        .header("content-length", len)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    bar.finish_and_clear();
    super::remote::answer(&url, response).await
}

fn usage(message: String) -> anyhow::Error {
    ConfigError::Invalid(message).into()
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| usage(format!("cannot read {path:?}: {e}")))
}

fn read_key(path: &Path) -> anyhow::Result<FirmwareKey> {
    let text = String::from_utf8(read(path)?).unwrap_or_default();
    let secret = lockergrid_protocol::from_hex::<32>(text.trim())
        .ok_or_else(|| usage(format!("{path:?} holds no firmware secret key")))?;
    Ok(FirmwareKey::from_secret(secret))
}
