//! The locker's two firmware slots (A and B) and its boot record (docs/protocol.md "Firmware").
//!
//! An offered image is checked (signature by a trusted firmware key, hardware model, the
//! anti-rollback counter, the oldest version it may replace) before a byte of it is kept; its
//! bytes are staged apart and checked again (length, SHA-256) before they become the inactive
//! slot. The switch is one atomic write of the boot record naming the new slot on trial with
//! [`BOOT_ATTEMPTS`] boots. Each boot on trial spends one attempt before it runs; a trial whose
//! attempts are spent, whose image no longer matches its digest, or whose health check fails
//! goes back to the confirmed slot. The anti-rollback counter is raised only when an image is
//! confirmed. Every step is one durable write, so a power cut at any point leaves a record that
//! boots a slot that works: the confirmed one, or the trial with an attempt fewer.

use crate::state::write_atomic;
use cap_std::fs::{Dir, DirBuilder, OpenOptions, OpenOptionsExt};
use lockergrid_protocol::firmware::{
    FirmwareManifest, FirmwarePublicKey, FirmwareRefusal, FirmwareVersion, SignedManifest,
    sha256_hex,
};
use lockergrid_protocol::message::FirmwareOutcome;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom, Write};

/// The directory under the state directory that holds the slots.
const DIR: &str = "firmware";
/// The boot record.
const BOOT_FILE: &str = "boot.json";
/// The manifest of the image being received.
const STAGED_MANIFEST: &str = "staged.json";
/// Its bytes so far.
const STAGED_IMAGE: &str = "staged.img";
/// Boots a new image gets to pass its health check before the locker gives up on it.
pub const BOOT_ATTEMPTS: u8 = 3;

/// Reason code: the trial image was booted [`BOOT_ATTEMPTS`] times without passing its health
/// check.
pub const BOOT_ATTEMPTS_USED: &str = "boot-attempts-used";
/// Reason code: the trial image booted but its health check failed or ran out of time.
pub const HEALTH_CHECK_FAILED: &str = "health-check-failed";
/// Reason code: a slot's bytes no longer match the digest they were installed with.
pub const IMAGE_CORRUPT: &str = "image-corrupt";
/// Reason code: an update is on trial; another waits until it is decided.
pub const UPDATE_IN_PROGRESS: &str = "update-in-progress";
/// Reason code: a chunk for an image that is not the one being received.
pub const NOT_STAGED: &str = "not-staged";

/// One of the two slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// Slot A (the factory image's).
    A,
    /// Slot B.
    B,
}

impl Slot {
    /// The other slot.
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }

    fn file(self) -> &'static str {
        match self {
            Slot::A => "slot-a.img",
            Slot::B => "slot-b.img",
        }
    }
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    /// Its version.
    pub version: FirmwareVersion,
    /// Its SHA-256 and size; none for the factory image, which is the controller's own build
    /// and has no file.
    pub digest: Option<(String, u64)>,
    /// Its anti-rollback counter.
    pub counter: u32,
}

/// A slot booting on trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trial {
    /// Which.
    pub slot: Slot,
    /// Boots it has left.
    pub attempts_left: u8,
}

/// A step of an update the node has not heard of yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The image's version.
    pub version: FirmwareVersion,
    /// Its SHA-256.
    pub sha256: String,
    /// What became of it.
    pub outcome: FirmwareOutcome,
    /// The reason code of a roll-back.
    pub reason: Option<String>,
}

/// The boot record: which slot is confirmed, which (if any) is on trial, what each holds, the
/// anti-rollback counter, and the reports still to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootRecord {
    /// The slot that last passed its health check (or the factory one).
    pub confirmed: Slot,
    /// Slot A's image.
    pub a: Option<Image>,
    /// Slot B's image.
    pub b: Option<Image>,
    /// The slot booting on trial.
    pub trial: Option<Trial>,
    /// The anti-rollback counter: no image below it installs.
    pub counter: u32,
    /// Steps the node has not heard of.
    pub reports: Vec<Report>,
}

impl BootRecord {
    fn image(&self, slot: Slot) -> Option<&Image> {
        match slot {
            Slot::A => self.a.as_ref(),
            Slot::B => self.b.as_ref(),
        }
    }

    fn set(&mut self, slot: Slot, image: Option<Image>) {
        match slot {
            Slot::A => self.a = image,
            Slot::B => self.b = image,
        }
    }
}

/// What the locker booted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booted {
    /// The slot.
    pub slot: Slot,
    /// Its image.
    pub image: Image,
    /// On trial: it must pass its health check.
    pub on_trial: bool,
}

/// The answer to an offered image: where to continue receiving it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Send the bytes from this offset (0 for a new image; further for one partly received).
    From(u64),
    /// It is what the locker runs already.
    Running,
}

/// What a chunk left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// More is needed, from this offset (a chunk at another offset is ignored and this said).
    From(u64),
    /// All bytes are in: [`Slots::install`] next.
    Complete,
}

/// Why an update step did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    /// The image is refused; nothing was written to a slot.
    #[error("{code}: {detail}")]
    Refused {
        /// The reason code.
        code: &'static str,
        /// For people.
        detail: String,
    },
    /// The slots' disk failed.
    #[error("firmware slots: {0}")]
    Disk(#[from] std::io::Error),
}

impl From<FirmwareRefusal> for SlotError {
    fn from(refusal: FirmwareRefusal) -> SlotError {
        SlotError::Refused {
            code: refusal.code(),
            detail: refusal.to_string(),
        }
    }
}

/// The two slots, the boot record and the image being received.
pub struct Slots {
    dir: Dir,
    record: BootRecord,
    staged: Option<SignedManifest>,
    model: String,
    trusted: Vec<FirmwarePublicKey>,
    /// Tests: durable writes left before the process "dies" (every later one fails).
    #[cfg(test)]
    writes_left: std::cell::Cell<Option<usize>>,
}

impl Slots {
    /// Opens the slots under `state` for a controller of `model` whose factory image is
    /// `factory`, trusting manifests signed by `trusted`; finishes a switch a power cut
    /// interrupted.
    pub fn open(
        state: &Dir,
        model: &str,
        factory: FirmwareVersion,
        trusted: Vec<FirmwarePublicKey>,
    ) -> Result<Slots, SlotError> {
        if !state.exists(DIR) {
            let mut builder = DirBuilder::new();
            cap_std::fs::DirBuilderExt::mode(&mut builder, 0o700);
            state.create_dir_with(DIR, &builder)?;
        }
        let dir = state.open_dir(DIR)?;
        let record = match dir.read(BOOT_FILE) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{BOOT_FILE}: {e}"))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BootRecord {
                confirmed: Slot::A,
                a: Some(Image {
                    version: factory,
                    digest: None,
                    counter: 0,
                }),
                b: None,
                trial: None,
                counter: 0,
                reports: Vec::new(),
            },
            Err(e) => return Err(e.into()),
        };
        let staged = match dir.read(STAGED_MANIFEST) {
            Ok(bytes) => serde_json::from_slice(&bytes).ok(),
            Err(_) => None,
        };
        let mut slots = Slots {
            dir,
            record,
            staged,
            model: model.to_owned(),
            trusted,
            #[cfg(test)]
            writes_left: std::cell::Cell::new(None),
        };
        slots.recover()?;
        Ok(slots)
    }

    /// A staged manifest whose bytes are gone was moved into the inactive slot just before a
    /// power cut: the switch is finished if the slot holds them, else the staging is dropped.
    fn recover(&mut self) -> Result<(), SlotError> {
        let Some(staged) = self.staged.clone() else {
            return Ok(());
        };
        if self.dir.exists(STAGED_IMAGE) {
            return Ok(());
        }
        let slot = self.record.confirmed.other();
        if self.record.trial.is_none()
            && self
                .read(slot.file())
                .is_some_and(|bytes| staged.manifest.matches(&bytes).is_ok())
        {
            self.switch(slot, &staged.manifest)?;
        } else {
            self.drop_staging()?;
        }
        Ok(())
    }

    /// The boot record as it stands.
    pub fn record(&self) -> &BootRecord {
        &self.record
    }

    /// The version the confirmed slot holds.
    pub fn confirmed_version(&self) -> FirmwareVersion {
        self.record
            .image(self.record.confirmed)
            .map_or(FirmwareVersion(0, 0, 0), |i| i.version)
    }

    /// The bytes of `slot`'s image (none for the factory image).
    pub fn image_bytes(&self, slot: Slot) -> Option<Vec<u8>> {
        self.record.image(slot)?.digest.as_ref()?;
        self.read(slot.file())
    }

    fn read(&self, name: &str) -> Option<Vec<u8>> {
        self.dir.read(name).ok()
    }

    /// Before each durable write: in tests, where a kill may stop the process.
    fn durable(&self) -> Result<(), SlotError> {
        #[cfg(test)]
        if let Some(left) = self.writes_left.get() {
            if left == 0 {
                return Err(SlotError::Disk(std::io::Error::other("killed")));
            }
            self.writes_left.set(Some(left - 1));
        }
        Ok(())
    }

    fn save(&self) -> Result<(), SlotError> {
        self.durable()?;
        let json = serde_json::to_vec_pretty(&self.record).unwrap_or_default();
        write_atomic(&self.dir, BOOT_FILE, &json)?;
        Ok(())
    }

    /// Whether `slot` holds an image whose bytes match what it was installed with.
    fn intact(&self, slot: Slot) -> bool {
        match self.record.image(slot) {
            None => false,
            Some(Image { digest: None, .. }) => true,
            Some(Image {
                digest: Some((sha256, size)),
                ..
            }) => self
                .read(slot.file())
                .is_some_and(|bytes| bytes.len() as u64 == *size && sha256_hex(&bytes) == *sha256),
        }
    }

    /// Decides what boots, spending one attempt of a trial first (durably, before it runs).
    pub fn boot(&mut self) -> Result<Booted, SlotError> {
        if let Some(trial) = self.record.trial {
            if trial.attempts_left == 0 {
                self.abandon_trial(BOOT_ATTEMPTS_USED)?;
            } else if !self.intact(trial.slot) {
                self.abandon_trial(IMAGE_CORRUPT)?;
            } else {
                self.record.trial = Some(Trial {
                    attempts_left: trial.attempts_left - 1,
                    ..trial
                });
                self.save()?;
                return Ok(self.booted(trial.slot, true));
            }
        }
        let confirmed = self.record.confirmed;
        if !self.intact(confirmed) && self.intact(confirmed.other()) {
            // The confirmed image rotted: the other slot still boots (it ran before).
            tracing::error!(slot = ?confirmed, "the confirmed slot does not match its digest; booting the other");
            self.record.confirmed = confirmed.other();
            self.save()?;
        }
        Ok(self.booted(self.record.confirmed, false))
    }

    fn booted(&self, slot: Slot, on_trial: bool) -> Booted {
        let image = self.record.image(slot).cloned().unwrap_or(Image {
            version: FirmwareVersion(0, 0, 0),
            digest: None,
            counter: 0,
        });
        Booted {
            slot,
            image,
            on_trial,
        }
    }

    fn report_of(&self, slot: Slot, outcome: FirmwareOutcome, reason: Option<&str>) -> Report {
        let image = self.record.image(slot);
        Report {
            version: image.map_or(FirmwareVersion(0, 0, 0), |i| i.version),
            sha256: image
                .and_then(|i| i.digest.as_ref())
                .map(|(sha, _)| sha.clone())
                .unwrap_or_default(),
            outcome,
            reason: reason.map(str::to_owned),
        }
    }

    fn abandon_trial(&mut self, reason: &str) -> Result<(), SlotError> {
        let Some(trial) = self.record.trial.take() else {
            return Ok(());
        };
        tracing::warn!(slot = ?trial.slot, reason, "firmware trial failed; back to the confirmed slot");
        let report = self.report_of(trial.slot, FirmwareOutcome::RolledBack, Some(reason));
        self.record.reports.push(report);
        self.save()
    }

    /// The trial running now passed its health check: its slot is confirmed and the
    /// anti-rollback counter raised to its image's.
    pub fn confirm(&mut self) -> Result<(), SlotError> {
        let Some(trial) = self.record.trial.take() else {
            return Ok(());
        };
        self.record.confirmed = trial.slot;
        if let Some(image) = self.record.image(trial.slot) {
            self.record.counter = self.record.counter.max(image.counter);
        }
        let report = self.report_of(trial.slot, FirmwareOutcome::Confirmed, None);
        self.record.reports.push(report);
        self.save()
    }

    /// The trial running now failed its health check: the next boot is the confirmed slot's.
    pub fn fail_trial(&mut self) -> Result<(), SlotError> {
        self.abandon_trial(HEALTH_CHECK_FAILED)
    }

    /// The reports the node has not heard of yet, oldest first.
    pub fn reports(&self) -> &[Report] {
        &self.record.reports
    }

    /// The first `n` reports are in the durable event queue now.
    pub fn reported(&mut self, n: usize) -> Result<(), SlotError> {
        if n == 0 {
            return Ok(());
        }
        self.record
            .reports
            .drain(..n.min(self.record.reports.len()));
        self.save()
    }

    /// An image is offered: checked against the trusted keys, this model, the anti-rollback
    /// counter and the version running before anything of it is kept. An image partly received
    /// before continues where it stopped.
    pub fn offer(
        &mut self,
        signed: &SignedManifest,
        running: FirmwareVersion,
    ) -> Result<Offered, SlotError> {
        let manifest = signed.verify(&self.trusted)?;
        // The confirmed image, or the one on trial, is this one.
        let in_use = [
            Some(self.record.confirmed),
            self.record.trial.map(|t| t.slot),
        ];
        if in_use
            .into_iter()
            .flatten()
            .filter_map(|slot| self.record.image(slot)?.digest.as_ref())
            .any(|(sha, _)| *sha == manifest.sha256)
        {
            return Ok(Offered::Running);
        }
        if self.record.trial.is_some() {
            return Err(SlotError::Refused {
                code: UPDATE_IN_PROGRESS,
                detail: "an update is on trial".into(),
            });
        }
        manifest.admits(&self.model, running, self.record.counter)?;
        if let Some(staged) = &self.staged
            && staged.manifest == *manifest
            && self.dir.exists(STAGED_IMAGE)
        {
            return Ok(Offered::From(self.dir.metadata(STAGED_IMAGE)?.len()));
        }
        let json = serde_json::to_vec(signed).unwrap_or_default();
        self.durable()?;
        write_atomic(&self.dir, STAGED_MANIFEST, &json)?;
        self.create_staged_image()?;
        self.staged = Some(signed.clone());
        Ok(Offered::From(0))
    }

    fn create_staged_image(&self) -> Result<(), SlotError> {
        self.durable()?;
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true).mode(0o600);
        self.dir.open_with(STAGED_IMAGE, &options)?.sync_all()?;
        self.dir.open(".")?.sync_all()?;
        Ok(())
    }

    /// The image being received, if any.
    pub fn staged(&self) -> Option<&SignedManifest> {
        self.staged.as_ref()
    }

    /// Bytes of the staged image at `offset`, appended and synced when they continue what is
    /// there; anything else is ignored and the offset wanted said.
    pub fn receive(
        &mut self,
        sha256: &str,
        offset: u64,
        data: &[u8],
    ) -> Result<Received, SlotError> {
        let Some(staged) = &self.staged else {
            return Err(SlotError::Refused {
                code: NOT_STAGED,
                detail: format!("no image {sha256} is being received"),
            });
        };
        if staged.manifest.sha256 != sha256 {
            return Err(SlotError::Refused {
                code: NOT_STAGED,
                detail: format!("image {sha256} is not the one being received"),
            });
        }
        let size = staged.manifest.size;
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        let mut file = self.dir.open_with(STAGED_IMAGE, &options)?;
        let have = file.seek(SeekFrom::End(0))?;
        if offset != have || data.is_empty() {
            return Ok(if have == size {
                Received::Complete
            } else {
                Received::From(have)
            });
        }
        if have + data.len() as u64 > size {
            drop(file);
            let got = have + data.len() as u64;
            self.drop_staging()?;
            return Err(FirmwareRefusal::SizeMismatch { got, want: size }.into());
        }
        self.durable()?;
        file.write_all(data)?;
        file.sync_data()?;
        let have = have + data.len() as u64;
        Ok(if have == size {
            Received::Complete
        } else {
            Received::From(have)
        })
    }

    /// The staged image is complete: its length and digest are checked, then it becomes the
    /// inactive slot and the boot record names that slot on trial. What the caller does next
    /// is reboot. A staged image that does not match is dropped.
    pub fn install(&mut self) -> Result<(), SlotError> {
        let Some(staged) = self.staged.clone() else {
            return Err(SlotError::Refused {
                code: NOT_STAGED,
                detail: "nothing is staged".into(),
            });
        };
        let mut bytes = Vec::new();
        self.dir.open(STAGED_IMAGE)?.read_to_end(&mut bytes)?;
        if let Err(refusal) = staged.manifest.matches(&bytes) {
            self.drop_staging()?;
            return Err(refusal.into());
        }
        let slot = self.record.confirmed.other();
        // The inactive slot's old image stops being bootable before its bytes change.
        if self.record.image(slot).is_some() {
            self.record.set(slot, None);
            self.save()?;
        }
        self.durable()?;
        self.dir.rename(STAGED_IMAGE, &self.dir, slot.file())?;
        self.dir.open(".")?.sync_all()?;
        self.switch(slot, &staged.manifest)
    }

    /// Names `slot`, which holds `manifest`'s image, on trial, and forgets the staging.
    fn switch(&mut self, slot: Slot, manifest: &FirmwareManifest) -> Result<(), SlotError> {
        self.record.set(
            slot,
            Some(Image {
                version: manifest.version,
                digest: Some((manifest.sha256.clone(), manifest.size)),
                counter: manifest.counter,
            }),
        );
        self.record.trial = Some(Trial {
            slot,
            attempts_left: BOOT_ATTEMPTS,
        });
        let report = self.report_of(slot, FirmwareOutcome::Installed, None);
        self.record.reports.push(report);
        self.save()?;
        self.drop_staging()
    }

    /// Forgets the image being received (an abort, or bytes that did not match).
    pub fn drop_staging(&mut self) -> Result<(), SlotError> {
        self.staged = None;
        for name in [STAGED_IMAGE, STAGED_MANIFEST] {
            self.durable()?;
            match self.dir.remove_file(name) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.dir.open(".")?.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
