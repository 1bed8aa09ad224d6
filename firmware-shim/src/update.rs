//! A firmware update as the locker runs it (docs/protocol.md "Firmware"): an offer checked by
//! [`Slots::offer`], the image fetched in chunks from where the staged copy ends (so a broken
//! link or a restart resumes it), installed into the inactive slot only while no door stands
//! open and no unlock is outstanding, then a reboot into it on trial. A trial passes its
//! health check — self-test passed, connected to its node over TLS, a heartbeat sent — within
//! its window, or the locker goes back to the slot it ran before by itself. Each step is
//! reported as a firmware event through the durable queue.

use crate::agent::{Agent, AgentError};
use crate::hardware::{Door, Hardware};
use crate::slots::{Booted, Offered, Received, SlotError, Slots};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lockergrid_protocol::firmware::{FirmwareVersion, SignedManifest};
use lockergrid_protocol::message::{
    DeviceEvent, FIRMWARE_CHUNK, FirmwareDownlink, FirmwareOutcome, FirmwareRequest,
    MESSAGE_VERSION,
};
use lockergrid_protocol::topic::Channel;
use rumqttc::QoS;
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How long a chunk request may go unanswered before it is sent again.
const ASK_AGAIN: Duration = Duration::from_secs(2);

/// Aborts a task when dropped (the MQTT driver of a boot that ended).
pub(crate) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An image being fetched.
struct Job {
    manifest: SignedManifest,
    /// The next byte wanted.
    next: u64,
    /// All bytes are staged: it installs once the locker is idle.
    complete: bool,
    /// When the last request went out.
    asked: Option<Instant>,
}

/// The slots and what this boot is doing with them.
pub(crate) struct Update {
    slots: Slots,
    booted: Booted,
    /// The image this boot started cannot run (the simulation's crash at boot).
    crashed: Option<String>,
    self_test_passed: bool,
    /// When the health window of a trial closes.
    deadline: Option<Instant>,
    job: Option<Job>,
    /// Refusals reported this boot, by image, so a repeated offer is not reported again.
    refused: HashSet<String>,
    /// The trial failed: reboot into the confirmed slot.
    reboot: bool,
}

impl Update {
    /// What boot `booted` of `slots` does; `runs` is the hardware's word on whether the image
    /// started.
    pub(crate) fn new(slots: Slots, booted: Booted, runs: Result<(), String>) -> Update {
        let crashed = match runs {
            Ok(()) => None,
            // Only an image on trial can fail to start: a confirmed one passed its health check.
            Err(why) if booted.on_trial => Some(why),
            Err(why) => {
                tracing::error!(
                    why,
                    "the confirmed image reports a fault at boot; it runs on"
                );
                None
            }
        };
        Update {
            slots,
            booted,
            crashed,
            self_test_passed: true,
            deadline: None,
            job: None,
            refused: HashSet::new(),
            reboot: false,
        }
    }

    /// Whether the booted image failed to start.
    pub(crate) fn crashed(&self) -> bool {
        if let Some(why) = &self.crashed {
            tracing::error!(why, "the trial image failed at boot; resetting");
        }
        self.crashed.is_some()
    }

    /// The slots, for the next boot.
    pub(crate) fn into_slots(self) -> Slots {
        self.slots
    }

    /// The version this boot runs.
    pub(crate) fn version(&self) -> FirmwareVersion {
        self.booted.image.version
    }

    /// Whether the image this boot runs is on trial.
    pub(crate) fn on_trial(&self) -> bool {
        self.booted.on_trial
    }

    /// The power-on self-test's result.
    pub(crate) fn self_tested(&mut self, passed: bool) {
        self.self_test_passed = passed;
    }
}

impl<H: Hardware> Agent<H> {
    /// Queues the steps the node has not heard of (durably), then forgets them.
    pub(crate) fn report_updates(&mut self) -> Result<(), AgentError> {
        let reports = self.update.slots.reports().to_vec();
        for report in &reports {
            self.queue.push(
                self.now(),
                DeviceEvent::Firmware {
                    version: report.version,
                    sha256: report.sha256.clone(),
                    outcome: report.outcome,
                    reason: report.reason.clone(),
                    detail: None,
                },
            )?;
        }
        self.update.slots.reported(reports.len())?;
        self.status
            .send_modify(|s| s.queued_events = self.queue.len());
        self.send_due();
        Ok(())
    }

    /// Continues an image staged before the restart, and starts the health window of a trial.
    pub(crate) fn resume_update(&mut self) -> Result<(), AgentError> {
        if self.update.booted.on_trial {
            self.update.deadline = Some(Instant::now() + self.options.firmware.health_window);
        }
        if let Some(staged) = self.update.slots.staged().cloned() {
            self.offered(staged)?;
        }
        Ok(())
    }

    /// Reports a refusal of `manifest`'s image, once per boot.
    fn refuse(
        &mut self,
        manifest: &SignedManifest,
        code: &str,
        detail: String,
    ) -> Result<(), AgentError> {
        tracing::warn!(version = %manifest.manifest.version, code, detail, "firmware refused");
        if !self.update.refused.insert(manifest.manifest.sha256.clone()) {
            return Ok(());
        }
        self.queue.push(
            self.now(),
            DeviceEvent::Firmware {
                version: manifest.manifest.version,
                sha256: manifest.manifest.sha256.clone(),
                outcome: FirmwareOutcome::Refused,
                reason: Some(code.to_owned()),
                detail: Some(detail),
            },
        )?;
        self.status
            .send_modify(|s| s.queued_events = self.queue.len());
        self.send_due();
        Ok(())
    }

    /// What a refusal or a disk failure of a step means: the one reported, the other fatal.
    fn step_failed(&mut self, manifest: &SignedManifest, e: SlotError) -> Result<(), AgentError> {
        self.update.job = None;
        match e {
            SlotError::Refused { code, detail } => self.refuse(manifest, code, detail),
            disk => Err(disk.into()),
        }
    }

    fn offered(&mut self, manifest: SignedManifest) -> Result<(), AgentError> {
        if self
            .update
            .job
            .as_ref()
            .is_some_and(|j| j.manifest.manifest.sha256 == manifest.manifest.sha256)
        {
            return Ok(());
        }
        match self.update.slots.offer(&manifest, self.update.version()) {
            Ok(Offered::Running) => {}
            Ok(Offered::From(next)) => {
                tracing::info!(version = %manifest.manifest.version, from = next, "firmware offered; fetching");
                let complete = next == manifest.manifest.size;
                self.update.job = Some(Job {
                    manifest,
                    next,
                    complete,
                    asked: None,
                });
                self.request_firmware(true);
            }
            Err(e) => self.step_failed(&manifest, e)?,
        }
        Ok(())
    }

    /// What the node sent about firmware.
    pub(crate) fn firmware_downlink(
        &mut self,
        firmware: FirmwareDownlink,
    ) -> Result<(), AgentError> {
        match firmware {
            FirmwareDownlink::Offer { manifest } => self.offered(manifest),
            FirmwareDownlink::Chunk {
                sha256,
                offset,
                data,
            } => {
                let Some(job) = &self.update.job else {
                    return Ok(());
                };
                if job.manifest.manifest.sha256 != sha256 || job.complete {
                    return Ok(());
                }
                let manifest = job.manifest.clone();
                let Ok(bytes) = STANDARD.decode(data) else {
                    tracing::warn!("firmware chunk not base64; asked again");
                    return Ok(());
                };
                match self.update.slots.receive(&sha256, offset, &bytes) {
                    Ok(Received::From(next)) => {
                        if let Some(job) = &mut self.update.job {
                            job.next = next;
                        }
                        self.request_firmware(true);
                    }
                    Ok(Received::Complete) => {
                        if let Some(job) = &mut self.update.job {
                            job.next = job.manifest.manifest.size;
                            job.complete = true;
                        }
                        tracing::info!(version = %manifest.manifest.version, "firmware received; installs when idle");
                    }
                    Err(e) => self.step_failed(&manifest, e)?,
                }
                Ok(())
            }
            FirmwareDownlink::Cancel { sha256 } => {
                if self
                    .update
                    .job
                    .as_ref()
                    .is_some_and(|j| j.manifest.manifest.sha256 == sha256)
                {
                    tracing::info!(sha256, "firmware update cancelled by the node");
                    self.update.job = None;
                    self.update.slots.drop_staging()?;
                }
                Ok(())
            }
        }
    }

    /// Asks the node for the next bytes of the image being fetched: at once when `now`, else
    /// only when the last request went unanswered.
    pub(crate) fn request_firmware(&mut self, now: bool) {
        if !self.status.borrow().connected {
            return;
        }
        let Some(job) = &mut self.update.job else {
            return;
        };
        if job.complete || (!now && job.asked.is_some_and(|at| at.elapsed() < ASK_AGAIN)) {
            return;
        }
        job.asked = Some(Instant::now());
        let request = FirmwareRequest {
            v: MESSAGE_VERSION,
            sha256: job.manifest.manifest.sha256.clone(),
            offset: job.next,
            len: FIRMWARE_CHUNK,
        };
        if let Ok(json) = serde_json::to_vec(&request) {
            let topic = self.topic(Channel::Firmware);
            let _ = self.client.try_publish(topic, QoS::AtMostOnce, false, json);
        }
    }

    /// The health check of a trial, after a heartbeat (`sent`: it went out over the node's TLS
    /// connection): passed once the self-test passed and one did.
    pub(crate) fn health_check(&mut self, sent: bool) -> Result<(), AgentError> {
        if !self.update.booted.on_trial || self.update.reboot {
            return Ok(());
        }
        if sent && self.update.self_test_passed {
            self.update.slots.confirm()?;
            self.update.booted.on_trial = false;
            self.update.deadline = None;
            self.status.send_modify(|s| s.on_trial = false);
            tracing::info!(version = %self.update.version(), "firmware passed its health check; confirmed");
            self.report_updates()?;
        }
        Ok(())
    }

    /// Each tick: a failed or late trial goes back, a complete image installs once the locker
    /// is idle. `true` when this boot ends here (a reboot).
    pub(crate) fn update_step(&mut self) -> Result<bool, AgentError> {
        if self.update.booted.on_trial && !self.update.reboot {
            let late = self.update.deadline.is_some_and(|d| Instant::now() >= d);
            if !self.update.self_test_passed || late {
                tracing::warn!(
                    self_test_passed = self.update.self_test_passed,
                    late,
                    "firmware failed its health check"
                );
                self.update.slots.fail_trial()?;
                self.report_updates()?;
                self.update.reboot = true;
            }
        }
        if self.update.reboot {
            return Ok(true);
        }
        let ready = self.update.job.as_ref().is_some_and(|j| j.complete);
        if !ready || !self.idle() {
            return Ok(false);
        }
        let Some(job) = self.update.job.take() else {
            return Ok(false);
        };
        match self.update.slots.install() {
            Ok(()) => {
                tracing::info!(version = %job.manifest.manifest.version, "firmware installed; rebooting into it");
                self.report_updates()?;
                Ok(true)
            }
            Err(e) => {
                self.step_failed(&job.manifest, e)?;
                Ok(false)
            }
        }
    }

    /// No door stands open, no unlock waits for its door, and the node has heard every event
    /// (a code just typed waits for its unlock): nobody is using the locker.
    fn idle(&self) -> bool {
        if !self.unlocked.is_empty() || !self.queue.is_empty() {
            return false;
        }
        let hardware = self.hardware.lock().expect("hardware lock");
        hardware
            .compartments()
            .iter()
            .all(|c| hardware.door(c) != Ok(Door::Open))
    }
}
