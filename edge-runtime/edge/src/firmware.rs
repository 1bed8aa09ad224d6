//! The edge node's firmware cache (docs/protocol.md "Firmware"): its lockers fetch an image
//! from it, not across the uplink. What a locker asks for that the cache does not hold yet is
//! fetched from the gateway once, in large pieces, and kept under `<data_dir>/firmware-cache`
//! as `<sha256>.part` until it is whole and matches its digest, then as `<sha256>.img`. The
//! requests waiting for those bytes are answered as they arrive.

use super::task::EdgeTask;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions, OpenOptionsExt};
use lockergrid_model::{EdgeUplink, FirmwareBytes, SYNC_VERSION, UplinkBody};
use lockergrid_protocol::LockerId;
use lockergrid_protocol::firmware::sha256_hex;
use lockergrid_protocol::message::{
    FIRMWARE_CHUNK, FirmwareDownlink, FirmwareRequest, MESSAGE_VERSION,
};
use rumqttc::QoS;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// How much the edge node asks the gateway for at once.
const FETCH: u32 = 1024 * 1024;
/// How long a fetch may go unanswered before it is asked again.
const FETCH_AGAIN: Duration = Duration::from_secs(2);

/// The images an edge node holds for its lockers.
pub(super) struct FirmwareCache {
    dir: Option<Dir>,
    /// Requests of lockers waiting for bytes the cache does not hold yet.
    waiting: HashMap<String, Vec<(LockerId, u64, u32)>>,
    /// When each image's missing bytes were last asked for.
    asked: HashMap<String, Instant>,
}

fn valid_digest(sha256: &str) -> bool {
    sha256.len() == 64
        && sha256
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl FirmwareCache {
    /// Opens (creating it, owner only) the cache under `data_dir`; a cache that cannot be
    /// opened leaves the edge node fetching every request through.
    pub(super) fn open(data_dir: &Path) -> FirmwareCache {
        let path = data_dir.join("firmware-cache");
        let dir = lockergrid_files::private_dir(&path)
            .and_then(|()| Dir::open_ambient_dir(&path, ambient_authority()));
        let dir = match dir {
            Ok(dir) => Some(dir),
            Err(e) => {
                tracing::error!(error = %e, "firmware cache unusable");
                None
            }
        };
        FirmwareCache {
            dir,
            waiting: HashMap::new(),
            asked: HashMap::new(),
        }
    }

    /// Up to `len` bytes from `offset`, if the cache holds them (empty at the end of a whole
    /// image).
    fn read(&self, sha256: &str, offset: u64, len: u32) -> Option<Vec<u8>> {
        let dir = self.dir.as_ref()?;
        let (mut file, whole) = match dir.open(format!("{sha256}.img")) {
            Ok(file) => (file, true),
            Err(_) => (dir.open(format!("{sha256}.part")).ok()?, false),
        };
        let size = file.metadata().ok()?.len();
        if !whole && offset + u64::from(len) > size {
            return None;
        }
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(u64::from(len)).read_to_end(&mut bytes).ok()?;
        Some(bytes)
    }

    /// How many bytes of the image are cached.
    fn have(&self, sha256: &str) -> u64 {
        let Some(dir) = &self.dir else { return 0 };
        dir.metadata(format!("{sha256}.part"))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Bytes from the gateway: appended when they continue the cached part; an empty answer is
    /// the image's end, when the part must match its digest to be kept.
    fn store(&mut self, sha256: &str, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let part = format!("{sha256}.part");
        if dir.exists(format!("{sha256}.img")) {
            return Ok(());
        }
        if data.is_empty() {
            let bytes = dir.read(&part).unwrap_or_default();
            if sha256_hex(&bytes) == sha256 {
                dir.rename(&part, dir, format!("{sha256}.img"))?;
                tracing::info!(sha256, bytes = bytes.len(), "firmware image cached");
            } else {
                tracing::warn!(
                    sha256,
                    "cached firmware does not match its digest; fetched again"
                );
                dir.remove_file(&part)?;
            }
            return Ok(());
        }
        let mut options = OpenOptions::new();
        options.create(true).append(true).mode(0o600);
        let mut file = dir.open_with(&part, &options)?;
        if file.metadata()?.len() != offset {
            return Ok(());
        }
        file.write_all(data)?;
        file.sync_data()
    }
}

impl EdgeTask {
    /// A locker asks for bytes of an image: from the cache, or once the gateway has sent them.
    pub(super) fn firmware_request(&mut self, locker: LockerId, payload: &[u8]) {
        let request = match serde_json::from_slice::<FirmwareRequest>(payload) {
            Ok(request) if request.v == MESSAGE_VERSION && valid_digest(&request.sha256) => request,
            Ok(_) => {
                tracing::warn!(%locker, "firmware request of an unknown version or digest");
                return;
            }
            Err(e) => {
                tracing::warn!(%locker, error = %e, "unreadable firmware request");
                return;
            }
        };
        let len = request.len.min(FIRMWARE_CHUNK);
        if let Some(bytes) = self.firmware.read(&request.sha256, request.offset, len) {
            self.send_chunk(&locker, &request.sha256, request.offset, &bytes);
            return;
        }
        self.firmware
            .waiting
            .entry(request.sha256.clone())
            .or_default()
            .push((locker, request.offset, len));
        self.fetch(&request.sha256);
    }

    /// Asks the gateway for the bytes after the cached part, unless it was asked just now.
    fn fetch(&mut self, sha256: &str) {
        if !*self.connected.borrow() {
            return;
        }
        let now = Instant::now();
        if self
            .firmware
            .asked
            .get(sha256)
            .is_some_and(|at| now.duration_since(*at) < FETCH_AGAIN)
        {
            return;
        }
        self.firmware.asked.insert(sha256.to_owned(), now);
        let uplink = EdgeUplink {
            v: SYNC_VERSION,
            body: UplinkBody::FirmwareRequest {
                sha256: sha256.to_owned(),
                offset: self.firmware.have(sha256),
                len: FETCH,
            },
        };
        if let Ok(json) = serde_json::to_vec(&uplink)
            && let Err(e) = self.client.try_publish(
                self.topic(lockergrid_protocol::topic::Channel::Events),
                QoS::AtMostOnce,
                false,
                json,
            )
        {
            tracing::warn!(error = %e, "uplink busy; firmware fetched later");
        }
    }

    /// Bytes the gateway sent for the cache: kept, the waiting lockers answered, and more
    /// fetched while some still wait.
    pub(super) fn firmware_bytes(&mut self, bytes: FirmwareBytes) {
        if !valid_digest(&bytes.sha256) {
            return;
        }
        self.firmware.asked.remove(&bytes.sha256);
        let Some(data) = bytes.data else {
            tracing::warn!(sha256 = %bytes.sha256, "the gateway holds no such firmware image");
            self.firmware.waiting.remove(&bytes.sha256);
            return;
        };
        let Ok(data) = STANDARD.decode(data) else {
            tracing::warn!("firmware bytes not base64; ignored");
            return;
        };
        if let Err(e) = self.firmware.store(&bytes.sha256, bytes.offset, &data) {
            tracing::error!(error = %e, "firmware bytes not cached");
        }
        let waiting = self
            .firmware
            .waiting
            .remove(&bytes.sha256)
            .unwrap_or_default();
        let mut still = Vec::new();
        for (locker, offset, len) in waiting {
            match self.firmware.read(&bytes.sha256, offset, len) {
                Some(chunk) => self.send_chunk(&locker, &bytes.sha256, offset, &chunk),
                None => still.push((locker, offset, len)),
            }
        }
        if !still.is_empty() {
            self.firmware.waiting.insert(bytes.sha256.clone(), still);
            self.fetch(&bytes.sha256);
        }
    }

    fn send_chunk(&mut self, locker: &LockerId, sha256: &str, offset: u64, bytes: &[u8]) {
        let chunk = FirmwareDownlink::Chunk {
            sha256: sha256.to_owned(),
            offset,
            data: STANDARD.encode(bytes),
        };
        self.tell_locker(locker, None, Vec::new(), Some(chunk));
    }
}
