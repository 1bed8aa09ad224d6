use super::*;

const IMAGE: &[u8] = b"lockergrid-shim 1.4.0 for lockergrid-sim-1";

fn v(s: &str) -> FirmwareVersion {
    s.parse().unwrap()
}

fn signed(key: &FirmwareKey) -> SignedManifest {
    FirmwareManifest::of(IMAGE, v("1.4.0"), "lockergrid-sim-1".into(), v("1.2.0"), 7).sign(key)
}

#[test]
fn versions_parse_and_order_numerically() {
    assert!(v("1.10.0") > v("1.9.3"));
    assert_eq!(v("2.0.1").to_string(), "2.0.1");
    for bad in ["1.2", "1.2.3.4", "a.b.c", "1.-2.3", "1.+2.3", ""] {
        assert!(bad.parse::<FirmwareVersion>().is_err(), "{bad}");
    }
}

#[test]
fn a_signed_image_verifies_and_is_admitted_where_it_belongs() {
    let key = FirmwareKey::from_secret([7; 32]);
    let manifest = signed(&key);
    let trusted = [key.public()];
    let m = manifest.verify(&trusted).expect("verifies");
    m.matches(IMAGE).expect("the image it names");
    m.admits("lockergrid-sim-1", v("1.3.2"), 7)
        .expect("admitted");
    let json = serde_json::to_string(&manifest).unwrap();
    assert!(json.contains("\"version\":\"1.4.0\""), "{json}");
    assert_eq!(
        serde_json::from_str::<SignedManifest>(&json).unwrap(),
        manifest
    );
}

#[test]
fn a_tampered_image_a_wrong_key_another_model_and_a_downgrade_are_refused_with_their_codes() {
    let key = FirmwareKey::from_secret([7; 32]);
    let trusted = [key.public()];
    let manifest = signed(&key);

    // Another key, and a manifest changed after signing.
    let other = signed(&FirmwareKey::from_secret([8; 32]));
    assert_eq!(other.verify(&trusted).unwrap_err().code(), "untrusted-key");
    let mut loosened = manifest.clone();
    loosened.manifest.counter = 9;
    assert_eq!(
        loosened.verify(&trusted).unwrap_err().code(),
        "signature-refused"
    );
    let mut garbled = manifest.clone();
    garbled.signature = "zz".into();
    assert_eq!(
        garbled.verify(&trusted).unwrap_err().code(),
        "signature-refused"
    );

    // A tampered or cut-short image.
    let m = manifest.verify(&trusted).unwrap();
    let mut tampered = IMAGE.to_vec();
    tampered[3] ^= 1;
    assert_eq!(m.matches(&tampered).unwrap_err().code(), "digest-mismatch");
    assert_eq!(m.matches(&IMAGE[1..]).unwrap_err().code(), "size-mismatch");

    // Another model, a counter below the locker's, a locker too old to take it.
    assert_eq!(
        m.admits("other-model", v("1.3.0"), 7).unwrap_err().code(),
        "wrong-model"
    );
    assert_eq!(
        m.admits("lockergrid-sim-1", v("1.3.0"), 8)
            .unwrap_err()
            .code(),
        "downgrade"
    );
    assert_eq!(
        m.admits("lockergrid-sim-1", v("1.1.9"), 7)
            .unwrap_err()
            .code(),
        "version-too-old"
    );
}
