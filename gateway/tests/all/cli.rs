//! The command line reports bad configuration and usage with one line and exit code 64.

use crate::process::{binary, issue_token, write_deployment};
use tokio::process::Command;

#[tokio::test]
async fn a_bad_deployment_file_exits_64_with_one_clear_line() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("deploy.toml");
    std::fs::write(
        &config,
        "version = 1\n[region]\nid = \"x\"\nname = \"x\"\nbogus = 1\n",
    )?;
    let out = Command::new(binary())
        .args(["gateway", "--config"])
        .arg(&config)
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8(out.stderr)?;
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bogus"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn a_missing_deployment_file_exits_64() -> anyhow::Result<()> {
    let out = Command::new(binary())
        .args(["gateway", "--config", "/nonexistent/deploy.toml"])
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(64));
    Ok(())
}

#[tokio::test]
async fn a_scoped_token_without_stations_is_refused_with_64() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_deployment(dir.path(), 1, 30);
    let out = Command::new(binary())
        .args([
            "token",
            "issue",
            "--role",
            "agent",
            "--subject",
            "a",
            "--config",
        ])
        .arg(&config)
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(64));
    let token = issue_token(&config, "agent", &["--station", "st-0"]).await?;
    assert!(token.starts_with("lgt2."));
    Ok(())
}

#[tokio::test]
async fn a_token_longer_than_its_role_allows_is_refused_with_64() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let config = write_deployment(dir.path(), 1, 30);
    let out = Command::new(binary())
        .args(["token", "issue", "--role", "operator", "--subject", "root"])
        .args(["--ttl", "500years", "--config"])
        .arg(&config)
        .output()
        .await?;
    assert_eq!(out.status.code(), Some(64));
    let stderr = String::from_utf8(out.stderr)?;
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("at most 1day"), "{stderr}");
    let out = Command::new(binary())
        .args(["token", "issue", "--role", "operator", "--subject", "ops"])
        .arg("--config")
        .arg(&config)
        .output()
        .await?;
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8(out.stderr)?;
    assert!(stderr.starts_with("token id "), "{stderr}");
    Ok(())
}
