//! The simulated locker behaves like the real one.

use lockergrid_firmware_shim::hardware::{Door, Hardware, HardwareError, Sensed};
use lockergrid_firmware_shim::sim::{SimError, SimLocker};
use lockergrid_protocol::CompartmentId;

fn c(n: u32) -> CompartmentId {
    CompartmentId::new(format!("st-a:S{n:03}")).expect("valid")
}

#[test]
fn a_door_opens_only_after_its_latch_is_released_and_relatches_when_closed() {
    let mut locker = SimLocker::new([c(1), c(2)]);
    assert_eq!(
        locker.open_door(&c(1)),
        Err(SimError::Locked(c(1).to_string()))
    );
    locker.unlock(&c(1)).expect("unlocks");
    locker.open_door(&c(1)).expect("opens");
    assert_eq!(locker.door(&c(1)), Ok(Door::Open));
    assert_eq!(
        locker.door(&c(2)),
        Ok(Door::Closed),
        "the neighbour stays shut"
    );
    locker.close_door(&c(1)).expect("closes");
    assert_eq!(
        locker.open_door(&c(1)),
        Err(SimError::Locked(c(1).to_string())),
        "closing engaged the latch again"
    );
    assert_eq!(
        locker.drain(),
        [Sensed::DoorOpened(c(1)), Sensed::DoorClosed(c(1))]
    );
    assert!(locker.drain().is_empty(), "events are reported once");
}

#[test]
fn the_keypad_reports_a_code_when_confirmed_and_star_clears() {
    let mut locker = SimLocker::new([c(1)]);
    locker.press("999*1234").expect("keys");
    locker.press("5678#").expect("keys");
    assert_eq!(locker.drain(), [Sensed::CodeEntered("12345678".into())]);
    assert_eq!(locker.press("12a"), Err(SimError::NoSuchKey('a')));
}

#[test]
fn sensors_report_tamper_temperature_and_power() {
    let mut locker = SimLocker::new([c(1)]);
    locker.set_tamper(true);
    locker.set_tamper(true);
    locker
        .set_temperature(&c(1), 9.5)
        .expect("known compartment");
    locker.set_mains(false);
    assert_eq!(
        locker.drain(),
        [
            Sensed::Tamper(true),
            Sensed::Temperature(c(1), 9.5),
            Sensed::MainsPower(false)
        ]
    );
    assert!(locker.battery_percent() < 100);
}

#[test]
fn a_jammed_latch_and_an_unknown_compartment_are_errors_not_silent() {
    let mut locker = SimLocker::new([c(1)]);
    locker.jam(&c(1));
    assert_eq!(
        locker.unlock(&c(1)),
        Err(HardwareError::LatchFailed(c(1).to_string()))
    );
    assert_eq!(
        locker.unlock(&c(9)),
        Err(HardwareError::NoSuchCompartment(c(9).to_string()))
    );
    assert_eq!(locker.compartments(), [c(1)]);
}
