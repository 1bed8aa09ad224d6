//! `lockergrid firmware`: a key of its own signs an image's manifest, and verification refuses
//! a tampered image and a manifest no trusted key signed, each with its reason code.

use crate::process::{binary, issue_token, start_gateway, write_deployment};
use tokio::process::Command;

async fn firmware(args: &[&str]) -> anyhow::Result<(Option<i32>, String, String)> {
    let out = Command::new(binary())
        .arg("firmware")
        .args(args)
        .output()
        .await?;
    Ok((
        out.status.code(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

#[tokio::test]
async fn an_image_signed_with_the_firmware_key_verifies_and_a_tampered_one_is_refused()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (key, image, manifest) = (path("release.key"), path("shim.img"), path("shim.json"));
    std::fs::write(&image, b"a firmware image")?;
    let (code, stdout, stderr) = firmware(&["keygen", "--out", &key]).await?;
    assert_eq!(code, Some(0), "{stderr}");
    let public = stdout
        .lines()
        .find_map(|l| l.strip_prefix("public key: "))
        .expect("the public key")
        .to_owned();
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key)?.permissions());
    assert_eq!(mode & 0o777, 0o600);
    let (code, _, _) = firmware(&["keygen", "--out", &key]).await?;
    assert_ne!(code, Some(0), "a key is never overwritten");

    let sign = [
        "sign",
        "--key",
        &key,
        "--image",
        &image,
        "--version",
        "1.4.0",
        "--model",
        "lockergrid-sim-1",
        "--min-version",
        "1.2.0",
        "--counter",
        "3",
        "--out",
        &manifest,
    ];
    let (code, stdout, stderr) = firmware(&sign).await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("signed 1.4.0 for lockergrid-sim-1 (16 bytes"),
        "{stdout}"
    );
    let verify = [
        "verify",
        "--manifest",
        &manifest,
        "--image",
        &image,
        "--trust",
        &public,
    ];
    let (code, stdout, stderr) = firmware(&verify).await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.starts_with("ok: 1.4.0 for lockergrid-sim-1"),
        "{stdout}"
    );

    std::fs::write(&image, b"a firmware imagE")?;
    let (code, _, stderr) = firmware(&verify).await?;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("refused: digest-mismatch"), "{stderr}");
    let other = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let untrusted = [
        "verify",
        "--manifest",
        &manifest,
        "--image",
        &image,
        "--trust",
        other,
    ];
    let (code, _, stderr) = firmware(&untrusted).await?;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("refused: untrusted-key"), "{stderr}");
    let (code, _, stderr) = firmware(&[
        "verify",
        "--manifest",
        &manifest,
        "--image",
        &image,
        "--trust",
        "nonsense",
    ])
    .await?;
    assert_eq!(code, Some(64), "{stderr}");

    // A gateway that trusts the key takes the image it names, and refuses a tampered one.
    let config = write_deployment(dir.path(), 1, 4);
    let mut text = std::fs::read_to_string(&config)?;
    text.push_str(&format!("[firmware]\ntrusted_keys = [\"{public}\"]\n"));
    std::fs::write(&config, text)?;
    let operator = issue_token(&config, "operator", &[]).await?;
    let gateway = start_gateway(&config).await?;
    let at = [
        "--gateway",
        gateway.base.as_str(),
        "--token",
        operator.as_str(),
    ];
    let mut upload = vec!["upload"];
    upload.extend_from_slice(&at);
    upload.extend_from_slice(&["--image", &image, "--manifest", &manifest]);
    let (code, _, stderr) = firmware(&upload).await?;
    assert_eq!(code, Some(64), "the tampered image: {stderr}");
    assert!(stderr.contains("digest-mismatch"), "{stderr}");
    std::fs::write(&image, b"a firmware image")?;
    let (code, stdout, stderr) = firmware(&upload).await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("lockergrid-sim-1 1.4.0 stored"), "{stdout}");
    let mut list = vec!["list"];
    list.extend_from_slice(&at);
    let (code, stdout, stderr) = firmware(&list).await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("lockergrid-sim-1") && l.contains("1.4.0")),
        "{stdout}"
    );
    let held = dir.path().join("data/firmware/lockergrid-sim-1-1.4.0.img");
    assert_eq!(std::fs::read(&held)?, b"a firmware image");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&held)?.permissions());
    assert_eq!(mode & 0o777, 0o600);
    Ok(())
}
