//! `lockergrid device`: a technician provisions a locker against a running gateway (the key is
//! made where the command runs and only its public half travels), operators list, suspend and
//! resume devices and take compartments out of service and back, bad requests exit 64 with the gateway's reason, and a locker certified before
//! the registry existed is taken in as active when the gateway starts.

use crate::process::{binary, issue_token, start_gateway, write_deployment};
use std::path::Path;
use tokio::process::Command;

async fn lockergrid(args: &[&str]) -> anyhow::Result<(Option<i32>, String, String)> {
    let out = Command::new(binary()).args(args).output().await?;
    Ok((
        out.status.code(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

fn text(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// `lockergrid device <verb> --gateway … --token … <extra>`.
fn device<'a>(verb: &'a str, at: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["device", verb];
    args.extend_from_slice(at);
    args.extend_from_slice(extra);
    args
}

#[tokio::test]
async fn a_technician_provisions_and_operators_suspend_and_resume_devices() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_deployment(dir.path(), 2, 4);
    // st-0's locker was certified the old way, before the registry existed.
    let (code, _, stderr) = lockergrid(&["pki", "init", "--config", text(&config)]).await?;
    assert_eq!(code, Some(0), "{stderr}");
    let legacy = dir.path().join("legacy");
    let issue = [
        "pki",
        "issue",
        "--config",
        text(&config),
        "--kind",
        "locker",
        "--id",
        "st-0",
        "--out",
        text(&legacy),
    ];
    let (code, _, stderr) = lockergrid(&issue).await?;
    assert_eq!(code, Some(0), "{stderr}");

    let operator = issue_token(&config, "operator", &[]).await?;
    let gateway = start_gateway(&config).await?;
    let at = [
        "--gateway",
        gateway.base.as_str(),
        "--token",
        operator.as_str(),
    ];

    let out = dir.path().join("st-1");
    let (code, stdout, stderr) = lockergrid(&device(
        "provision",
        &at,
        &["--station", "st-1", "--model", "m-2", "--out", text(&out)],
    ))
    .await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("provisioned st-1 (m-2)"), "{stdout}");
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out.join("st-1.key.pem"))?.permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);
    assert!(std::fs::read_to_string(out.join("st-1.pem"))?.contains("BEGIN CERTIFICATE"));
    assert!(out.join("ca.pem").exists());

    let (code, stdout, stderr) = lockergrid(&device("list", &at, &[])).await?;
    assert_eq!(code, Some(0), "{stderr}");
    let row = |id: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        row("st-0").contains("active") && row("st-0").contains("unknown"),
        "{stdout}"
    );
    assert!(
        row("st-1").contains("provisioned") && row("st-1").contains("m-2"),
        "{stdout}"
    );

    let (code, stdout, stderr) = lockergrid(&device(
        "suspend",
        &at,
        &["--id", "st-0", "--reason", "stolen"],
    ))
    .await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "st-0: suspended");
    let (code, stdout, stderr) = lockergrid(&device(
        "resume",
        &at,
        &["--id", "st-0", "--reason", "found"],
    ))
    .await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "st-0: active");

    // A provisioned device has nothing to resume; a station the deployment lacks gets nothing.
    let (code, _, stderr) =
        lockergrid(&device("resume", &at, &["--id", "st-1", "--reason", "x"])).await?;
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("device \"st-1\" is provisioned"),
        "{stderr}"
    );
    let nowhere = dir.path().join("nowhere");
    let (code, _, stderr) = lockergrid(&device(
        "provision",
        &at,
        &[
            "--station",
            "nowhere",
            "--model",
            "m-2",
            "--out",
            text(&nowhere),
        ],
    ))
    .await?;
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("no station \"nowhere\""), "{stderr}");
    assert!(!nowhere.exists(), "nothing written for a refused request");

    // A compartment out of service and back; one that is not in maintenance cannot come back.
    let which = ["--id", "st-0:S001", "--reason", "hinge"];
    let mut out = vec!["compartment", "out-of-service"];
    out.extend_from_slice(&at);
    out.extend_from_slice(&which);
    let (code, stdout, stderr) = lockergrid(&out).await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "st-0:S001: maintenance");
    let mut back = vec!["compartment", "in-service"];
    back.extend_from_slice(&at);
    back.extend_from_slice(&which);
    let (code, stdout, stderr) = lockergrid(&back).await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.trim(), "st-0:S001: available");
    let (code, _, stderr) = lockergrid(&back).await?;
    assert_eq!(code, Some(64), "{stderr}");
    Ok(())
}
