//! A simulated locker that behaves like the real thing: a door opens only after its latch was
//! released, the latch engages again when the door closes, the keypad reports a code when it is
//! confirmed, and every sensor reports what happened. A person or a test drives it through the
//! methods that are not part of [`Hardware`].

use crate::hardware::{Door, Hardware, HardwareError, Sensed};
use lockergrid_protocol::CompartmentId;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Notify;

/// Longest code the keypad buffers before it starts over.
const KEYPAD_BUFFER: usize = 16;

#[derive(Debug, Clone, Copy)]
struct Compartment {
    latched: bool,
    door: Door,
    temperature_c: f32,
}

/// A simulated locker.
#[derive(Debug)]
pub struct SimLocker {
    compartments: BTreeMap<CompartmentId, Compartment>,
    keypad: String,
    tamper: bool,
    mains: bool,
    battery_percent: u8,
    jammed: Option<CompartmentId>,
    sensed: Sensors,
    wear: Wear,
    /// What the firmware it booted breaks.
    fault: Option<Fault>,
    /// How long the firmware it booted takes to start.
    start_time: std::time::Duration,
}

/// What the sensors noticed and not yet drained, with the signal the controller waits on: a
/// real controller's sensors interrupt it, they are not polled.
#[derive(Debug, Default)]
struct Sensors {
    events: Vec<Sensed>,
    changed: Arc<Notify>,
}

impl Sensors {
    fn push(&mut self, sensed: Sensed) {
        self.events.push(sensed);
        self.changed.notify_one();
    }

    fn take(&mut self) -> Vec<Sensed> {
        std::mem::take(&mut self.events)
    }
}

/// What a simulated firmware image breaks, declared by a line `lockergrid-sim-fault: <fault>`
/// in the image, so a test can release a bad version and watch it fail on the locker. (A line
/// `lockergrid-sim-start-ms: <ms>` makes an image take that long to start.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `self-test`: its latch driver does not answer the self-test.
    SelfTest,
    /// `crash`: it does not start at all (the controller resets at every boot).
    Crash,
}

impl Fault {
    /// The line that declares it.
    pub fn line(self) -> &'static str {
        match self {
            Fault::SelfTest => "lockergrid-sim-fault: self-test",
            Fault::Crash => "lockergrid-sim-fault: crash",
        }
    }

    fn of(image: &[u8]) -> Option<Fault> {
        let text = String::from_utf8_lossy(image);
        text.lines().find_map(|line| match line.trim() {
            "lockergrid-sim-fault: self-test" => Some(Fault::SelfTest),
            "lockergrid-sim-fault: crash" => Some(Fault::Crash),
            _ => None,
        })
    }
}

/// How the simulated hardware wears out as it ages ([`SimLocker::age`]): a battery that holds
/// less charge each day, a compartment whose cooling loses its grip, a door sensor that starts
/// to flap, a latch that fails more often, unlocks that get slower.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wear {
    /// Points of battery capacity lost a day.
    pub battery_per_day: f64,
    /// °C a day each drifting compartment's temperature moves.
    pub drift_per_day: BTreeMap<CompartmentId, f64>,
    /// Capacity lost so far, in points.
    lost: f64,
    /// Door movements a day each flapping sensor reports with nobody there.
    pub flaps_per_day: BTreeMap<CompartmentId, f64>,
    /// The fraction of a movement carried to the next day of ageing.
    flap_carry: BTreeMap<CompartmentId, f64>,
    /// How much each weakening latch's chance of failing an unlock grows a day.
    pub weaken_per_day: BTreeMap<CompartmentId, f64>,
    /// Each weakening latch's chance of failing an unlock now.
    fail_chance: BTreeMap<CompartmentId, f64>,
    /// Milliseconds a day every unlock gets slower (a tired motor, a slow link).
    pub latency_per_day: f64,
    /// How much slower unlocks are now, milliseconds.
    latency_ms: f64,
    /// xorshift state for the latch's failures: the same wear fails the same unlocks.
    rng: u64,
}

/// Why a simulated person could not do something.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The hardware refused.
    #[error(transparent)]
    Hardware(#[from] HardwareError),
    /// The door is latched; pulling does not open it.
    #[error("the door of {0:?} is locked")]
    Locked(String),
    /// The door is already in that position.
    #[error("the door of {0:?} is already {1}")]
    Already(String, &'static str),
    /// Not a keypad key.
    #[error("{0:?} is not a key on the keypad (0-9, * clears, # confirms)")]
    NoSuchKey(char),
}

impl SimLocker {
    /// A locker with these compartments, all shut and latched, at 20 °C, on mains power.
    pub fn new(compartments: impl IntoIterator<Item = CompartmentId>) -> SimLocker {
        SimLocker {
            compartments: compartments
                .into_iter()
                .map(|id| {
                    (
                        id,
                        Compartment {
                            latched: true,
                            door: Door::Closed,
                            temperature_c: 20.0,
                        },
                    )
                })
                .collect(),
            keypad: String::new(),
            tamper: false,
            mains: true,
            battery_percent: 100,
            jammed: None,
            sensed: Sensors::default(),
            wear: Wear::default(),
            fault: None,
            start_time: std::time::Duration::ZERO,
        }
    }

    /// From now on the battery loses `per_day` points of capacity a day of [`SimLocker::age`].
    pub fn wear_battery(&mut self, per_day: f64) {
        self.wear.battery_per_day = per_day.max(0.0);
    }

    /// From now on `id`'s temperature moves `per_day` °C a day of [`SimLocker::age`].
    pub fn drift_temperature(&mut self, id: &CompartmentId, per_day: f64) -> Result<(), SimError> {
        self.get(id)?;
        self.wear.drift_per_day.insert(id.clone(), per_day);
        Ok(())
    }

    /// From now on `id`'s door sensor reports `per_day` movements a day of [`SimLocker::age`]
    /// with nobody there (the door itself stays shut).
    pub fn flap(&mut self, id: &CompartmentId, per_day: f64) -> Result<(), SimError> {
        self.get(id)?;
        self.wear.flaps_per_day.insert(id.clone(), per_day.max(0.0));
        Ok(())
    }

    /// From now on `id`'s latch's chance of failing an unlock grows by `per_day` a day of
    /// [`SimLocker::age`].
    pub fn weaken(&mut self, id: &CompartmentId, per_day: f64) -> Result<(), SimError> {
        self.get(id)?;
        self.wear
            .weaken_per_day
            .insert(id.clone(), per_day.max(0.0));
        Ok(())
    }

    /// From now on every unlock gets `per_day` milliseconds slower a day of [`SimLocker::age`].
    pub fn slow_down(&mut self, per_day: f64) {
        self.wear.latency_per_day = per_day.max(0.0);
    }

    /// Ages the hardware by `days`: the battery's capacity (what a full charge reaches) falls,
    /// drifting compartments move, flapping sensors report movements, weakening latches and
    /// slowing unlocks get worse, as the wear set says; the sensors report it.
    pub fn age(&mut self, days: f64) {
        for (id, per_day) in self.wear.weaken_per_day.clone() {
            let chance = self.wear.fail_chance.entry(id).or_default();
            *chance = (*chance + per_day * days).min(1.0);
        }
        self.wear.latency_ms += self.wear.latency_per_day * days;
        for (id, per_day) in self.wear.flaps_per_day.clone() {
            let carry = self.wear.flap_carry.entry(id.clone()).or_default();
            *carry += per_day * days;
            let whole = carry.floor();
            *carry -= whole;
            for _ in 0..whole as u64 {
                self.sensed.push(Sensed::DoorOpened(id.clone()));
                self.sensed.push(Sensed::DoorClosed(id.clone()));
            }
        }
        self.wear.lost = (self.wear.lost + self.wear.battery_per_day * days).min(100.0);
        let capacity = (100.0 - self.wear.lost).round() as u8;
        self.battery_percent = self.battery_percent.min(capacity);
        let drifts: Vec<(CompartmentId, f64)> = self
            .wear
            .drift_per_day
            .iter()
            .map(|(c, d)| (c.clone(), *d))
            .collect();
        for (id, per_day) in drifts {
            if let Some(c) = self.compartments.get_mut(&id) {
                c.temperature_c += (per_day * days) as f32;
                self.sensed.push(Sensed::Temperature(id, c.temperature_c));
            }
        }
    }

    fn get(&mut self, id: &CompartmentId) -> Result<&mut Compartment, HardwareError> {
        self.compartments
            .get_mut(id)
            .ok_or_else(|| HardwareError::NoSuchCompartment(id.to_string()))
    }

    /// A person pulls the door: it opens only if the latch is released.
    pub fn open_door(&mut self, id: &CompartmentId) -> Result<(), SimError> {
        let c = self.get(id)?;
        match (c.door, c.latched) {
            (Door::Open, _) => Err(SimError::Already(id.to_string(), "open")),
            (Door::Closed, true) => Err(SimError::Locked(id.to_string())),
            (Door::Closed, false) => {
                c.door = Door::Open;
                self.sensed.push(Sensed::DoorOpened(id.clone()));
                Ok(())
            }
        }
    }

    /// A person pushes the door shut; the latch engages.
    pub fn close_door(&mut self, id: &CompartmentId) -> Result<(), SimError> {
        let c = self.get(id)?;
        if c.door == Door::Closed {
            return Err(SimError::Already(id.to_string(), "closed"));
        }
        c.door = Door::Closed;
        c.latched = true;
        self.sensed.push(Sensed::DoorClosed(id.clone()));
        Ok(())
    }

    /// A person presses keys: digits buffer, `*` clears, `#` confirms the code.
    pub fn press(&mut self, keys: &str) -> Result<(), SimError> {
        for key in keys.chars() {
            match key {
                '0'..='9' => {
                    if self.keypad.len() == KEYPAD_BUFFER {
                        self.keypad.clear();
                    }
                    self.keypad.push(key);
                }
                '*' => self.keypad.clear(),
                '#' => {
                    let code = std::mem::take(&mut self.keypad);
                    self.sensed.push(Sensed::CodeEntered(code));
                }
                other => return Err(SimError::NoSuchKey(other)),
            }
        }
        Ok(())
    }

    /// A QR code is held to the reader.
    pub fn show_qr(&mut self, text: &str) {
        self.sensed.push(Sensed::QrRead(text.to_owned()));
    }

    /// The tamper switch trips or resets.
    pub fn set_tamper(&mut self, tripped: bool) {
        if self.tamper != tripped {
            self.tamper = tripped;
            self.sensed.push(Sensed::Tamper(tripped));
        }
    }

    /// A compartment's temperature changes.
    pub fn set_temperature(&mut self, id: &CompartmentId, celsius: f32) -> Result<(), SimError> {
        self.get(id)?.temperature_c = celsius;
        self.sensed.push(Sensed::Temperature(id.clone(), celsius));
        Ok(())
    }

    /// Mains power comes or goes; on battery the charge drops.
    pub fn set_mains(&mut self, on: bool) {
        if self.mains != on {
            self.mains = on;
            if !on {
                self.battery_percent = self.battery_percent.saturating_sub(1);
            }
            self.sensed.push(Sensed::MainsPower(on));
        }
    }

    /// The battery's charge is now `percent` (up to what its worn capacity holds): the next
    /// heartbeat reports it.
    pub fn set_battery(&mut self, percent: u8) {
        let capacity = (100.0 - self.wear.lost).round() as u8;
        self.battery_percent = percent.min(capacity);
    }

    /// Compartments whose latch is released while the door is still shut: a person may open them.
    pub fn unlatched(&self) -> Vec<CompartmentId> {
        self.compartments
            .iter()
            .filter(|(_, c)| !c.latched && c.door == Door::Closed)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Makes a compartment's latch fail to release, as a jammed one does.
    pub fn jam(&mut self, id: &CompartmentId) {
        self.jammed = Some(id.clone());
    }
}

impl Hardware for SimLocker {
    fn compartments(&self) -> Vec<CompartmentId> {
        self.compartments.keys().cloned().collect()
    }

    fn unlock(&mut self, id: &CompartmentId) -> Result<(), HardwareError> {
        if self.jammed.as_ref() == Some(id) {
            return Err(HardwareError::LatchFailed(id.to_string()));
        }
        if self.wear.latency_ms >= 1.0 {
            // The motor takes this long; the controller waits for it, as a real one does.
            std::thread::sleep(std::time::Duration::from_millis(
                self.wear.latency_ms as u64,
            ));
        }
        if let Some(chance) = self.wear.fail_chance.get(id).copied().filter(|c| *c > 0.0) {
            self.wear.rng = if self.wear.rng == 0 {
                0x9e37_79b9_7f4a_7c15
            } else {
                self.wear.rng
            };
            self.wear.rng ^= self.wear.rng << 13;
            self.wear.rng ^= self.wear.rng >> 7;
            self.wear.rng ^= self.wear.rng << 17;
            if ((self.wear.rng >> 11) as f64 / (1u64 << 53) as f64) < chance {
                return Err(HardwareError::LatchFailed(id.to_string()));
            }
        }
        self.get(id)?.latched = false;
        Ok(())
    }

    fn door(&self, id: &CompartmentId) -> Result<Door, HardwareError> {
        self.compartments
            .get(id)
            .map(|c| c.door)
            .ok_or_else(|| HardwareError::NoSuchCompartment(id.to_string()))
    }

    fn battery_percent(&self) -> u8 {
        self.battery_percent
    }

    fn changed(&self) -> Option<Arc<Notify>> {
        Some(self.sensed.changed.clone())
    }

    fn drain(&mut self) -> Vec<Sensed> {
        self.sensed.take()
    }

    fn start_time(&self) -> std::time::Duration {
        self.start_time
    }

    fn self_test(&mut self) -> Vec<String> {
        if self.fault == Some(Fault::SelfTest) {
            return vec!["the latch driver did not answer".into()];
        }
        self.jammed
            .iter()
            .map(|id| format!("latch of {:?} did not answer", id.as_str()))
            .collect()
    }

    fn booted(&mut self, image: Option<&[u8]>) -> Result<(), String> {
        self.fault = image.and_then(Fault::of);
        // `lockergrid-sim-start-ms: <ms>`: the image takes that long to start.
        self.start_time = image
            .map(String::from_utf8_lossy)
            .and_then(|text| {
                text.lines().find_map(|line| {
                    line.trim()
                        .strip_prefix("lockergrid-sim-start-ms:")
                        .and_then(|ms| ms.trim().parse().ok())
                })
            })
            .map_or(std::time::Duration::ZERO, std::time::Duration::from_millis);
        match self.fault {
            Some(Fault::Crash) => Err("the image declares a crash at boot".into()),
            _ => Ok(()),
        }
    }
}
