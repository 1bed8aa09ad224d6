//! `lockergrid pki`: a CA, certificates that chain to it, revocation into the published list,
//! and bad requests refused with exit 64 and one line.

use crate::process::binary;
use lockergrid_device_plane::{Identity, Kind};
use std::path::Path;
use tokio::process::Command;

async fn pki(dir: &Path, args: &[&str]) -> anyhow::Result<(Option<i32>, String, String)> {
    let out = Command::new(binary())
        .arg("pki")
        .args(args)
        .arg("--dir")
        .arg(dir)
        .output()
        .await?;
    Ok((
        out.status.code(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

#[tokio::test]
async fn a_ca_issues_revokes_and_publishes_its_revocation_list() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let ca = tmp.path().join("pki");
    let (code, _, stderr) = pki(&ca, &["init"]).await?;
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = pki(&ca, &["init"]).await?;
    assert_eq!(code, Some(64), "a second init must not replace the CA");
    assert!(stderr.contains("already exists"), "{stderr}");

    let out = tmp.path().join("ams-zuid");
    let out_s = out.to_str().unwrap();
    let (code, stdout, stderr) = pki(
        &ca,
        &[
            "issue", "--kind", "locker", "--id", "ams-zuid", "--out", out_s,
        ],
    )
    .await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("issued locker ams-zuid"), "{stdout}");
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(out.join("ams-zuid.key.pem"))?.permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);
    // The certificate names the locker and chains to the CA.
    let cert = std::fs::read(out.join("ams-zuid.pem"))?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&cert)?;
    let parsed = pem.parse_x509()?;
    let uri = parsed
        .subject_alternative_name()?
        .expect("SAN")
        .value
        .general_names
        .iter()
        .find_map(|n| match n {
            x509_parser::extensions::GeneralName::URI(u) => Some(u.to_string()),
            _ => None,
        })
        .expect("a URI");
    assert_eq!(
        Identity::from_uri(&uri),
        Some(Identity::new(Kind::Locker, "ams-zuid")?)
    );
    let ca_pem = std::fs::read(ca.join("ca.pem"))?;
    let (_, ca_pem) = x509_parser::pem::parse_x509_pem(&ca_pem)?;
    parsed.verify_signature(Some(ca_pem.parse_x509()?.public_key()))?;

    for bad in [
        vec![
            "issue", "--kind", "locker", "--id", "Bad Id!", "--out", out_s,
        ],
        vec!["issue", "--kind", "node", "--id", "gw", "--out", out_s],
        vec![
            "issue", "--kind", "locker", "--id", "x", "--host", "h", "--out", out_s,
        ],
        vec![
            "issue", "--kind", "locker", "--id", "x", "--days", "0", "--out", out_s,
        ],
        vec!["revoke", "--kind", "locker", "--id", "never-issued"],
        vec!["revoke", "--serial", "00"],
    ] {
        let (code, _, stderr) = pki(&ca, &bad).await?;
        assert_eq!(code, Some(64), "{bad:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{bad:?}: {stderr}");
    }
    let (code, _, stderr) = pki(&tmp.path().join("nothing"), &["list"]).await?;
    assert_eq!(code, Some(64), "{stderr}");

    let serial = stdout_serial(&pki(&ca, &["list"]).await?.1, "ams-zuid");
    let (code, stdout, stderr) =
        pki(&ca, &["revoke", "--kind", "locker", "--id", "ams-zuid"]).await?;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains(&serial), "{stdout}");
    let crl = std::fs::read(ca.join("crl.pem"))?;
    let (_, crl) = x509_parser::pem::parse_x509_pem(&crl)?;
    let (_, crl) = x509_parser::parse_x509_crl(&crl.contents)?;
    let revoked: Vec<String> = crl
        .iter_revoked_certificates()
        .map(|r| lockergrid_protocol::to_hex(r.raw_serial()))
        .collect();
    assert_eq!(revoked, vec![serial]);
    let (code, _, _) = pki(&ca, &["crl"]).await?;
    assert_eq!(code, Some(0));
    Ok(())
}

fn stdout_serial(list: &str, id: &str) -> String {
    list.lines()
        .find(|line| line.split_whitespace().nth(2) == Some(id))
        .and_then(|line| line.split_whitespace().next())
        .expect("listed")
        .to_string()
}
