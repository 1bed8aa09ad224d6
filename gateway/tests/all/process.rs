//! Starting the `lockergrid` binary as a child process.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The binary under test.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lockergrid"))
}

/// Writes a deployment file with `stations` stations of `compartments` each into `dir`.
pub fn write_deployment(dir: &Path, stations: usize, compartments: u32) -> PathBuf {
    let mut text = String::from(
        "version = 1\n[region]\nid = \"t\"\nname = \"T\"\n[gateway]\nlisten = \"127.0.0.1:0\"\ndevices = \"127.0.0.1:0\"\ndata_dir = \"data\"\n",
    );
    for i in 0..stations {
        text.push_str(&format!(
            "[[station]]\nid = \"st-{i}\"\nname = \"S{i}\"\nkind = \"urban\"\nlat = 52.3\nlon = 4.{i}\ncompartments = {compartments}\n"
        ));
    }
    let path = dir.join("deploy.toml");
    std::fs::write(&path, text).expect("deployment written");
    path
}

/// A gateway child process and the address it listens on.
pub struct Gateway {
    pub child: Child,
    pub base: String,
}

/// Starts `lockergrid gateway` and waits for the line that says where it listens.
pub async fn start_gateway(config: &Path) -> anyhow::Result<Gateway> {
    start_gateway_with(config, &[]).await
}

/// Starts `lockergrid gateway` with `extra` arguments and waits for the line that says where it
/// listens.
pub async fn start_gateway_with(config: &Path, extra: &[&str]) -> anyhow::Result<Gateway> {
    let mut args: Vec<&OsStr> = vec!["gateway".as_ref(), "--config".as_ref(), config.as_ref()];
    args.extend(["--listen", "127.0.0.1:0"].map(OsStr::new));
    args.extend(extra.iter().map(OsStr::new));
    let (child, base) = start_until(&args, "lockergrid gateway listening on ").await?;
    Ok(Gateway {
        child,
        base: base.trim().to_owned(),
    })
}

/// Starts `lockergrid` with `args` and waits for the first line of its output that starts with
/// `ready`; the child and the rest of that line.
pub async fn start_until(args: &[&OsStr], ready: &str) -> anyhow::Result<(Child, String)> {
    let mut child = Command::new(binary())
        .args(args)
        .env("RUST_LOG", "warn,rumqttd=off")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(rest) = line.strip_prefix(ready) {
            return Ok((child, rest.to_owned()));
        }
    }
    anyhow::bail!(
        "lockergrid {args:?} exited before {ready:?}: {:?}",
        child.wait().await?
    )
}

/// Runs `lockergrid token issue` and returns the token.
pub async fn issue_token(config: &Path, role: &str, extra: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(binary())
        .args(["token", "issue", "--config"])
        .arg(config)
        .args(["--role", role, "--subject", "test"])
        .args(extra)
        .output()
        .await?;
    anyhow::ensure!(out.status.success(), "token issue failed: {out:?}");
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Runs `lockergrid device provision` against the gateway at `base` for `station`, writing the
/// locker's certificate, key and CA certificate into `out`.
pub async fn provision_locker(
    base: &str,
    operator: &str,
    station: &str,
    out: &Path,
) -> anyhow::Result<()> {
    let done = Command::new(binary())
        .args([
            "device",
            "provision",
            "--gateway",
            base,
            "--token",
            operator,
        ])
        .args(["--station", station, "--model", "test-locker", "--out"])
        .arg(out)
        .output()
        .await?;
    anyhow::ensure!(done.status.success(), "device provision failed: {done:?}");
    Ok(())
}
