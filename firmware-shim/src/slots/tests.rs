use super::*;
use cap_std::ambient_authority;
use lockergrid_protocol::firmware::FirmwareKey;

const MODEL: &str = "lockergrid-sim-1";
const FACTORY: FirmwareVersion = FirmwareVersion(0, 1, 0);

fn key(seed: u8) -> FirmwareKey {
    FirmwareKey::from_secret([seed; 32])
}

/// An image of `len` bytes whose manifest `signer` signed.
fn image(
    signer: &FirmwareKey,
    version: FirmwareVersion,
    counter: u32,
    len: usize,
) -> (Vec<u8>, SignedManifest) {
    let bytes: Vec<u8> = (0..len)
        .map(|i| (i * 7 + usize::from(counter as u8)) as u8)
        .collect();
    let manifest = FirmwareManifest::of(&bytes, version, MODEL.into(), FACTORY, counter);
    (bytes, manifest.sign(signer))
}

struct Disk {
    _tmp: tempfile::TempDir,
    dir: Dir,
}

fn disk() -> Disk {
    let tmp = tempfile::tempdir().unwrap();
    let dir = Dir::open_ambient_dir(tmp.path(), ambient_authority()).unwrap();
    Disk { _tmp: tmp, dir }
}

fn open(disk: &Disk) -> Slots {
    Slots::open(&disk.dir, MODEL, FACTORY, vec![key(1).public()]).unwrap()
}

fn code(result: Result<impl std::fmt::Debug, SlotError>) -> &'static str {
    match result {
        Err(SlotError::Refused { code, .. }) => code,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Sends every byte in chunks of `chunk` from where the locker asks.
fn deliver(
    slots: &mut Slots,
    signed: &SignedManifest,
    bytes: &[u8],
    chunk: usize,
) -> Result<(), SlotError> {
    let mut at = match slots.offer(signed, slots.confirmed_version())? {
        Offered::From(at) => at,
        Offered::Running => return Ok(()),
    };
    let sha = &signed.manifest.sha256;
    while (at as usize) < bytes.len() {
        let end = (at as usize + chunk).min(bytes.len());
        match slots.receive(sha, at, &bytes[at as usize..end])? {
            Received::From(next) => at = next,
            Received::Complete => break,
        }
    }
    slots.install()
}

fn outcomes(slots: &Slots) -> Vec<(FirmwareOutcome, Option<String>)> {
    slots
        .reports()
        .iter()
        .map(|r| (r.outcome, r.reason.clone()))
        .collect()
}

#[test]
fn an_image_installs_on_trial_and_its_counter_counts_once_confirmed() {
    let disk = disk();
    let mut slots = open(&disk);
    assert_eq!(slots.boot().unwrap().image.version, FACTORY);
    let (bytes, signed) = image(&key(1), FirmwareVersion(0, 2, 0), 5, 10_000);
    deliver(&mut slots, &signed, &bytes, 4096).unwrap();
    assert_eq!(
        slots.record().counter,
        0,
        "not raised before the image is confirmed"
    );
    let booted = slots.boot().unwrap();
    assert_eq!((booted.slot, booted.on_trial), (Slot::B, true));
    assert_eq!(booted.image.version, FirmwareVersion(0, 2, 0));
    assert_eq!(slots.image_bytes(Slot::B).unwrap(), bytes);
    assert_eq!(
        slots.record().trial.unwrap().attempts_left,
        BOOT_ATTEMPTS - 1
    );
    slots.confirm().unwrap();
    assert_eq!(slots.record().counter, 5);
    assert_eq!(slots.record().confirmed, Slot::B);
    assert_eq!(
        outcomes(&slots),
        [
            (FirmwareOutcome::Installed, None),
            (FirmwareOutcome::Confirmed, None)
        ]
    );
    slots.reported(2).unwrap();
    let reopened = open(&disk);
    assert!(reopened.reports().is_empty());
    assert_eq!(reopened.confirmed_version(), FirmwareVersion(0, 2, 0));
    // Offered again, the image it runs needs nothing.
    let mut reopened = reopened;
    assert_eq!(
        reopened.offer(&signed, FirmwareVersion(0, 2, 0)).unwrap(),
        Offered::Running
    );
}

#[test]
fn a_tampered_image_a_wrong_key_another_model_and_a_downgrade_are_refused_before_a_slot_is_written()
{
    let disk = disk();
    let mut slots = open(&disk);
    slots.boot().unwrap();
    let before = slots.record().clone();
    // Tampered bytes: the digest does not match at the end, nothing reaches slot B.
    let (mut bytes, signed) = image(&key(1), FirmwareVersion(0, 2, 0), 1, 5000);
    bytes[4000] ^= 0x55;
    assert_eq!(
        code(deliver(&mut slots, &signed, &bytes, 1024)),
        "digest-mismatch"
    );
    // A manifest changed after signing.
    let (bytes, mut forged) = image(&key(1), FirmwareVersion(0, 2, 0), 1, 5000);
    forged.manifest.counter = 9;
    assert_eq!(
        code(deliver(&mut slots, &forged, &bytes, 1024)),
        "signature-refused"
    );
    // Signed by a key this locker does not trust (the plugin or command key, say).
    let (bytes, foreign) = image(&key(2), FirmwareVersion(0, 2, 0), 1, 5000);
    assert_eq!(
        code(deliver(&mut slots, &foreign, &bytes, 1024)),
        "untrusted-key"
    );
    // Another model.
    let bytes = vec![1u8; 100];
    let other = FirmwareManifest::of(
        &bytes,
        FirmwareVersion(0, 2, 0),
        "other-7".into(),
        FACTORY,
        1,
    )
    .sign(&key(1));
    assert_eq!(
        code(deliver(&mut slots, &other, &bytes, 1024)),
        "wrong-model"
    );
    // A longer image than the manifest says is dropped at the first byte past its end.
    let (bytes, signed) = image(&key(1), FirmwareVersion(0, 2, 0), 1, 100);
    slots.offer(&signed, FACTORY).unwrap();
    let long = [bytes.as_slice(), &[0u8; 10]].concat();
    assert_eq!(
        code(slots.receive(&signed.manifest.sha256, 0, &long)),
        "size-mismatch"
    );
    assert!(slots.staged().is_none());
    assert_eq!(*slots.record(), before, "nothing was installed");
    assert!(slots.image_bytes(Slot::B).is_none());
    // Install counter 7, then an image with counter 6 and a higher version is a downgrade.
    let (bytes, signed) = image(&key(1), FirmwareVersion(0, 3, 0), 7, 100);
    deliver(&mut slots, &signed, &bytes, 64).unwrap();
    slots.boot().unwrap();
    slots.confirm().unwrap();
    let (bytes, older) = image(&key(1), FirmwareVersion(9, 0, 0), 6, 100);
    assert_eq!(code(deliver(&mut slots, &older, &bytes, 64)), "downgrade");
}

#[test]
fn a_trial_that_never_passes_its_health_check_goes_back_by_itself() {
    let disk = disk();
    let mut slots = open(&disk);
    slots.boot().unwrap();
    let (bytes, signed) = image(&key(1), FirmwareVersion(0, 2, 0), 3, 3000);
    deliver(&mut slots, &signed, &bytes, 1000).unwrap();
    for attempt in 0..BOOT_ATTEMPTS {
        // Each boot dies before its health check: the shim restarts from its disk.
        let mut slots = open(&disk);
        let booted = slots.boot().unwrap();
        assert!(booted.on_trial, "attempt {attempt}");
    }
    let mut slots = open(&disk);
    let booted = slots.boot().unwrap();
    assert_eq!((booted.slot, booted.on_trial), (Slot::A, false));
    assert_eq!(booted.image.version, FACTORY);
    assert_eq!(slots.record().counter, 0);
    assert_eq!(
        outcomes(&slots).last().unwrap(),
        &(FirmwareOutcome::RolledBack, Some(BOOT_ATTEMPTS_USED.into()))
    );
    // A failed health check goes back at once.
    let (bytes, signed) = image(&key(1), FirmwareVersion(0, 2, 1), 3, 3000);
    deliver(&mut slots, &signed, &bytes, 1000).unwrap();
    assert!(slots.boot().unwrap().on_trial);
    slots.fail_trial().unwrap();
    assert_eq!(slots.boot().unwrap().slot, Slot::A);
    assert_eq!(
        outcomes(&slots).last().unwrap(),
        &(
            FirmwareOutcome::RolledBack,
            Some(HEALTH_CHECK_FAILED.into())
        )
    );
    // A trial image that rots on disk is not booted.
    let (bytes, signed) = image(&key(1), FirmwareVersion(0, 2, 2), 3, 3000);
    deliver(&mut slots, &signed, &bytes, 1000).unwrap();
    disk.dir.write("firmware/slot-b.img", b"garbage").unwrap();
    assert_eq!(slots.boot().unwrap().slot, Slot::A);
    assert_eq!(
        outcomes(&slots).last().unwrap(),
        &(FirmwareOutcome::RolledBack, Some(IMAGE_CORRUPT.into()))
    );
}

#[test]
fn a_download_continues_where_it_stopped() {
    let disk = disk();
    let mut slots = open(&disk);
    let (bytes, signed) = image(&key(1), FirmwareVersion(0, 2, 0), 1, 10_000);
    assert_eq!(slots.offer(&signed, FACTORY).unwrap(), Offered::From(0));
    let sha = signed.manifest.sha256.clone();
    assert_eq!(
        slots.receive(&sha, 0, &bytes[..4000]).unwrap(),
        Received::From(4000)
    );
    // A chunk at another offset (a resend, a reordering) is not written.
    assert_eq!(
        slots.receive(&sha, 1000, &bytes[1000..2000]).unwrap(),
        Received::From(4000)
    );
    drop(slots);
    let mut slots = open(&disk);
    assert_eq!(slots.offer(&signed, FACTORY).unwrap(), Offered::From(4000));
    assert_eq!(
        slots.receive(&sha, 4000, &bytes[4000..]).unwrap(),
        Received::Complete
    );
    slots.install().unwrap();
    assert_eq!(slots.image_bytes(Slot::B).unwrap(), bytes);
}

/// The whole update, one durable write at a time: killed after any number of writes, the
/// locker reopens on a slot that boots and matches its digest, and the update run again from
/// the node's offer ends on the new version.
#[test]
fn killed_at_every_step_of_an_update_it_comes_back_on_a_bootable_slot() {
    let (bytes, signed) = image(&key(1), FirmwareVersion(0, 2, 0), 4, 9000);
    let new = FirmwareVersion(0, 2, 0);
    let update = |slots: &mut Slots| -> Result<(), SlotError> {
        if slots.record().trial.is_none() && slots.confirmed_version() != new {
            deliver(slots, &signed, &bytes, 2048)?;
        }
        let booted = slots.boot()?;
        if booted.on_trial {
            slots.confirm()?;
        }
        Ok(())
    };
    let mut steps = 0;
    loop {
        let disk = disk();
        let mut slots = open(&disk);
        slots.boot().unwrap();
        slots.writes_left.set(Some(steps));
        let finished = update(&mut slots).is_ok();
        drop(slots);
        // Power comes back.
        let mut slots = open(&disk);
        let booted = slots.boot().unwrap();
        assert!(
            slots.intact(booted.slot),
            "step {steps}: booted a slot that does not match"
        );
        assert!(
            booted.image.version == FACTORY || booted.image.version == new,
            "step {steps}: booted {:?}",
            booted.image.version
        );
        if booted.on_trial {
            slots.confirm().unwrap();
        } else if booted.image.version != new {
            update(&mut slots).unwrap();
        }
        let mut slots = open(&disk);
        let booted = slots.boot().unwrap();
        assert_eq!(
            booted.image.version, new,
            "step {steps}: not updated in the end"
        );
        assert_eq!(slots.record().counter, 4, "step {steps}");
        if finished {
            break;
        }
        steps += 1;
    }
    assert!(steps > 10, "the update has {steps} durable writes");
}
