//! The code keys of the stations an edge node serves, kept out of the store file: a thief with
//! the store (its code hashes) does not get the keys with it. They live in a file of their own
//! beside it (`<store>.keys`, 0600, written whole or not at all), in memory while the store is
//! open; the writer changes them as the sync brings keys, before the batch that brings them
//! commits. A gateway's store holds none: it derives each station's key from its own code key.

use super::StoreError;
use super::index::station_key;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use lockergrid_files::{Mode, write_atomic};
use lockergrid_protocol::{StationCodeKey, StationId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The keys, by station: hex (as the sync carries them) and parsed.
type Keys = BTreeMap<StationId, (String, StationCodeKey)>;

/// The station keys of one store.
pub(crate) struct StationKeys {
    file: Option<(PathBuf, String)>,
    keys: RwLock<Keys>,
}

fn io(what: &str, path: &Path) -> impl Fn(std::io::Error) -> StoreError {
    let detail = format!("{what} {}", path.display());
    move |e| StoreError::Corrupt {
        table: "station keys",
        detail: format!("{detail}: {e}"),
    }
}

impl StationKeys {
    /// The keys of the store at `store` (none for a store without a file), read from its key
    /// file if there is one.
    pub(crate) fn load(store: Option<&Path>) -> Result<Arc<StationKeys>, StoreError> {
        let mut keys = Keys::new();
        let file = store.map(|store| {
            let dir = store.parent().unwrap_or(Path::new(".")).to_path_buf();
            let name = store.file_name().map_or_else(
                || "store.keys".to_owned(),
                |n| format!("{}.keys", Path::new(n).with_extension("").display()),
            );
            (dir, name)
        });
        if let Some((dir, name)) = &file {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let stored: BTreeMap<String, String> = serde_json::from_str(&text)
                        .map_err(|e| io("unreadable", &path)(std::io::Error::other(e)))?;
                    for (station, hex) in stored {
                        keys.insert(parse_station(&station)?, (hex.clone(), parse_key(&hex)?));
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("cannot read", &path)(e)),
            }
        }
        Ok(Arc::new(StationKeys {
            file,
            keys: RwLock::new(keys),
        }))
    }

    /// `station`'s key, hex, if this store holds it.
    pub(crate) fn hex(&self, station: &StationId) -> Option<String> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(station).map(|(hex, _)| hex.clone())
    }

    /// `station`'s key, if this store holds it.
    pub(crate) fn key(&self, station: &StationId) -> Option<StationCodeKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(station).map(|(_, key)| key.clone())
    }

    /// Changes the keys with `change` and writes the file if they changed.
    pub(crate) fn change(
        &self,
        change: impl FnOnce(&mut Keys) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        let before = keys.clone();
        change(&mut keys)?;
        if *keys == before {
            return Ok(());
        }
        let Some((dir, name)) = &self.file else {
            return Ok(());
        };
        let stored: BTreeMap<String, &str> = keys
            .iter()
            .map(|(station, (hex, _))| (station.to_string(), hex.as_str()))
            .collect();
        let text = serde_json::to_string_pretty(&stored).unwrap_or_default();
        let handle =
            Dir::open_ambient_dir(dir, ambient_authority()).map_err(io("cannot open", dir))?;
        write_atomic(&handle, name, text.as_bytes(), Mode::Private)
            .map_err(io("cannot write", &dir.join(name)))
    }
}

/// A key from the hex the sync carries.
pub(crate) fn parse_key(hex: &str) -> Result<StationCodeKey, StoreError> {
    station_key(hex).map_err(|detail| StoreError::Corrupt {
        table: "station keys",
        detail,
    })
}

fn parse_station(id: &str) -> Result<StationId, StoreError> {
    StationId::new(id).map_err(|e| StoreError::Corrupt {
        table: "station keys",
        detail: e.to_string(),
    })
}
