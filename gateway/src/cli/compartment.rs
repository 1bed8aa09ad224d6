//! `lockergrid compartment …`: take a compartment of a running gateway's stations out of
//! service (naming where the parcel or return inside goes) and back.

use super::remote::{Gateway, call};
use clap::{Args, Subcommand};
use serde_json::json;

/// What `lockergrid compartment` can do.
#[derive(Debug, Subcommand)]
pub enum CompartmentCommand {
    /// Take a compartment out of service: a hold moves to another compartment of the station;
    /// a parcel or return inside goes to `--move-to`, which the technician puts it into.
    OutOfService {
        #[command(flatten)]
        at: Which,
        /// An available compartment of the same station the contents go to.
        #[arg(long)]
        move_to: Option<String>,
    },
    /// Put a compartment in maintenance back in service.
    InService {
        #[command(flatten)]
        at: Which,
    },
}

/// One compartment of a running gateway, and why.
#[derive(Debug, Args)]
pub struct Which {
    #[command(flatten)]
    gateway: Gateway,
    /// The compartment, e.g. `ams-zuid:S001`.
    #[arg(long)]
    id: String,
    /// Why, for the access log.
    #[arg(long)]
    reason: String,
}

/// Runs one `compartment` command.
pub async fn run(command: CompartmentCommand) -> anyhow::Result<()> {
    let (at, verb, body) = match command {
        CompartmentCommand::OutOfService { at, move_to } => {
            let body = json!({ "reason": at.reason, "destination": move_to });
            (at, "out-of-service", body)
        }
        CompartmentCommand::InService { at } => {
            let body = json!({ "reason": at.reason });
            (at, "in-service", body)
        }
    };
    let path = format!("/v1/admin/compartments/{}/{verb}", at.id);
    let answer = call(&at.gateway, reqwest::Method::POST, &path, Some(body)).await?;
    let state = answer["compartment"]["state"].as_str().unwrap_or("?");
    match answer["moved_to"].as_str() {
        Some(to) => println!("{}: {state}; its contents go to {to}", at.id),
        None => println!("{}: {state}", at.id),
    }
    Ok(())
}
