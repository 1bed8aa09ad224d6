use super::keyring::{Keyring, KeyringError};
use super::revocations::Revocations;
use super::*;
use lockergrid_model::{Revocation, RevokedTokens};

const NOW: Timestamp = Timestamp(1_796_083_200_000);
const HOUR: Duration = Duration::from_secs(3_600);

fn station(s: &str) -> StationId {
    StationId::new(s).expect("valid")
}

fn key_of(byte: u8) -> TokenKey {
    TokenKey::new("0000000a".parse().expect("id"), [byte; 32])
}

fn verify(key: &TokenKey, token: &str, now: Timestamp) -> Result<Claims, TokenError> {
    key.verify(&Parts::split(token)?, now)
}

#[test]
fn an_issued_token_verifies_with_its_claims() {
    let key = key_of(3);
    let (token, issued) = key
        .issue("agent-7", Role::Agent, vec![station("st-a")], NOW, HOUR)
        .expect("issued");
    let claims = verify(&key, &token, NOW).expect("verifies");
    assert_eq!(claims, issued);
    assert_eq!(claims.role, Role::Agent);
    assert_eq!(claims.jti.len(), 32);
    assert!(token.starts_with("lgt2.0000000a."));
    assert!(claims.covers(&station("st-a")));
    assert!(!claims.covers(&station("st-b")));
    let (other, _) = key
        .issue("agent-7", Role::Agent, vec![station("st-a")], NOW, HOUR)
        .expect("issued");
    assert_ne!(
        Parts::split(&other).expect("parts").claims,
        Parts::split(&token).expect("parts").claims
    );
}

#[test]
fn forged_expired_future_and_foreign_tokens_are_refused() {
    let key = key_of(3);
    let (token, _) = key
        .issue("c", Role::Checkout, vec![], NOW, HOUR)
        .expect("issued");
    assert_eq!(
        verify(&key, &token, NOW.plus(HOUR)),
        Err(TokenError::Expired)
    );
    assert_eq!(
        verify(&key_of(4), &token, NOW),
        Err(TokenError::BadSignature)
    );
    assert_eq!(
        verify(&key, &token, Timestamp(NOW.0 - 301_000)),
        Err(TokenError::NotYetValid)
    );
    let (operator, _) = key
        .issue("c", Role::Operator, vec![], NOW, HOUR)
        .expect("issued");
    let claims_of = |t: &str| Parts::split(t).expect("parts").claims.to_owned();
    let spliced = format!(
        "lgt2.0000000a.{}.{}",
        claims_of(&operator),
        Parts::split(&token).expect("parts").tag
    );
    assert_eq!(verify(&key, &spliced, NOW), Err(TokenError::BadSignature));
    let rekeyed = token.replacen("0000000a", "0000000b", 1);
    assert_eq!(verify(&key, &rekeyed, NOW), Err(TokenError::BadSignature));
    for junk in [
        "",
        "lgt2",
        "lgt2...",
        "Bearer x",
        "lgt1.e30.AA",
        "lgt2.../x.e30.AA",
    ] {
        assert!(verify(&key, junk, NOW).is_err(), "{junk:?}");
    }
}

#[test]
fn no_role_gets_a_token_longer_than_its_lifetime_and_a_longer_one_is_refused() {
    let key = key_of(3);
    for (role, stations) in [
        (Role::Operator, vec![]),
        (Role::Checkout, vec![]),
        (Role::Agent, vec![station("s")]),
        (Role::Carrier, vec![station("s")]),
        (Role::Station, vec![station("s")]),
    ] {
        let max = role.max_lifetime();
        assert!(key.issue("x", role, stations.clone(), NOW, max).is_ok());
        assert!(matches!(
            key.issue("x", role, stations, NOW, max + Duration::from_secs(1)),
            Err(IssueError::TooLong(r, _)) if r == role
        ));
    }
    assert_eq!(Role::Operator.max_lifetime(), Duration::from_secs(86_400));
    // A token minted by hand with the right key but a 500-year lifetime is still refused.
    let claims = Claims {
        jti: "x".into(),
        sub: "root".into(),
        role: Role::Operator,
        stations: vec![],
        iat: NOW,
        exp: NOW.plus(Duration::from_secs(500 * 365 * 86_400)),
    };
    let json = serde_json::to_vec(&claims).expect("json");
    let payload = format!("lgt2.0000000a.{}", URL_SAFE_NO_PAD.encode(json));
    let tag = key.mac(&payload).finalize().into_bytes();
    let forged = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(tag));
    assert!(matches!(
        verify(&key, &forged, NOW),
        Err(TokenError::TooLong(Role::Operator, _))
    ));
}

#[test]
fn scoped_roles_need_stations_and_others_take_none() {
    let key = key_of(3);
    assert!(key.issue("a", Role::Station, vec![], NOW, HOUR).is_err());
    assert!(
        key.issue("a", Role::Operator, vec![station("s")], NOW, HOUR)
            .is_err()
    );
    assert!(key.issue("", Role::Operator, vec![], NOW, HOUR).is_err());
}

#[test]
fn keys_rotate_one_at_a_time_and_a_retired_key_stops_its_tokens() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ring = Keyring::open(dir.path()).expect("created");
    let first = ring.list()[0].id.clone();
    let (old, _) = ring
        .signing_key()
        .issue("c", Role::Checkout, vec![], NOW, HOUR)
        .expect("issued");
    let second = ring.rotate().expect("rotated");
    let (new, _) = ring
        .signing_key()
        .issue("c", Role::Checkout, vec![], NOW, HOUR)
        .expect("issued");
    assert!(new.starts_with(&format!("lgt2.{second}.")));
    assert!(ring.verify(&old, NOW).is_ok(), "the old key still verifies");
    assert!(matches!(
        ring.retire(&second),
        Err(KeyringError::RetireActive(_))
    ));
    ring.retire(&first).expect("retired");
    assert_eq!(
        ring.verify(&old, NOW),
        Err(TokenError::UnknownKey(first.to_string()))
    );
    assert!(ring.verify(&new, NOW).is_ok());
    let reopened = Keyring::open(dir.path()).expect("reopened");
    assert_eq!(reopened.list().len(), 1);
    assert!(reopened.list()[0].active);
    assert!(reopened.verify(&new, NOW).is_ok());
    assert!(reopened.verify(&old, NOW).is_err());
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(p).expect("exists").permissions(),
        ) & 0o777
    };
    let tokens = dir.path().join("secrets/tokens");
    assert_eq!(mode(&tokens), 0o700);
    assert_eq!(mode(&tokens.join(format!("{second}.key"))), 0o600);
}

#[test]
fn a_keyring_whose_active_key_is_gone_is_refused_not_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ring = Keyring::open(dir.path()).expect("created");
    let id = ring.list()[0].id.clone();
    std::fs::write(dir.path().join("secrets/tokens/active"), "deadbeef").expect("write");
    assert!(matches!(
        Keyring::open(dir.path()),
        Err(KeyringError::NoActiveKey(_))
    ));
    assert!(dir.path().join(format!("secrets/tokens/{id}.key")).exists());
}

#[test]
fn a_revoked_token_or_subject_is_refused_and_later_tokens_of_the_subject_are_not() {
    let key = key_of(3);
    let issue = |subject: &str, at: Timestamp| {
        key.issue(subject, Role::Agent, vec![station("s")], at, HOUR)
            .expect("issued")
            .1
    };
    let (one, two, other) = (
        issue("agent-7", NOW),
        issue("agent-7", NOW),
        issue("agent-8", NOW),
    );
    let revoked = |revoked, at: Timestamp| Revocation {
        revoked,
        revoked_at: at,
        forget_at: at.plus(Role::LONGEST_LIFETIME),
    };
    let mut revocations =
        Revocations::new(vec![revoked(RevokedTokens::Token(one.jti.clone()), NOW)]);
    assert_eq!(revocations.check(&one), Err(TokenError::Revoked));
    assert_eq!(revocations.check(&two), Ok(()));
    revocations.add(&revoked(
        RevokedTokens::Subject("agent-7".into()),
        NOW.plus(HOUR),
    ));
    assert_eq!(revocations.check(&two), Err(TokenError::Revoked));
    assert_eq!(revocations.check(&other), Ok(()));
    let later = issue("agent-7", NOW.plus(HOUR + HOUR));
    assert_eq!(revocations.check(&later), Ok(()));
}
