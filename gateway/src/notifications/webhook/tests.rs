use super::*;

fn secret(byte: u8) -> String {
    format!("whsec_{}", STANDARD.encode([byte; 32]))
}

#[test]
fn a_signature_header_holds_one_signature_per_secret_so_either_verifies() {
    let both = Secrets::parse(&format!("{}\n# the old one\n{}\n", secret(1), secret(2)))
        .expect("two secrets");
    let header = both.signature("msg_1", 1_796_083_200, b"{}");
    assert_eq!(header.split(' ').count(), 2, "{header}");
    for alone in [secret(1), secret(2)] {
        let receiver = Secrets::parse(&alone).expect("one secret");
        assert!(receiver.verify("msg_1", 1_796_083_200, b"{}", &header));
        assert!(
            !receiver.verify("msg_2", 1_796_083_200, b"{}", &header),
            "another id"
        );
        assert!(
            !receiver.verify("msg_1", 1_796_083_201, b"{}", &header),
            "another time"
        );
        assert!(
            !receiver.verify("msg_1", 1_796_083_200, b"{ }", &header),
            "another body"
        );
    }
    let stranger = Secrets::parse(&secret(3)).expect("one secret");
    assert!(!stranger.verify("msg_1", 1_796_083_200, b"{}", &header));
}

#[test]
fn a_signature_is_the_standard_webhooks_hmac_of_id_timestamp_and_body() {
    // The test vector the specification's reference library signs and verifies against.
    let secrets = Secrets::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").expect("the vector");
    let body = br#"{"email":"test@example.com","username":"test_user"}"#;
    assert_eq!(
        secrets.signature("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1_649_367_553, body),
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
    );
}

#[test]
fn bad_secret_files_are_refused() {
    for text in ["", "# nothing\n", "secret\n", "whsec_!!!\n", "whsec_AAAA\n"] {
        assert!(Secrets::parse(text).is_err(), "{text:?}");
    }
}

#[test]
fn retry_answers_are_transient_and_others_final() {
    for code in [408, 429, 500, 502, 503] {
        let status = StatusCode::from_u16(code).expect("status");
        assert!(
            matches!(http_status(status, None), SendError::Transient { .. }),
            "{code}"
        );
    }
    for code in [400, 401, 403, 404, 409, 422] {
        let status = StatusCode::from_u16(code).expect("status");
        assert!(
            matches!(http_status(status, None), SendError::Permanent(_)),
            "{code}"
        );
    }
}
