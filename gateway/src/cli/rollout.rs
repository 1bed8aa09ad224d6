//! `lockergrid firmware rollout …`: start a rollout of a held image in waves, watch it (a
//! progress bar per wave, live with `--watch`), pause, resume or abort it.

use super::remote::{Gateway, call};
use crate::config::ConfigError;
use clap::Subcommand;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use lockergrid_protocol::firmware::FirmwareVersion;
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::time::Duration;

/// What `lockergrid firmware rollout` can do.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Roll a held image out to the active lockers of its model.
    Start {
        #[command(flatten)]
        at: Gateway,
        /// The image's model.
        #[arg(long)]
        model: String,
        /// Its version.
        #[arg(long)]
        version: FirmwareVersion,
        /// Only these stations (repeat or separate with commas; default: the whole region).
        #[arg(long = "station", value_delimiter = ',')]
        stations: Vec<String>,
        /// The waves' cumulative shares, percent, ending at 100 (default 1,10,50,100).
        #[arg(long, value_delimiter = ',')]
        waves: Vec<u8>,
        /// How long each wave soaks before the next starts.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        soak: Duration,
        /// The share of a wave that must confirm before it counts as done, percent.
        #[arg(long, default_value_t = 100)]
        advance: u8,
        /// The share of failures among a wave's lockers done that crosses its error threshold,
        /// percent (0: any failure).
        #[arg(long, default_value_t = 0)]
        error: u8,
        /// Lockers of a wave that must be done before its error threshold can fire.
        #[arg(long, default_value_t = 1)]
        min_done: u32,
        /// What crossing it does in the first wave (later waves pause).
        #[arg(long, default_value = "abort", value_parser = ["abort", "pause"])]
        canary_on_error: String,
        /// How long a locker has from its offer to confirm.
        #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
        timeout: Duration,
        /// Lockers updating at once.
        #[arg(long, default_value_t = 20)]
        parallel: u32,
        /// Lockers starting in any minute (default: no such limit).
        #[arg(long)]
        per_minute: Option<u32>,
    },
    /// Show rollouts, or one with a progress bar per wave.
    Status {
        #[command(flatten)]
        at: Gateway,
        /// The rollout (default: every rollout, one line each).
        id: Option<String>,
        /// Keep drawing until the rollout ends.
        #[arg(long, requires = "id")]
        watch: bool,
    },
    /// Stop offering; lockers fetching or on trial finish.
    Pause {
        #[command(flatten)]
        at: Gateway,
        /// The rollout.
        id: String,
        /// Why, for the access log.
        #[arg(long)]
        reason: String,
    },
    /// Offer again where it stopped.
    Resume {
        #[command(flatten)]
        at: Gateway,
        /// The rollout.
        id: String,
    },
    /// End it: lockers not yet installed are cancelled, those on trial finish.
    Abort {
        #[command(flatten)]
        at: Gateway,
        /// The rollout.
        id: String,
        /// Why, for the access log.
        #[arg(long)]
        reason: String,
    },
}

/// Runs one `firmware rollout` command.
pub async fn run(command: RolloutCommand) -> anyhow::Result<()> {
    match command {
        RolloutCommand::Start {
            at,
            model,
            version,
            stations,
            waves,
            soak,
            advance,
            error,
            min_done,
            canary_on_error,
            timeout,
            parallel,
            per_minute,
        } => {
            let mut body = json!({
                "model": model,
                "version": version.to_string(),
                "timeout_s": timeout.as_secs().max(1),
                "max_parallel": parallel,
            });
            if !stations.is_empty() {
                body["stations"] = json!(stations);
            }
            if let Some(n) = per_minute {
                body["max_per_minute"] = json!(n);
            }
            let shares = if waves.is_empty() {
                vec![1, 10, 50, 100]
            } else {
                waves
            };
            if shares.last() != Some(&100) {
                return Err(ConfigError::Invalid("--waves must end at 100".into()).into());
            }
            body["waves"] = shares
                .iter()
                .enumerate()
                .map(|(i, percent)| {
                    json!({
                        "percent": percent,
                        "soak_s": soak.as_secs(),
                        "advance_percent": advance,
                        "error_percent": error,
                        "min_done": min_done,
                        "on_error": if i == 0 { canary_on_error.as_str() } else { "pause" },
                    })
                })
                .collect();
            let answer = call(&at, reqwest::Method::POST, "/v1/admin/rollouts", Some(body)).await?;
            println!(
                "rollout {} started: {} lockers in {} waves",
                answer["id"].as_str().unwrap_or("?"),
                answer["totals"]["lockers"],
                answer["waves"].as_array().map_or(0, Vec::len)
            );
        }
        RolloutCommand::Status { at, id: None, .. } => {
            let answer = call(&at, reqwest::Method::GET, "/v1/admin/rollouts", None).await?;
            println!(
                "{:<36} {:<10} {:<18} {:>5} {:>9} {:>6}",
                "id", "status", "image", "wave", "confirmed", "failed"
            );
            for r in answer["rollouts"].as_array().into_iter().flatten() {
                println!(
                    "{:<36} {:<10} {:<18} {:>5} {:>9} {:>6}",
                    r["id"].as_str().unwrap_or("?"),
                    r["status"].as_str().unwrap_or("?"),
                    format!(
                        "{} {}",
                        r["image"]["model"].as_str().unwrap_or("?"),
                        r["image"]["version"].as_str().unwrap_or("?")
                    ),
                    format!(
                        "{}/{}",
                        r["wave"],
                        r["waves"].as_array().map_or(0, Vec::len)
                    ),
                    format!("{}/{}", r["totals"]["confirmed"], r["totals"]["lockers"]),
                    r["totals"]["failed"]
                );
            }
        }
        RolloutCommand::Status {
            at,
            id: Some(id),
            watch,
        } => status(&at, &id, watch).await?,
        RolloutCommand::Pause { at, id, reason } => {
            order(&at, &id, "pause", Some(json!({ "reason": reason }))).await?;
        }
        RolloutCommand::Resume { at, id } => order(&at, &id, "resume", None).await?,
        RolloutCommand::Abort { at, id, reason } => {
            order(&at, &id, "abort", Some(json!({ "reason": reason }))).await?;
        }
    }
    Ok(())
}

/// Pauses, resumes or aborts rollout `id` (`verb`) and says where it stands.
async fn order(at: &Gateway, id: &str, verb: &str, body: Option<Value>) -> anyhow::Result<()> {
    let path = format!("/v1/admin/rollouts/{id}/{verb}");
    let answer = call(at, reqwest::Method::POST, &path, body).await?;
    println!("rollout {id} {}", answer["status"].as_str().unwrap_or("?"));
    Ok(())
}

/// What the header and each wave say, from the rollout's JSON.
fn describe(id: &str, answer: &Value) -> (String, Vec<(u64, u64, String)>) {
    let header = format!(
        "{id}: {} {} {} at wave {}{}",
        answer["image"]["model"].as_str().unwrap_or("?"),
        answer["image"]["version"].as_str().unwrap_or("?"),
        answer["status"].as_str().unwrap_or("?"),
        answer["wave"],
        answer["reason"]
            .as_str()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    let waves = answer["waves"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|wave| {
            let c = &wave["counts"];
            let message = format!(
                "confirmed, {} updating, {} failed, {} pending{}",
                c["in_flight"],
                c["failed"],
                c["pending"],
                match c["cancelled"].as_u64() {
                    Some(n) if n > 0 => format!(", {n} cancelled"),
                    _ => String::new(),
                }
            );
            (
                c["confirmed"].as_u64().unwrap_or(0),
                c["lockers"].as_u64().unwrap_or(0),
                message,
            )
        })
        .collect();
    (header, waves)
}

/// A progress bar per wave — confirmed of its lockers, with what is in flight and failed — on
/// a terminal; elsewhere (a pipe, a log) the same as lines, again whenever they change.
async fn status(at: &Gateway, id: &str, watch: bool) -> anyhow::Result<()> {
    let path = format!("/v1/admin/rollouts/{id}");
    let terminal = std::io::stderr().is_terminal();
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("wave {prefix:>2} [{bar:30}] {pos}/{len} {msg}")
        .map_err(|e| anyhow::anyhow!("progress template: {e}"))?
        .progress_chars("=> ");
    let header = bars.add(ProgressBar::new_spinner());
    let mut waves: Vec<ProgressBar> = Vec::new();
    let mut printed = String::new();
    loop {
        let answer: Value = call(at, reqwest::Method::GET, &path, None).await?;
        let status = answer["status"].as_str().unwrap_or("?").to_owned();
        let (title, counts) = describe(id, &answer);
        if terminal {
            header.set_message(title);
            header.tick();
            for (i, (confirmed, lockers, message)) in counts.into_iter().enumerate() {
                if waves.len() <= i {
                    let bar = bars.add(ProgressBar::new(0).with_style(style.clone()));
                    bar.set_prefix((i + 1).to_string());
                    waves.push(bar);
                }
                waves[i].set_length(lockers);
                waves[i].set_position(confirmed);
                waves[i].set_message(message);
            }
        } else {
            let mut text = title;
            for (i, (confirmed, lockers, message)) in counts.into_iter().enumerate() {
                text.push_str(&format!(
                    "\nwave {}: {confirmed}/{lockers} {message}",
                    i + 1
                ));
            }
            if text != printed {
                println!("{text}");
                printed = text;
            }
        }
        let ended = matches!(status.as_str(), "completed" | "aborted");
        if !watch || ended {
            header.finish();
            for bar in &waves {
                bar.finish();
            }
            if status == "aborted" && watch {
                anyhow::bail!("rollout {id} aborted");
            }
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
