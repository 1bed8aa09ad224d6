use super::*;

#[test]
fn ids_accept_url_safe_names() {
    assert!(StationId::new("ams-centraal").is_ok());
    assert!(CompartmentId::new("ams-centraal:M012").is_ok());
}

#[test]
fn ids_refuse_empty_long_and_unsafe_names() {
    assert_eq!(StationId::new(""), Err(InvalidId::Empty));
    assert_eq!(StationId::new("a".repeat(65)), Err(InvalidId::TooLong(65)));
    assert_eq!(StationId::new("../etc"), Err(InvalidId::BadChar('/')));
    assert_eq!(StationId::new("a b"), Err(InvalidId::BadChar(' ')));
}

#[test]
fn ids_refuse_invalid_names_when_deserialized() {
    let err = serde_json::from_str::<StationId>("\"a/b\"");
    assert!(err.is_err());
}
