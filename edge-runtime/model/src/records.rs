//! The records the store keeps, one type per table. They are also the store's answers: the
//! gateway renders them as JSON.

use crate::{About, Delivery, DeliveryPlan, NotificationEvent, NotifyChannel, SealedSecret};
use lockergrid_protocol::{
    CompartmentId, CompartmentState, GeoPoint, OrderId, ParcelId, ParcelSpec, ParcelStatus,
    ReservationId, ReturnId, Size, StationId, Tier, Timestamp,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What kind of place a station is; ranking and site rules may treat kinds differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StationKind {
    /// City centre, shops and offices.
    Urban,
    /// Suburban shopping or car park.
    Suburban,
    /// Railway or bus station.
    TransitHub,
    /// Apartment block lobby.
    Residential,
}

/// Whether discovery may offer a station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StationStatus {
    /// Offered to checkout.
    Active,
    /// Known but not offered (decommissioned by the deployment).
    Inactive,
    /// Its locker missed its heartbeats; offered again when it reports.
    Offline,
    /// Taken out of service (a tamper alarm); an operator puts it back.
    OutOfService,
}

impl StationStatus {
    /// The status as the API and the access log name it.
    pub const fn as_str(self) -> &'static str {
        match self {
            StationStatus::Active => "active",
            StationStatus::Inactive => "inactive",
            StationStatus::Offline => "offline",
            StationStatus::OutOfService => "out_of_service",
        }
    }
}

/// A station as deployed: where it is and how many compartments of each size it has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationRecord {
    /// Its id.
    pub id: StationId,
    /// A human name.
    pub name: String,
    /// The kind of site.
    pub kind: StationKind,
    /// Where it stands.
    pub location: GeoPoint,
    /// Whether discovery offers it.
    pub status: StationStatus,
    /// An operator's leave to open while the station's site rules cannot answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_rules_override: Option<SiteRulesOverride>,
    /// Locked down after an alert whose site rules said so (a tamper alarm): no door opens
    /// until an operator clears it, but under a technician's override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockdown: Option<Lockdown>,
    /// Its climate-controlled compartments, as the deployment names them: the site rules hold
    /// their temperatures to the limits for goods that need it.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub climate_controlled: BTreeSet<CompartmentId>,
}

/// A station's lock-down: since when, why, who decided, and a technician's bounded leave to
/// open doors while it lasts (every door opened under it names it in the access log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockdown {
    /// When it began.
    pub since: Timestamp,
    /// The alert that caused it.
    pub reason: String,
    /// The site rules that decided it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
    /// A technician on site may open doors until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub technician: Option<SiteRulesOverride>,
}

/// An operator's leave for a station to open while its site rules cannot answer (their plugin
/// fails or is out of service), where they would otherwise keep every door shut. It lasts a
/// bounded time, and every door it opens says so in the access log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteRulesOverride {
    /// The operator who gave it.
    pub by: String,
    /// Why.
    pub reason: String,
    /// When it ends.
    pub until: Timestamp,
}

impl StationRecord {
    /// An active station with no override, lock-down or climate-controlled compartment.
    pub fn new(
        id: StationId,
        name: impl Into<String>,
        kind: StationKind,
        location: GeoPoint,
    ) -> StationRecord {
        StationRecord {
            id,
            name: name.into(),
            kind,
            location,
            status: StationStatus::Active,
            site_rules_override: None,
            lockdown: None,
            climate_controlled: BTreeSet::new(),
        }
    }

    /// The technician's override of the station's lock-down in force at `now`, if any.
    pub fn lockdown_override_at(&self, now: Timestamp) -> Option<&SiteRulesOverride> {
        self.lockdown
            .as_ref()?
            .technician
            .as_ref()
            .filter(|o| o.until > now)
    }

    /// The override in force at `now`, if any.
    pub fn site_rules_override_at(&self, now: Timestamp) -> Option<&SiteRulesOverride> {
        self.site_rules_override.as_ref().filter(|o| o.until > now)
    }
}

/// One compartment and who holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompartmentRecord {
    /// Its id.
    pub id: CompartmentId,
    /// The station it belongs to.
    pub station: StationId,
    /// Its size.
    pub size: Size,
    /// Its state; changed only through `lockergrid_protocol::compartment::apply`.
    pub state: CompartmentState,
    /// Incremented on every change, so a reader can tell two versions apart.
    pub version: u64,
    /// The reservation holding it while `reserved` or `occupied`.
    pub reservation: Option<ReservationId>,
}

/// The state of a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationStatus {
    /// The compartment is held, waiting for the deposit.
    Held,
    /// The parcel is in the compartment.
    Deposited,
    /// Released by the checkout service before the deposit.
    Released,
    /// The hold ran out before the deposit.
    Expired,
    /// The parcel left the compartment (picked up or collected).
    Completed,
}

/// A hold on one compartment for one order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    /// Its id.
    pub id: ReservationId,
    /// The merchant whose checkout made it (a checkout token's subject), who alone among
    /// checkout tokens may read or change it; `None` when no checkout did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant: Option<String>,
    /// The checkout service's order.
    pub order_id: OrderId,
    /// The parcel it is for.
    pub parcel_id: ParcelId,
    /// The station.
    pub station_id: StationId,
    /// The compartment held.
    pub compartment_id: CompartmentId,
    /// The compartment's size (the smallest free one that fits).
    pub size: Size,
    /// The delivery tier.
    pub tier: Tier,
    /// When it was made.
    pub created_at: Timestamp,
    /// When the hold runs out if nothing is deposited.
    pub hold_until: Timestamp,
    /// Where it stands.
    pub status: ReservationStatus,
}

/// A parcel from reservation to pickup or expiry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parcel {
    /// Its id.
    pub id: ParcelId,
    /// The reservation that made room for it.
    pub reservation_id: ReservationId,
    /// The merchant whose checkout made it (a checkout token's subject), who alone among
    /// checkout tokens may read or change it; `None` when no checkout did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant: Option<String>,
    /// The order it belongs to.
    pub order_id: OrderId,
    /// Where it goes.
    pub station_id: StationId,
    /// Its compartment.
    pub compartment_id: CompartmentId,
    /// Its dimensions and weight.
    pub spec: ParcelSpec,
    /// Its delivery tier.
    pub tier: Tier,
    /// Where it is.
    pub status: ParcelStatus,
    /// When it was reserved.
    pub reserved_at: Timestamp,
    /// When it was deposited.
    pub stored_at: Option<Timestamp>,
    /// When the pickup window closes.
    pub pickup_expires_at: Option<Timestamp>,
    /// When the customer took it.
    pub picked_up_at: Option<Timestamp>,
    /// When its window closed.
    pub expired_at: Option<Timestamp>,
    /// When a carrier took the expired parcel away.
    pub collected_at: Option<Timestamp>,
    /// When its hold ended without a deposit.
    pub cancelled_at: Option<Timestamp>,
    /// The keyed hash of its active pickup code, hex, so expiry can revoke the code. Never the
    /// code itself.
    pub code_hash: Option<String>,
    /// Who hears about it, and how they agreed to be reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<NotifyRecipient>,
    /// The outbox message that carries its active pickup code; an older message's code no
    /// longer works, so it is not sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_message: Option<String>,
}

/// The person a parcel is for, as notifications reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyRecipient {
    /// Who (a customer id of the shop).
    pub id: String,
    /// The channels they accept, in their order of preference.
    pub channels: Vec<NotifyChannel>,
    /// Quiet hours, minutes since local midnight, start and end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<(u16, u16)>,
    /// Where each channel reaches them, sealed: no address is ever stored in clear.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Box<SealedContact>>,
}

/// A recipient's addresses encrypted (AES-256-GCM) under the contact data key `key_id`, bound
/// to the order and recipient they belong to, with the masked forms an API may show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedContact {
    /// Which data key sealed it, so keys can rotate.
    pub key_id: u32,
    /// The 96-bit nonce, hex.
    pub nonce: String,
    /// The sealed addresses with their tag, base64.
    pub ciphertext: String,
    /// The addresses masked (`c***@example.com`, `+31******78`), for people who need to see
    /// that an address is there, not what it is.
    pub masked: MaskedContact,
}

/// A recipient's addresses, masked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaskedContact {
    /// The e-mail address, masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The phone number, masked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// The customer app's endpoint, its origin only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_url: Option<String>,
}

/// A notification that must not be lost, in the outbox until it is delivered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Position in the outbox, from 1.
    pub seq: u64,
    /// A unique id receivers apply once.
    pub id: String,
    /// The parcel or return it is about.
    pub about: About,
    /// Its station.
    pub station_id: StationId,
    /// What happened.
    pub event: NotificationEvent,
    /// Who hears about it.
    pub recipient: NotifyRecipient,
    /// When it was written.
    pub created_at: Timestamp,
    /// When delivery should start.
    pub due_at: Timestamp,
    /// The delivery plan the notification router made; `None` until it is planned.
    pub plan: Option<DeliveryPlan>,
    /// The plugin that made the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
    /// The code it carries, sealed, until it is delivered (then erased).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SealedSecret>,
    /// When what it tells stops being true (the code it carries expires, the pickup window
    /// closes): a message not delivered by then fails instead of arriving late.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Where its delivery stands.
    #[serde(default)]
    pub delivery: Delivery,
}

impl Parcel {
    /// When the pickup window closes, while the parcel waits in its compartment.
    pub fn pickup_deadline(&self) -> Option<Timestamp> {
        match self.status {
            ParcelStatus::Stored => self.pickup_expires_at,
            _ => None,
        }
    }
}

/// An active pickup code, keyed in its table by the code's keyed hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeRecord {
    /// The parcel it releases.
    pub parcel_id: ParcelId,
    /// The station where it is valid.
    pub station_id: StationId,
    /// When it stops working.
    pub expires_at: Timestamp,
}

/// A remembered `Idempotency-Key`: what the request looked like and what it was answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 of the request's canonical form, hex.
    pub fingerprint: String,
    /// For a reservation's key: the reservation as it was first answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Reservation>,
    /// For a return's key: the return it authorised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_id: Option<ReturnId>,
    /// For a resent code's key: the message that carries the code it issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// When the key was first used; keys are forgotten a day later.
    pub created_at: Timestamp,
}

/// Bearer tokens the gateway refuses before they expire: one token by its id, or every token of
/// a subject issued until the revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokedTokens {
    /// The token with this id (its `jti`).
    Token(String),
    /// Every token of this subject issued until `revoked_at`.
    Subject(String),
}

impl RevokedTokens {
    /// Its key in the store.
    pub fn key(&self) -> String {
        match self {
            RevokedTokens::Token(id) => format!("token/{id}"),
            RevokedTokens::Subject(subject) => format!("subject/{subject}"),
        }
    }
}

/// A revocation as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// What it revokes.
    pub revoked: RevokedTokens,
    /// When.
    pub revoked_at: Timestamp,
    /// When it may be forgotten: every token it refuses has expired by then.
    pub forget_at: Timestamp,
}

/// Who did something, as the access log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The token's subject, e.g. `checkout-web` or `agent-17`.
    pub subject: String,
    /// The token's role.
    pub role: String,
}

impl Actor {
    /// The merchant this actor acts for: a checkout token's subject; nobody else is one.
    pub fn merchant(&self) -> Option<String> {
        (self.role == "checkout").then(|| self.subject.clone())
    }

    /// The store itself, for changes nobody asked for (expiry, seeding).
    pub fn system() -> Actor {
        Actor {
            subject: "lockergrid".into(),
            role: "system".into(),
        }
    }
}

/// Which plugin (or the built-in behaviour) made the decision an access-log entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecidedBy {
    /// The plugin world that decided, e.g. `reservation-policy`.
    pub world: String,
    /// The plugin's name, or `built-in`.
    pub plugin: String,
    /// Its version; empty for the built-in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// SHA-256 of its component, hex; empty for the built-in.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Why the built-in decided although a plugin is bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
}

/// One entry of the append-only, hash-chained access log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// Position in the log, from 1.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// Who.
    pub actor: Actor,
    /// What was attempted, e.g. `reserve`, `deposit`, `pickup`, `denied`.
    pub action: String,
    /// What it was done to (a reservation, parcel, station or route).
    pub target: String,
    /// `ok` or the reason it was refused.
    pub outcome: String,
    /// The plugin that made the decision, where one was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
    /// SHA-256 of the previous entry, hex (zeros for the first).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash` and this entry's other fields, hex.
    pub hash: String,
}

/// Why the node released a compartment's latch; what the door closing again completes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum UnlockFor {
    /// An agent deposits the parcel of this reservation.
    Deposit {
        /// The reservation.
        reservation_id: ReservationId,
    },
    /// A customer collects this parcel with the code whose keyed hash is given; the code is
    /// spent when the door closes.
    Pickup {
        /// The parcel.
        parcel_id: ParcelId,
        /// The code's keyed hash, hex.
        code_hash: String,
    },
    /// A customer drops off this return with its code; the compartment is held for it until
    /// the door closes, and the code is spent then.
    ReturnDropOff {
        /// The return authorisation.
        return_id: ReturnId,
        /// The drop-off code's keyed hash, hex.
        code_hash: String,
    },
    /// A carrier takes this dropped-off return away.
    ReturnCollection {
        /// The return authorisation.
        return_id: ReturnId,
    },
    /// A carrier takes this expired parcel back to its sender.
    ParcelCollection {
        /// The parcel.
        parcel_id: ParcelId,
    },
}

/// A return authorisation: a parcel a customer may drop off at one station with a code, until a
/// carrier takes it away.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReturnRecord {
    /// Its id.
    pub id: ReturnId,
    /// The merchant whose checkout made it (a checkout token's subject), who alone among
    /// checkout tokens may read or change it; `None` when no checkout did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant: Option<String>,
    /// The checkout service's order.
    pub order_id: OrderId,
    /// Where it is dropped off.
    pub station_id: StationId,
    /// The parcel's dimensions and weight.
    pub spec: ParcelSpec,
    /// The smallest compartment size it fits.
    pub size: Size,
    /// The drop-off code's keyed hash, hex, while the code is unspent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hash: Option<String>,
    /// Where it stands.
    pub status: ReturnStatus,
    /// When it was authorised.
    pub created_at: Timestamp,
    /// Until when it may be dropped off.
    pub expires_at: Timestamp,
    /// The compartment it went into (held while its door is open).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compartment_id: Option<CompartmentId>,
    /// When its drop-off code last opened a compartment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<Timestamp>,
    /// When its door closed on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped_off_at: Option<Timestamp>,
    /// When a carrier took it away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collected_at: Option<Timestamp>,
    /// Who hears about it, with their addresses sealed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<NotifyRecipient>,
    /// The outbox message that carries its drop-off code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_message: Option<String>,
}

/// Where a return stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReturnStatus {
    /// Its code may be used at its station.
    Authorized,
    /// Its code opened a compartment, whose door has not closed yet.
    DroppingOff,
    /// In its compartment (`return_pending`), waiting for a carrier.
    DroppedOff,
    /// Taken away by a carrier; the compartment is free again.
    Collected,
    /// Not dropped off in time.
    Expired,
}

impl ReturnStatus {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnStatus::Authorized => "authorized",
            ReturnStatus::DroppingOff => "dropping_off",
            ReturnStatus::DroppedOff => "dropped_off",
            ReturnStatus::Collected => "collected",
            ReturnStatus::Expired => "expired",
        }
    }
}

/// What became of an unlock command at the locker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandStatus {
    /// Sent (or to be sent) until the locker acknowledges it or it expires.
    Pending,
    /// The locker released the latch.
    Executed,
    /// The locker refused it before anything moved.
    Refused,
    /// The locker admitted it but the hardware failed.
    Failed,
    /// No acknowledgement arrived before it expired.
    Expired,
}

impl CommandStatus {
    /// The status as the API and the access log name it.
    pub const fn as_str(self) -> &'static str {
        match self {
            CommandStatus::Pending => "pending",
            CommandStatus::Executed => "executed",
            CommandStatus::Refused => "refused",
            CommandStatus::Failed => "failed",
            CommandStatus::Expired => "expired",
        }
    }
}

/// An unlock command the node issued, with the per-locker counter it was signed with. It stays in
/// the outbox (the pending-commands table) until the locker acknowledges it or it expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    /// Its id; the locker's door-closed event names it.
    pub id: String,
    /// The station (its locker has the station's id).
    pub station_id: StationId,
    /// The compartment whose latch it releases.
    pub compartment_id: CompartmentId,
    /// The locker's counter; strictly increasing per locker.
    pub counter: u64,
    /// When it was issued, by the node's clock.
    pub issued_at: Timestamp,
    /// After this the locker refuses it.
    pub expires_at: Timestamp,
    /// What the door closing again completes.
    pub unlock_for: UnlockFor,
    /// Who asked for it.
    pub actor: Actor,
    /// The site rules that allowed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
    /// What the locker said.
    pub status: CommandStatus,
    /// The locker's reason for a refusal or failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The door-closed event that completed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// On an edge node: the gateway's command it passed on, as opposed to one it issued itself
    /// while its uplink was down (whose door closing it completes itself, uplink or not).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub relayed: bool,
}

/// A locker event the node has applied; its key is `{station}/{event id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxRecord {
    /// When it was applied.
    pub applied_at: Timestamp,
}

/// A compartment whose latch failed to release: how many unlocks in a row failed, and whether
/// it goes to maintenance as soon as it is empty (at once if it is).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatchFaults {
    /// Unlocks in a row the locker reported failed; an executed one clears the record.
    pub consecutive: u32,
    /// It reached the limit: out of service once its parcel or return is out.
    pub maintenance_due: bool,
    /// The locker's reason for the latest failure.
    pub last_reason: Option<String>,
}

/// What the node keeps per locker.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LockerRecord {
    /// The counter of the last command issued to it.
    pub counter: u64,
}

/// An edge node's lease on empty compartments of one station (DESIGN.md §7): held for it
/// (`reserved`, with no reservation) so it can open one for a return drop-off while its uplink is
/// down. The gateway never reserves a leased compartment; a compartment it takes back stays held
/// until the edge node confirms an epoch that no longer has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// The station.
    pub station: StationId,
    /// The edge node holding it.
    pub edge: String,
    /// Raised at every change; the edge node confirms the epoch it holds.
    pub epoch: u64,
    /// The compartments the edge node may open.
    pub compartments: BTreeSet<CompartmentId>,
    /// Compartments taken back, with the epoch that took them: held until the edge node confirms
    /// that epoch.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revoking: BTreeMap<CompartmentId, u64>,
    /// The newest epoch the edge node confirmed.
    #[serde(default)]
    pub acked_epoch: u64,
    /// On the edge node only: leased compartments it opened for a drop-off whose door has not
    /// closed yet, with the return.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub used: BTreeMap<CompartmentId, ReturnId>,
}

impl LeaseRecord {
    /// A lease of `station` to `edge` that holds nothing yet.
    pub fn empty(station: StationId, edge: String) -> LeaseRecord {
        LeaseRecord {
            station,
            edge,
            epoch: 0,
            compartments: BTreeSet::new(),
            revoking: BTreeMap::new(),
            acked_epoch: 0,
            used: BTreeMap::new(),
        }
    }
}
