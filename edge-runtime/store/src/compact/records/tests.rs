use super::*;
use lockergrid_model::{NotifyChannel, NotifyRecipient};

fn reservation(merchant: Option<&str>) -> Reservation {
    Reservation {
        id: ReservationId::new("rsv_0190c2a4f1e87a3b9c4d5e6f70819203").expect("valid"),
        merchant: merchant.map(str::to_owned),
        order_id: OrderId::new("o-1234").expect("valid"),
        parcel_id: ParcelId::new("pcl_0190c2a4f1e87a3b9c4d5e6f70819204").expect("valid"),
        station_id: StationId::new("ams-centraal").expect("valid"),
        compartment_id: CompartmentId::new("ams-centraal:S001").expect("valid"),
        size: Size::Oversized,
        tier: Tier::Business,
        created_at: Timestamp(1_764_000_000_000),
        hold_until: Timestamp(1_764_003_600_000),
        status: ReservationStatus::Completed,
    }
}

fn parcel(full: bool) -> Parcel {
    let r = reservation(full.then_some("shop"));
    Parcel {
        id: r.parcel_id.clone(),
        reservation_id: r.id.clone(),
        merchant: r.merchant.clone(),
        order_id: r.order_id.clone(),
        station_id: r.station_id.clone(),
        compartment_id: r.compartment_id.clone(),
        spec: ParcelSpec {
            length_mm: 200,
            width_mm: 150,
            height_mm: 100,
            weight_g: u32::MAX,
        },
        tier: Tier::Prime,
        status: ParcelStatus::Cancelled,
        reserved_at: Timestamp(1),
        stored_at: full.then_some(Timestamp(2)),
        pickup_expires_at: full.then_some(Timestamp(3)),
        picked_up_at: None,
        expired_at: full.then_some(Timestamp(4_102_444_800_000)),
        collected_at: None,
        cancelled_at: Some(Timestamp(6)),
        code_hash: full.then(|| "ab".repeat(32)),
        recipient: full.then(|| NotifyRecipient {
            id: "cust-1".into(),
            channels: vec![NotifyChannel::Email],
            quiet_hours: Some((1320, 420)),
            contact: None,
        }),
        code_message: full.then(|| "msg-7".into()),
    }
}

fn entry(decided: bool, hash: &str) -> AccessEntry {
    AccessEntry {
        seq: 300,
        at: Timestamp(1_764_000_000_123),
        actor: Actor {
            subject: "checkout-web".into(),
            role: "checkout".into(),
        },
        action: "reserve".into(),
        target: "rsv_1".into(),
        outcome: "ok".into(),
        decided_by: decided.then(|| DecidedBy {
            world: "reservation-policy".into(),
            plugin: "nearest".into(),
            version: "1.2.0".into(),
            digest: String::new(),
            fallback: Some("out of fuel".into()),
        }),
        prev_hash: "0".repeat(64),
        hash: hash.into(),
    }
}

fn idempotency(answer: bool) -> IdempotencyRecord {
    IdempotencyRecord {
        fingerprint: "f".repeat(64),
        answer: answer.then(|| reservation(Some("shop"))),
        return_id: (!answer).then(|| ReturnId::new("ret_1").expect("valid")),
        message_id: (!answer).then(|| "msg-2".into()),
        created_at: Timestamp(9),
    }
}

/// Encodes, decodes, and checks that the value comes back, that its form is smaller than its
/// JSON, and that every truncation and a trailing byte are refused.
fn round_trip<V, C>(value: &V)
where
    V: PartialEq + std::fmt::Debug + serde::Serialize,
    C: Codec<V>,
{
    let bytes = C::encode(value).expect("encodes");
    assert_eq!(C::decode(&bytes).as_ref(), Ok(value));
    let json = serde_json::to_vec(value).expect("json");
    assert!(
        bytes.len() < json.len(),
        "{} vs {} bytes",
        bytes.len(),
        json.len()
    );
    for cut in 0..bytes.len() {
        assert!(C::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut trailing = bytes;
    trailing.push(0);
    assert!(C::decode(&trailing).is_err());
}

#[test]
fn every_record_round_trips_smaller_than_its_json_and_refuses_truncation() {
    for merchant in [None, Some("shop")] {
        round_trip::<_, ReservationCodec>(&reservation(merchant));
    }
    for full in [false, true] {
        round_trip::<_, ParcelCodec>(&parcel(full));
    }
    let canonical = lockergrid_protocol::to_hex(&[7; 32]);
    let upper = "AB".repeat(32);
    for (decided, hash) in [
        (false, canonical.as_str()),
        (true, "not hex"),
        (false, &upper),
    ] {
        round_trip::<_, AccessEntryCodec>(&entry(decided, hash));
    }
    for answer in [false, true] {
        round_trip::<_, IdempotencyCodec>(&idempotency(answer));
    }
}

#[test]
fn records_stored_as_json_before_the_compact_form_still_decode() {
    let r = reservation(Some("shop"));
    let json = serde_json::to_vec(&r).expect("json");
    assert_eq!(ReservationCodec::decode(&json), Ok(r));
    let p = parcel(true);
    let json = serde_json::to_vec(&p).expect("json");
    assert_eq!(ParcelCodec::decode(&json), Ok(p));
    let e = entry(true, &"1".repeat(64));
    let json = serde_json::to_vec(&e).expect("json");
    assert_eq!(AccessEntryCodec::decode(&json), Ok(e));
    let k = idempotency(true);
    let json = serde_json::to_vec(&k).expect("json");
    assert_eq!(IdempotencyCodec::decode(&json), Ok(k));
}

#[test]
fn every_enum_value_keeps_its_stored_code() {
    // Stored bytes: a renumbered code would misread every record already on disk.
    assert_eq!(Size::ALL.map(size_code), [0, 1, 2, 3]);
    assert_eq!(
        [Tier::Standard, Tier::Prime, Tier::Business].map(tier_code),
        [0, 1, 2]
    );
    let reservation_statuses = [
        ReservationStatus::Held,
        ReservationStatus::Deposited,
        ReservationStatus::Released,
        ReservationStatus::Expired,
        ReservationStatus::Completed,
    ];
    assert_eq!(
        reservation_statuses.map(reservation_status_code),
        [0, 1, 2, 3, 4]
    );
    let parcel_statuses = [
        ParcelStatus::Reserved,
        ParcelStatus::Stored,
        ParcelStatus::PickedUp,
        ParcelStatus::Expired,
        ParcelStatus::ReturnedToSender,
        ParcelStatus::Cancelled,
    ];
    assert_eq!(parcel_statuses.map(parcel_status_code), [0, 1, 2, 3, 4, 5]);
    for (code, status) in parcel_statuses.into_iter().enumerate() {
        assert_eq!(parcel_status_of(code as u8), Ok(status));
    }
    for (code, status) in reservation_statuses.into_iter().enumerate() {
        assert_eq!(reservation_status_of(code as u8), Ok(status));
    }
    assert!(tier_of(3).is_err() && parcel_status_of(6).is_err() && size_of(4).is_err());
    assert!(reservation_status_of(5).is_err());
}

#[test]
fn bad_enum_codes_formats_and_form_bytes_are_refused() {
    let mut bytes = ReservationCodec::encode(&reservation(None)).expect("encodes");
    let last = bytes.len() - 1;
    bytes[last] = 9;
    assert!(ReservationCodec::decode(&bytes).is_err());
    bytes[0] = 2;
    assert!(ReservationCodec::decode(&bytes).is_err());
    let mut bytes = AccessEntryCodec::encode(&entry(false, &"0".repeat(64))).expect("encodes");
    let hash_form = bytes.len() - 33;
    bytes[hash_form] = 5;
    assert!(AccessEntryCodec::decode(&bytes).is_err());
    let mut overlong = vec![FORMAT];
    overlong.extend_from_slice(&[0xff; 10]);
    assert!(AccessEntryCodec::decode(&overlong).is_err());
}
