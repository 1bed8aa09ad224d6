use super::*;

fn contact() -> Contact {
    Contact {
        email: Some("chris@example.com".into()),
        phone: Some("+31612345678".into()),
        app_url: Some("https://app.example.com/hooks/parcels?u=42".into()),
    }
}

#[test]
fn a_sealed_contact_opens_only_for_its_record_and_with_its_key() {
    let keys = ContactKeys::new([1; 32]);
    let bound = binding("order-1", "cust-1");
    let sealed = keys.seal(&contact(), &bound);
    assert_eq!(sealed.key_id, ACTIVE_KEY_ID);
    let text = serde_json::to_string(&sealed).expect("json");
    for secret in ["chris@example.com", "612345678", "hooks/parcels"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert_eq!(keys.open(&sealed, &bound), Ok(contact()));
    assert_eq!(
        keys.open(&sealed, &binding("order-2", "cust-1")),
        Err(ContactError::WrongKey(1)),
        "moved to another order"
    );
    assert_eq!(
        ContactKeys::new([2; 32]).open(&sealed, &bound),
        Err(ContactError::WrongKey(1))
    );
    let mut altered = sealed.clone();
    altered.ciphertext = {
        let mut bytes = STANDARD.decode(&altered.ciphertext).expect("base64");
        bytes[0] ^= 1;
        STANDARD.encode(bytes)
    };
    assert_eq!(keys.open(&altered, &bound), Err(ContactError::WrongKey(1)));
    let mut rekeyed = sealed.clone();
    rekeyed.key_id = 2;
    assert_eq!(keys.open(&rekeyed, &bound), Err(ContactError::WrongKey(2)));
    assert_ne!(
        keys.seal(&contact(), &bound).nonce,
        sealed.nonce,
        "a fresh nonce each time"
    );
}

#[test]
fn addresses_are_shown_masked_and_never_in_debug_output() {
    let masked = contact().masked();
    assert_eq!(masked.email.as_deref(), Some("c***@example.com"));
    assert_eq!(masked.phone.as_deref(), Some("+31*******78"));
    assert_eq!(masked.app_url.as_deref(), Some("https://app.example.com/…"));
    let debug = format!("{:?}", contact());
    assert!(
        !debug.contains("chris@") && !debug.contains("612345678"),
        "{debug}"
    );
}

#[test]
fn bad_addresses_and_channels_without_one_are_refused() {
    use NotifyChannel::{Email, Push, Sms, Webhook};
    assert_eq!(contact().check(&[Email, Sms, Push, Webhook]), Ok(()));
    let with = |f: fn(&mut Contact)| {
        let mut c = contact();
        f(&mut c);
        c.check(&[Email, Sms, Push])
    };
    type Case = (&'static str, fn(&mut Contact));
    let cases: [Case; 14] = [
        ("no @", |c| c.email = Some("chris.example.com".into())),
        ("no domain dot", |c| {
            c.email = Some("chris@localhost".into())
        }),
        ("space", |c| c.email = Some("chris doe@example.com".into())),
        ("header injection", |c| {
            c.email = Some("a@example.com\r\nBcc: x@y.z".into())
        }),
        ("too long", |c| {
            c.email = Some(format!("{}@example.com", "a".repeat(250)))
        }),
        ("no plus", |c| c.phone = Some("31612345678".into())),
        ("letters", |c| c.phone = Some("+3161234567a".into())),
        ("too short", |c| c.phone = Some("+316123".into())),
        ("leading zero", |c| c.phone = Some("+0612345678".into())),
        ("plain http", |c| {
            c.app_url = Some("http://app.example.com/h".into())
        }),
        ("not a url", |c| c.app_url = Some("app.example.com".into())),
        ("other scheme", |c| {
            c.app_url = Some("ftp://app.example.com/h".into())
        }),
        ("no phone for sms", |c| c.phone = None),
        ("no url for push", |c| c.app_url = None),
    ];
    for (what, change) in cases {
        assert!(with(change).is_err(), "{what} accepted");
    }
    let local = Contact {
        app_url: Some("http://127.0.0.1:9000/hook".into()),
        ..Contact::default()
    };
    assert_eq!(local.check(&[Webhook]), Ok(()), "plain http on loopback");
}
