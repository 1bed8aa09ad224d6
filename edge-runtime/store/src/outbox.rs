//! The notification outbox (`outbox_v1`): one entry per message, written unplanned in the
//! transaction of the change it tells about, planned by the notification router after the
//! commit, with the reminders the plan asks for appended as entries of their own. A message's id
//! is derived from what it is about, the event, the recipient and when, so writing it twice
//! (a reminder planned again) keeps one; `outbox_due_v1` lists the messages waiting for an
//! attempt by when they are due.

use super::tables::{self, OUTBOX_DUE_V1, OUTBOX_IDS_V1, OUTBOX_V1, due_key};
use super::writer::{Tx, Writer};
use super::{Store, StoreError};
use lockergrid_model::{About, Delivery, DeliveryPlan, NotificationEvent, NotifyChannel};
use lockergrid_model::{NotifyRecipient, OutboxEntry, Parcel, Step};
use lockergrid_protocol::{PickupCode, StationId, Timestamp, to_hex};
use redb::{ReadableDatabase, ReadableTable};
use sha2::{Digest, Sha256};

impl Store {
    /// The outbox from entry `from` on, at most `limit` entries.
    pub fn outbox(&self, from: u64, limit: usize) -> Result<Vec<OutboxEntry>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(tables::OUTBOX_V1.def())?;
        tables::OUTBOX_V1.page(&table, from, limit)
    }

    /// Up to `limit` messages whose next attempt is due at `now`, the earliest first.
    pub fn due_notifications(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let due = rx.open_table(OUTBOX_DUE_V1.def())?;
        let outbox = rx.open_table(OUTBOX_V1.def())?;
        let until = due_key(now, u64::MAX);
        let mut entries = Vec::new();
        for item in due.range(..=until.as_str())?.take(limit) {
            let (key, _) = item?;
            let Some(seq): Option<u64> =
                key.value().rsplit('.').next().and_then(|s| s.parse().ok())
            else {
                continue;
            };
            entries.extend(OUTBOX_V1.get(&outbox, seq)?);
        }
        Ok(entries)
    }

    /// When the earliest waiting message is due, if any is.
    pub fn next_notification_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let due = rx.open_table(OUTBOX_DUE_V1.def())?;
        Ok(due.first()?.and_then(|(key, _)| {
            let millis = key.value().split('.').next()?.parse().ok()?;
            Some(Timestamp(millis))
        }))
    }

    /// The message with id `id`.
    pub fn notification(&self, id: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let ids = rx.open_table(OUTBOX_IDS_V1.def())?;
        let Some(seq) = OUTBOX_IDS_V1.get(&ids, id)? else {
            return Ok(None);
        };
        OUTBOX_V1.get(&rx.open_table(OUTBOX_V1.def())?, seq)
    }
}

/// How a merchant's integration is named as a recipient: `merchant:<subject>`.
pub const MERCHANT: &str = "merchant:";

/// A notification to write with the change it tells about.
pub(crate) struct Notice<'a> {
    /// The parcel or return.
    pub about: About,
    /// Its station.
    pub station: &'a StationId,
    /// Who hears; without a recipient nothing is written.
    pub recipient: Option<&'a NotifyRecipient>,
    /// What happened.
    pub event: NotificationEvent,
    /// When delivery may start.
    pub due_at: Timestamp,
    /// The code it carries, with when it stops working.
    pub code: Option<(&'a PickupCode, Timestamp)>,
    /// The message this one replaces (the previous code's), so its id differs.
    pub after: Option<&'a str>,
}

/// A message's id: the same inputs always give the same id.
pub(crate) fn message_id(
    about: &About,
    event: NotificationEvent,
    recipient: &str,
    due_at: Timestamp,
    after: Option<&str>,
) -> String {
    let mut hash = Sha256::new();
    let kind = match about {
        About::Parcel(_) => "parcel",
        About::Return(_) => "return",
    };
    let event = serde_json::to_string(&event).unwrap_or_default();
    for part in [
        "lockergrid notification v1",
        kind,
        about.as_str(),
        event.as_str(),
        recipient,
        &due_at.millis().to_string(),
        after.unwrap_or(""),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    format!("ntf_{}", &to_hex(&hash.finalize())[..32])
}

impl Writer {
    /// Puts a notification in the outbox, unplanned, if it has a recipient; the notification
    /// router plans it after the commit. A code it carries is sealed for this message alone.
    /// Answers the message's id.
    pub(crate) fn notify(
        &mut self,
        tx: &mut Tx<'_>,
        notice: Notice<'_>,
    ) -> Result<Option<String>, StoreError> {
        // An edge node sends nothing: the gateway tells customers when it applies what the
        // edge node decided.
        let Some(recipient) = notice.recipient.filter(|_| !self.edge) else {
            return Ok(None);
        };
        let id = message_id(
            &notice.about,
            notice.event,
            &recipient.id,
            notice.due_at,
            notice.after,
        );
        let (secret, expires_at) = match (notice.code, &self.sealer) {
            (Some((code, expires)), Some(sealer)) => {
                (Some(sealer.seal(&id, code.reveal())), Some(expires))
            }
            (Some((_, expires)), None) => (None, Some(expires)),
            (None, _) => (None, None),
        };
        self.append_outbox(
            tx,
            OutboxEntry {
                seq: 0,
                id: id.clone(),
                about: notice.about,
                station_id: notice.station.clone(),
                event: notice.event,
                recipient: recipient.clone(),
                created_at: tx.now,
                due_at: notice.due_at,
                plan: None,
                decided_by: None,
                secret,
                expires_at,
                delivery: Delivery::default(),
            },
        )?;
        Ok(Some(id))
    }

    /// Writes the message that carries `parcel`'s new pickup `code` (valid until `expires`) to
    /// its recipient, after the one that carried its previous code; the new message's id.
    pub(crate) fn send_pickup_code(
        &mut self,
        tx: &mut Tx<'_>,
        parcel: &Parcel,
        code: &PickupCode,
        expires: Timestamp,
    ) -> Result<Option<String>, StoreError> {
        self.notify(
            tx,
            Notice {
                about: About::Parcel(parcel.id.clone()),
                station: &parcel.station_id,
                recipient: parcel.recipient.as_ref(),
                event: NotificationEvent::ParcelStored,
                due_at: tx.now,
                code: Some((code, expires)),
                after: parcel.code_message.as_deref(),
            },
        )
    }

    /// Tells `parcel`'s merchant, if it has an endpoint, that `event` happened to it.
    pub(crate) fn tell_parcel_merchant(
        &mut self,
        tx: &mut Tx<'_>,
        parcel: &Parcel,
        event: NotificationEvent,
    ) -> Result<(), StoreError> {
        self.tell_merchant(
            tx,
            parcel.merchant.as_deref(),
            About::Parcel(parcel.id.clone()),
            &parcel.station_id,
            event,
        )
    }

    /// Puts a message for the merchant's integration in the outbox, planned (its endpoint, now),
    /// if the merchant has an endpoint. It never carries a code.
    pub(crate) fn tell_merchant(
        &mut self,
        tx: &mut Tx<'_>,
        merchant: Option<&str>,
        about: About,
        station: &StationId,
        event: NotificationEvent,
    ) -> Result<(), StoreError> {
        let Some(merchant) = merchant.filter(|m| !self.edge && self.integrators.contains(*m))
        else {
            return Ok(());
        };
        let recipient = NotifyRecipient {
            id: format!("{MERCHANT}{merchant}"),
            channels: vec![NotifyChannel::Webhook],
            quiet_hours: None,
            contact: None,
        };
        let id = message_id(&about, event, &recipient.id, tx.now, None);
        let plan = DeliveryPlan {
            steps: vec![Step {
                channel: NotifyChannel::Webhook,
                delay_minutes: 0,
            }],
        };
        self.append_outbox(
            tx,
            OutboxEntry {
                seq: 0,
                id,
                about,
                station_id: station.clone(),
                event,
                recipient,
                created_at: tx.now,
                due_at: tx.now,
                plan: Some(plan),
                decided_by: None,
                secret: None,
                expires_at: None,
                delivery: Delivery {
                    next_at: Some(tx.now),
                    ..Delivery::default()
                },
            },
        )?;
        Ok(())
    }

    /// Appends `entry` with the outbox's next sequence number, unless a message with its id is
    /// there already; whether it was appended.
    pub(crate) fn append_outbox(
        &mut self,
        tx: &mut Tx<'_>,
        mut entry: OutboxEntry,
    ) -> Result<bool, StoreError> {
        if OUTBOX_IDS_V1
            .get(&tx.outbox_ids, entry.id.as_str())?
            .is_some()
        {
            return Ok(false);
        }
        self.index.outbox_seq += 1;
        entry.seq = self.index.outbox_seq;
        OUTBOX_IDS_V1.put(&mut tx.outbox_ids, entry.id.as_str(), &entry.seq)?;
        save_outbox(tx, &entry, None)?;
        Ok(true)
    }
}

/// Writes `entry`, moving it in the due list from `was_due` to its next attempt.
pub(crate) fn save_outbox(
    tx: &mut Tx<'_>,
    entry: &OutboxEntry,
    was_due: Option<Timestamp>,
) -> Result<(), StoreError> {
    if let Some(at) = was_due {
        tx.outbox_due.remove(due_key(at, entry.seq).as_str())?;
    }
    if let (Some(at), Some(_)) = (entry.delivery.next_at, &entry.plan) {
        OUTBOX_DUE_V1.put(
            &mut tx.outbox_due,
            due_key(at, entry.seq).as_str(),
            &entry.seq,
        )?;
    }
    OUTBOX_V1.put(&mut tx.outbox, entry.seq, entry)
}
