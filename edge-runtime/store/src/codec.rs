//! How a table's values become bytes and back: JSON for every table but those a hold writes,
//! whose compact forms are in `compact.rs`.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// How a table's values become bytes and back.
pub trait Codec<V> {
    /// The stored form of `value`.
    fn encode(value: &V) -> Result<Vec<u8>, String>;
    /// The value of stored bytes, or why they are not one.
    fn decode(bytes: &[u8]) -> Result<V, String>;
}

/// Values as JSON.
pub struct Json;

impl<V: Serialize + DeserializeOwned> Codec<V> for Json {
    fn encode(value: &V) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }

    fn decode(bytes: &[u8]) -> Result<V, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}
