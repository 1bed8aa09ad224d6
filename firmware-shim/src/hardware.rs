//! What the shim needs from a locker's hardware: latches, door sensors, a keypad or QR reader, a
//! tamper switch, thermometers and a battery. The real controller and the simulation
//! ([`crate::sim`]) both implement [`Hardware`]; the shim's logic never knows which it drives.

use lockergrid_protocol::CompartmentId;

/// Whether a door stands open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// Shut (the latch may be engaged or released).
    Closed,
    /// Open.
    Open,
}

/// Something the hardware noticed, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Sensed {
    /// A door opened.
    DoorOpened(CompartmentId),
    /// A door closed; its latch engaged again.
    DoorClosed(CompartmentId),
    /// A code was typed on the keypad and confirmed.
    CodeEntered(String),
    /// A QR code was read.
    QrRead(String),
    /// The tamper switch changed.
    Tamper(bool),
    /// A compartment's thermometer read this, °C.
    Temperature(CompartmentId, f32),
    /// Mains power came or went.
    MainsPower(bool),
}

/// Why the hardware did not do what it was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HardwareError {
    /// No such compartment in this locker.
    #[error("no compartment {0:?} in this locker")]
    NoSuchCompartment(String),
    /// The latch did not release (jammed, no power).
    #[error("the latch of {0:?} did not release")]
    LatchFailed(String),
}

/// A locker's hardware.
pub trait Hardware: Send {
    /// The compartments this locker has.
    fn compartments(&self) -> Vec<CompartmentId>;
    /// Releases a compartment's latch so its door can be opened; it engages again when the door
    /// closes.
    fn unlock(&mut self, compartment: &CompartmentId) -> Result<(), HardwareError>;
    /// Whether the door stands open.
    fn door(&self, compartment: &CompartmentId) -> Result<Door, HardwareError>;
    /// Battery charge, percent.
    fn battery_percent(&self) -> u8;
    /// What happened since the last call, oldest first.
    fn drain(&mut self) -> Vec<Sensed>;
    /// Signalled when there is something to drain (a sensor's interrupt), so the shim need not
    /// wait for its next poll; none: the shim polls only.
    fn changed(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
    /// Asks every latch and door sensor to answer without moving anything (a coil continuity
    /// check, a sensor read): what did not, for people. Empty when all answered.
    fn self_test(&mut self) -> Vec<String>;
    /// The controller booted this firmware image (none: the factory image). A real controller
    /// is running it by now; the simulation takes on the behaviour the image declares. An
    /// error says the image did not start (the controller resets).
    fn booted(&mut self, image: Option<&[u8]>) -> Result<(), String>;
    /// How long the image it booted takes to start before the shim runs (none on a real
    /// controller, where the shim starts once the image has; the simulation's images may say).
    fn start_time(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}
