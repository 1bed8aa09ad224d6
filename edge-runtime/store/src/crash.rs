//! A storage image for crash tests. Writes land in a live image and are remembered until the next
//! `sync_data`, which makes them durable. [`CrashImage::crash`] returns what a disk could hold after
//! power is cut at that instant: everything synced, plus an arbitrary subset of the writes since the
//! last sync (a drive may have flushed some of them, in any order).

use redb::StorageBackend;
use std::io::{Error, ErrorKind};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
struct Images {
    live: Vec<u8>,
    synced: Vec<u8>,
    unsynced: Vec<(usize, Vec<u8>)>,
}

/// An in-memory disk that forgets unsynced writes when it "crashes"; clones share the disk.
#[derive(Debug, Clone, Default)]
pub struct CrashImage {
    images: Arc<Mutex<Images>>,
}

impl CrashImage {
    /// An empty disk.
    pub fn new() -> CrashImage {
        CrashImage::default()
    }

    fn lock(&self) -> MutexGuard<'_, Images> {
        self.images.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The disk as it could be found after a power cut now: the synced image plus the unsynced
    /// writes whose bit in `keep` (taken cyclically) is set.
    pub fn crash(&self, keep: u64) -> CrashImage {
        let images = self.lock();
        let mut disk = images.synced.clone();
        for (i, (offset, data)) in images.unsynced.iter().enumerate() {
            if keep >> (i % 64) & 1 == 1 {
                let end = offset + data.len();
                if disk.len() < end {
                    disk.resize(end, 0);
                }
                disk[*offset..end].copy_from_slice(data);
            }
        }
        CrashImage {
            images: Arc::new(Mutex::new(Images {
                live: disk.clone(),
                synced: disk,
                unsynced: Vec::new(),
            })),
        }
    }

    pub(super) fn backend(&self) -> Backend {
        Backend(self.clone())
    }
}

/// The redb view of a [`CrashImage`].
#[derive(Debug)]
pub(super) struct Backend(CrashImage);

fn out_of_range() -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "offset beyond the end of the image",
    )
}

impl StorageBackend for Backend {
    fn len(&self) -> Result<u64, Error> {
        Ok(self.0.lock().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), Error> {
        let images = self.0.lock();
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let source = images
            .live
            .get(start..start + out.len())
            .ok_or_else(out_of_range)?;
        out.copy_from_slice(source);
        Ok(())
    }

    fn set_len(&self, len: u64) -> Result<(), Error> {
        let len = usize::try_from(len).map_err(|_| out_of_range())?;
        self.0.lock().live.resize(len, 0);
        Ok(())
    }

    fn sync_data(&self) -> Result<(), Error> {
        let mut images = self.0.lock();
        images.synced = images.live.clone();
        images.unsynced.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), Error> {
        let mut images = self.0.lock();
        let start = usize::try_from(offset).map_err(|_| out_of_range())?;
        let target = images
            .live
            .get_mut(start..start + data.len())
            .ok_or_else(out_of_range)?;
        target.copy_from_slice(data);
        images.unsynced.push((start, data.to_vec()));
        Ok(())
    }
}
