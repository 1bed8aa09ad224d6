//! `lockergrid plugin`: a key is made, a policy's binding signed, the policy verified (and refused
//! once a byte of the component or a limit of the binding changes), and pushed to a running
//! gateway that trusts the key.

use crate::process::{binary, issue_token, start_gateway, write_deployment};
use lockergrid_model::sha256_hex;
use std::path::Path;
use tokio::process::Command;

async fn plugin(args: &[&str], dir: &Path) -> anyhow::Result<(Option<i32>, String)> {
    let out = Command::new(binary())
        .arg("plugin")
        .args(args)
        .current_dir(dir)
        .output()
        .await?;
    let text = String::from_utf8(out.stdout)? + &String::from_utf8(out.stderr)?;
    Ok((out.status.code(), text))
}

fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} = \"")))
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[tokio::test]
async fn a_signed_policy_verifies_a_changed_byte_is_refused_and_a_push_swaps_the_plugin_in()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (code, keygen) = plugin(&["keygen", "--out", "ops.key"], dir.path()).await?;
    assert_eq!(code, Some(0), "{keygen}");
    let public_key = field(&keygen, "public_key").to_owned();
    let (code, again) = plugin(&["keygen", "--out", "ops.key"], dir.path()).await?;
    assert_eq!(code, Some(1), "a key is never overwritten: {again}");

    let component = lockergrid_plugin_artifacts::RESERVATION_BALANCED;
    std::fs::write(dir.path().join("balanced.wasm"), component)?;
    let policy = format!(
        "version = 1\n[[trusted_key]]\nname = \"ops\"\npublic_key = \"{public_key}\"\n\
         [[plugin]]\nworld = \"reservation-policy\"\nscope = \"default\"\nname = \"balanced-ops\"\n\
         version = \"2.0.0\"\nfile = \"balanced.wasm\"\n"
    );
    std::fs::write(dir.path().join("policy.toml"), &policy)?;
    let (code, unsigned) = plugin(&["verify", "--policy", "policy.toml"], dir.path()).await?;
    assert_eq!(code, Some(1), "an unsigned binding is refused: {unsigned}");
    let (code, signed) = plugin(
        &["sign", "--key", "ops.key", "--policy", "policy.toml"],
        dir.path(),
    )
    .await?;
    assert_eq!(code, Some(0), "{signed}");
    assert!(signed.contains(&sha256_hex(component)), "{signed}");
    let signed_policy = std::fs::read_to_string(dir.path().join("policy.toml"))?;
    assert_eq!(field(&signed_policy, "sha256"), sha256_hex(component));
    assert!(field(&signed_policy, "signature").starts_with("ed25519 "));
    let (code, verified) = plugin(&["verify", "--policy", "policy.toml"], dir.path()).await?;
    assert_eq!(code, Some(0), "{verified}");
    assert!(verified.contains("signed by ops"), "{verified}");

    // The signature covers the binding: a loosened limit is refused like a changed byte.
    let loosened = signed_policy.replace("deadline_ms = 50", "deadline_ms = 1000");
    assert_ne!(loosened, signed_policy, "{signed_policy}");
    std::fs::write(dir.path().join("policy.toml"), &loosened)?;
    let (code, refused) = plugin(&["verify", "--policy", "policy.toml"], dir.path()).await?;
    assert_eq!(code, Some(1), "{refused}");
    assert!(refused.contains("does not match the binding"), "{refused}");
    std::fs::write(dir.path().join("policy.toml"), &signed_policy)?;

    let mut tampered = component.to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    std::fs::write(dir.path().join("balanced.wasm"), &tampered)?;
    let (code, refused) = plugin(&["verify", "--policy", "policy.toml"], dir.path()).await?;
    assert_eq!(code, Some(1), "{refused}");
    assert!(refused.contains("REFUSED"), "{refused}");
    std::fs::write(dir.path().join("balanced.wasm"), component)?;

    // A gateway whose policy template trusts the operator's key.
    let template = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/default.toml"),
    )?;
    let template =
        format!("{template}\n[[trusted_key]]\nname = \"ops\"\npublic_key = \"{public_key}\"\n");
    std::fs::write(dir.path().join("template.toml"), template)?;
    let config = write_deployment(dir.path(), 2, 20);
    let mut deployment = std::fs::read_to_string(&config)?;
    deployment.push_str("[plugins]\npolicy = \"template.toml\"\n");
    std::fs::write(&config, deployment)?;
    let mut gateway = start_gateway(&config).await?;
    let operator = issue_token(&config, "operator", &[]).await?;
    let (code, pushed) = plugin(
        &[
            "push",
            "--policy",
            "policy.toml",
            "--gateway",
            &gateway.base,
            "--token",
            &operator,
        ],
        dir.path(),
    )
    .await?;
    assert_eq!(code, Some(0), "{pushed}");
    assert!(
        pushed.contains("serving reservation-policy at default: balanced-ops 2.0.0"),
        "{pushed}"
    );
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/admin/plugins", gateway.base))
        .bearer_auth(&operator)
        .send()
        .await?
        .json()
        .await?;
    let slot = listed["slots"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["world"] == "reservation-policy"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(slot["plugin"]["name"], "balanced-ops", "{listed}");
    assert_eq!(slot["plugin"]["signed_by"], "ops");
    let in_force = std::fs::read_to_string(dir.path().join("data/plugins/policy.toml"))?;
    assert!(
        in_force.contains("balanced-ops"),
        "the push survives a restart: {in_force}"
    );
    gateway.child.kill().await?;
    Ok(())
}
