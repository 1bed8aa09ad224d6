//! `lockergrid device …`: the device registry of a running gateway, as a technician or an
//! operator uses it. `provision` generates the locker's key where it runs (the private key never
//! leaves that machine), has the gateway certify it and writes `<station>.pem`,
//! `<station>.key.pem` (0600) and `ca.pem` for the locker's shim.

use super::remote::{Gateway, call};
use anyhow::Context;
use clap::{Args, Subcommand};
use lockergrid_device_plane::{DeviceKey, write_credentials};
use serde_json::{Value, json};
use std::path::PathBuf;

const DEVICES: &str = "/v1/admin/devices";

/// What `lockergrid device` can do.
#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Provision a station's locker controller: a fresh key here, a certificate from the
    /// gateway's CA, a registry entry; the locker goes active once its self-test passes.
    Provision {
        #[command(flatten)]
        at: Gateway,
        /// The station the controller runs.
        #[arg(long)]
        station: String,
        /// Its hardware model (firmware images name the model they are for).
        #[arg(long)]
        model: String,
        /// The directory to write the certificate, key and CA certificate into.
        #[arg(long)]
        out: PathBuf,
    },
    /// List the registry.
    List {
        #[command(flatten)]
        at: Gateway,
    },
    /// Suspend a device: its session is cut and it may not connect until resumed.
    Suspend(Order),
    /// Resume a suspended device.
    Resume(Order),
    /// Decommission a device for good: certificate revoked, station out of discovery, held
    /// reservations moved (customers told); prints the parcels left to collect.
    Decommission(Order),
}

/// An operator's order about one device.
#[derive(Debug, Args)]
pub struct Order {
    #[command(flatten)]
    at: Gateway,
    /// The device (its station's id).
    #[arg(long)]
    id: String,
    /// Why, for the access log.
    #[arg(long)]
    reason: String,
}

/// Runs one `device` command.
pub async fn run(command: DeviceCommand) -> anyhow::Result<()> {
    match command {
        DeviceCommand::Provision {
            at,
            station,
            model,
            out,
        } => {
            let key = DeviceKey::generate()?;
            let body =
                json!({ "station": station, "model": model, "public_key_pem": key.public_key_pem });
            let answer = call(&at, reqwest::Method::POST, DEVICES, Some(body)).await?;
            let text = |field: &str| {
                answer[field]
                    .as_str()
                    .map(str::to_owned)
                    .with_context(|| format!("the gateway's answer has no {field}"))
            };
            write_credentials(
                &out,
                &station,
                &text("certificate_pem")?,
                &key.key_pem,
                &text("ca_pem")?,
            )?;
            let device = &answer["device"];
            println!(
                "provisioned {station} ({}) serial {} into {}; it goes active once its self-test passes",
                device["model"].as_str().unwrap_or("?"),
                device["serial"].as_str().unwrap_or("?"),
                out.display()
            );
        }
        DeviceCommand::List { at } => {
            let answer = call(&at, reqwest::Method::GET, DEVICES, None).await?;
            println!(
                "{:<24} {:<15} {:<20} {:<12} {:<7} serial",
                "id", "status", "model", "firmware", "online"
            );
            for d in answer["devices"].as_array().into_iter().flatten() {
                let field = |name: &str| d[name].as_str().unwrap_or("-").to_owned();
                println!(
                    "{:<24} {:<15} {:<20} {:<12} {:<7} {}",
                    field("id"),
                    field("status"),
                    field("model"),
                    field("firmware"),
                    d["online"].as_bool().unwrap_or(false),
                    field("serial")
                );
            }
        }
        DeviceCommand::Suspend(o) => {
            order(&o, "suspend").await?;
        }
        DeviceCommand::Resume(o) => {
            order(&o, "resume").await?;
        }
        DeviceCommand::Decommission(o) => {
            let answer = order(&o, "decommission").await?;
            let count = |field: &str| answer[field].as_array().map_or(0, Vec::len);
            println!(
                "{} reservations moved, {} released (nothing near had room)",
                count("moved"),
                count("released")
            );
            for parcel in answer["parcels_to_collect"]
                .as_array()
                .into_iter()
                .flatten()
            {
                println!(
                    "collect {} from {} ({})",
                    parcel["parcel_id"].as_str().unwrap_or("?"),
                    parcel["compartment_id"].as_str().unwrap_or("?"),
                    parcel["status"].as_str().unwrap_or("?")
                );
            }
        }
    }
    Ok(())
}

/// Sends `verb` about one device and prints its status after; the gateway's answer.
async fn order(order: &Order, verb: &str) -> anyhow::Result<Value> {
    let path = format!("{DEVICES}/{}/{verb}", order.id);
    let body = json!({ "reason": order.reason });
    let answer = call(&order.at, reqwest::Method::POST, &path, Some(body)).await?;
    let device = answer.get("device").unwrap_or(&answer);
    println!("{}: {}", order.id, device["status"].as_str().unwrap_or("?"));
    Ok(answer)
}
