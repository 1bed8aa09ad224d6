//! Firmware bytes on their way to lockers (docs/protocol.md "Firmware"): a locker wired to the
//! gateway asks on `lockers/{id}/firmware` and is answered on its commands topic; an edge node
//! asks for what its cache lacks and serves its own lockers from the cache. Offers and
//! cancellations of rollouts go out the way commands do.

use super::lockers::{LockerTask, direct};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lockergrid_model::{EdgeDownlink, FirmwareBytes, SYNC_VERSION};
use lockergrid_protocol::message::{
    FIRMWARE_CHUNK, FirmwareDownlink, FirmwareRequest, MESSAGE_VERSION,
};
use lockergrid_protocol::topic::{Channel, Root, Topic};
use lockergrid_protocol::{LockerId, StationId};

/// The most an edge node gets in one answer: its cache fills in few round trips, and the
/// downlink stays far below the edge node's packet limit.
const EDGE_CHUNK: u32 = 1024 * 1024;

impl LockerTask {
    /// A locker wired to the gateway asks for bytes of an image it was offered.
    pub(super) fn firmware_request(&mut self, station: &StationId, payload: &[u8]) {
        let request = match serde_json::from_slice::<FirmwareRequest>(payload) {
            Ok(request) if request.v == MESSAGE_VERSION => request,
            Ok(other) => {
                tracing::warn!(%station, version = other.v, "firmware request of an unknown version");
                return;
            }
            Err(e) => {
                tracing::warn!(%station, error = %e, "unreadable firmware request");
                return;
            }
        };
        let len = request.len.min(FIRMWARE_CHUNK);
        let bytes = match self.firmware.read(&request.sha256, request.offset, len) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => {
                tracing::warn!(%station, sha256 = %request.sha256, "a locker asked for an image the gateway does not hold");
                return;
            }
            Err(e) => {
                tracing::error!(%station, error = %e, "firmware image unreadable");
                return;
            }
        };
        self.devices()
            .metrics()
            .firmware_bytes_sent
            .inc_by(bytes.len() as u64);
        let chunk = FirmwareDownlink::Chunk {
            sha256: request.sha256,
            offset: request.offset,
            data: STANDARD.encode(&bytes),
        };
        let Ok(locker) = LockerId::new(station.as_str()) else {
            return;
        };
        match direct(&locker, None, Vec::new(), Some(chunk)) {
            Ok((topic, json)) => {
                if let Err(e) = self.link.tx.publish(topic, json) {
                    tracing::warn!(%station, error = %e, "firmware chunk not sent; the locker asks again");
                }
            }
            Err(e) => tracing::error!(error = %e, "firmware chunk not encoded"),
        }
    }

    /// Edge node `edge` asks for bytes of an image for its cache.
    pub(super) fn edge_firmware_request(
        &mut self,
        edge: &str,
        sha256: &str,
        offset: u64,
        len: u32,
    ) {
        let data = match self.firmware.read(sha256, offset, len.min(EDGE_CHUNK)) {
            Ok(bytes) => bytes.map(|b| {
                self.devices()
                    .metrics()
                    .firmware_bytes_sent
                    .inc_by(b.len() as u64);
                STANDARD.encode(&b)
            }),
            Err(e) => {
                tracing::error!(edge, error = %e, "firmware image unreadable");
                return;
            }
        };
        let downlink = EdgeDownlink {
            v: SYNC_VERSION,
            decisions_applied: None,
            sync: Vec::new(),
            lockers: Vec::new(),
            firmware: Some(FirmwareBytes {
                sha256: sha256.to_owned(),
                offset,
                data,
            }),
        };
        let topic = Topic {
            root: Root::Edge,
            id: edge,
            channel: Channel::Commands,
        };
        match serde_json::to_vec(&downlink) {
            Ok(json) => {
                if let Err(e) = self.link.tx.publish(topic.to_string(), json) {
                    tracing::warn!(edge, error = %e, "firmware bytes not sent; the edge node asks again");
                }
            }
            Err(e) => tracing::error!(error = %e, "firmware bytes not encoded"),
        }
    }

    /// Sends a rollout's offer or cancellation to `station`'s locker.
    pub(super) fn send_firmware(&mut self, station: &StationId, firmware: FirmwareDownlink) {
        match self.route(station, None, Vec::new(), Some(firmware)) {
            Ok((topic, json)) => {
                if let Err(e) = self.link.tx.publish(topic, json) {
                    tracing::warn!(%station, error = %e, "firmware offer not sent; the rollout offers again");
                }
            }
            Err(e) => tracing::error!(%station, error = %e, "firmware offer not routed"),
        }
    }
}
