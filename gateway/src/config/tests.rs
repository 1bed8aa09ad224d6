use super::*;

const MINIMAL: &str = r#"
version = 1
[region]
id = "test"
name = "Test"
[gateway]
listen = "127.0.0.1:0"
data_dir = "data"
[[station]]
id = "st-a"
name = "A"
kind = "urban"
lat = 52.0
lon = 4.0
compartments = 40
"#;

#[test]
fn the_split_is_roughly_40_35_20_5() {
    assert_eq!(split_compartments(100), [40, 35, 20, 5]);
    assert_eq!(split_compartments(30), [12, 11, 6, 1]);
    for total in 1..=1_000 {
        let split = split_compartments(total);
        assert_eq!(split.iter().sum::<u32>(), total, "{total}");
        assert!(total < 4 || split[3] >= 1, "{total}: {split:?}");
    }
}

#[test]
fn a_minimal_file_resolves_with_defaults() {
    let d = DeployConfig::from_toml(MINIMAL, Path::new("/srv")).expect("valid");
    assert_eq!(d.hold, Duration::from_secs(72 * 3_600));
    assert_eq!(d.data_dir, PathBuf::from("/srv/data"));
    assert_eq!(d.stations[0].compartments.iter().sum::<u32>(), 40);
}

#[test]
fn unknown_fields_are_refused() {
    let text = MINIMAL.replace("[gateway]", "[gateway]\ncolour = \"red\"");
    let err = DeployConfig::from_toml(&text, Path::new(".")).expect_err("refused");
    assert!(err.to_string().contains("colour"), "{err}");
}

#[test]
fn impossible_values_are_refused_with_one_line() {
    for (from, to) in [
        ("lat = 52.0", "lat = 152.0"),
        ("compartments = 40", "compartments = 0"),
        ("id = \"st-a\"", "id = \"st a\""),
        ("version = 1", "version = 2"),
    ] {
        let err = DeployConfig::from_toml(&MINIMAL.replace(from, to), Path::new("."))
            .expect_err("refused");
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}

#[test]
fn edge_nodes_need_a_valid_unique_id_and_their_own_stations() {
    let with = |edges: &str| format!("{MINIMAL}{edges}");
    let ok = with("[[edge]]\nid = \"edge-a\"\nstations = [\"st-a\"]\n");
    let d = DeployConfig::from_toml(&ok, Path::new(".")).expect("valid");
    assert_eq!(d.edges[0].stations, vec![StationId::new("st-a").unwrap()]);
    for bad in [
        "[[edge]]\nid = \"edge a\"\nstations = []\n",
        "[[edge]]\nid = \"edge-a\"\nstations = [\"st-x\"]\n",
        "[[edge]]\nid = \"edge-a\"\nstations = []\n[[edge]]\nid = \"edge-a\"\nstations = []\n",
        "[[edge]]\nid = \"edge-a\"\nstations = [\"st-a\"]\n[[edge]]\nid = \"edge-b\"\nstations = [\"st-a\"]\n",
    ] {
        let err = DeployConfig::from_toml(&with(bad), Path::new(".")).expect_err(bad);
        assert!(!err.to_string().contains('\n'), "{err}");
    }
}

#[test]
fn the_shipped_deployment_file_is_valid_and_varied() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy.toml");
    let d = DeployConfig::load(&path).expect("deploy.toml is valid");
    assert!(d.stations.len() >= 12);
    let kinds: BTreeSet<String> = d
        .stations
        .iter()
        .map(|s| format!("{:?}", s.record.kind))
        .collect();
    assert_eq!(kinds.len(), 4, "every kind of station appears");
    for s in &d.stations {
        let total: u32 = s.compartments.iter().sum();
        assert!((30..=150).contains(&total), "{} has {total}", s.record.id);
    }
    assert!(!d.edges.is_empty());
}

fn with(section: &str) -> Result<DeployConfig, ConfigError> {
    DeployConfig::from_toml(&format!("{MINIMAL}{section}"), Path::new("/srv"))
}

#[test]
fn notification_channels_resolve_with_their_secret_files_beside_the_deployment() {
    let d = with(
        r#"
[notifications]
retry_base = "1s"
attempts_per_step = 3
[notifications.email]
host = "smtp.example.com"
port = 587
tls = "starttls"
from = "Lockergrid <lockers@example.com>"
username = "lockers"
password_file = "secrets/smtp"
[notifications.sms]
base_url = "https://api.twilio.com/"
account_sid = "AC1"
auth_token_file = "secrets/sms"
from = "+3197010000000"
[[notifications.webhook]]
merchant = "shop-1"
url = "https://shop.example.com/events"
secret_file = "secrets/shop-1"
"#,
    )
    .expect("valid");
    let n = &d.notifications;
    assert_eq!(n.retry.base, Duration::from_secs(1));
    assert_eq!(n.retry.attempts_per_step, 3);
    let email = n.email.as_ref().expect("email");
    assert_eq!(
        email.credentials,
        Some(("lockers".into(), PathBuf::from("/srv/secrets/smtp")))
    );
    assert_eq!(
        n.sms.as_ref().expect("sms").base_url,
        "https://api.twilio.com"
    );
    assert_eq!(
        n.webhooks[0].secret_file,
        PathBuf::from("/srv/secrets/shop-1")
    );
}

#[test]
fn plain_smtp_plain_http_and_half_credentials_are_refused() {
    let email = |host: &str, tls: &str, extra: &str| {
        format!(
            "[notifications.email]\nhost = \"{host}\"\nport = 25\ntls = \"{tls}\"\nfrom = \"a <a@example.com>\"\n{extra}"
        )
    };
    for (section, why) in [
        (email("smtp.example.com", "none", ""), "loopback only"),
        (email("localhost", "starttls", "username = \"u\"\n"), "both username"),
        (email("localhost", "sometimes", ""), "unknown variant"),
        (
            "[notifications.email]\nhost = \"h\"\nport = 25\ntls = \"starttls\"\nfrom = \"not a mailbox\"\n".into(),
            "not a mailbox",
        ),
        (
            "[[notifications.webhook]]\nmerchant = \"m\"\nurl = \"http://shop.example.com/\"\nsecret_file = \"s\"\n".into(),
            "must be https",
        ),
        (
            "[[notifications.webhook]]\nmerchant = \"m\"\nurl = \"https://a.example.com/\"\nsecret_file = \"s\"\n[[notifications.webhook]]\nmerchant = \"m\"\nurl = \"https://b.example.com/\"\nsecret_file = \"s\"\n".into(),
            "listed twice",
        ),
        ("[notifications]\nattempts_per_step = 0\n".into(), "outside 1..=20"),
        ("[notifications]\nretry_base = \"soon\"\n".into(), "retry_base"),
    ] {
        let err = with(&section).expect_err(&section).to_string();
        assert!(err.contains(why), "{section}: {err}");
    }
    with(&email("127.0.0.1", "none", "")).expect("plain SMTP to a loopback relay");
}

#[test]
fn climate_controlled_compartments_are_named_by_number_and_checked() {
    let with = |names: &str| {
        let text = MINIMAL.replace(
            "compartments = 40",
            &format!("compartments = 40\nclimate_controlled = {names}"),
        );
        DeployConfig::from_toml(&text, Path::new("."))
    };
    let d = with(r#"["S001", "M002"]"#).expect("valid");
    let climate: Vec<&str> = d.stations[0]
        .record
        .climate_controlled
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(climate, vec!["st-a:M002", "st-a:S001"]);
    let all = with(r#"["all"]"#).expect("valid");
    assert_eq!(all.stations[0].record.climate_controlled.len(), 40);
    let err = with(r#"["S099"]"#).expect_err("st-a has 16 small compartments");
    assert!(err.to_string().contains("S099"), "{err}");
}
