//! A new pickup code for a stored parcel; the old one stops working.

use crate::access_log::Draft;
use crate::tables::IDEMPOTENCY_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, IdempotencyKey, Store, conflict};
use lockergrid_model::{Actor, CodeRecord, IdempotencyRecord, Parcel};
use lockergrid_protocol::{ParcelId, ParcelStatus, PickupCode};

/// A code resent: the parcel, and the message that carries its new code to the customer.
#[derive(Debug, Clone)]
pub struct Reissued {
    /// The parcel, with its new code's hash.
    pub parcel: Parcel,
    /// The message that carries the new code.
    pub message_id: Option<String>,
    /// The new code, when this request issued it (not on a replay of its idempotency key).
    pub code: Option<PickupCode>,
}

impl Store {
    /// Replaces a stored parcel's pickup code with a fresh one, sent to its recipient in a
    /// message of its own (the older message, if still undelivered, is not sent); the old code
    /// stops working. A retry under the same idempotency key issues nothing and answers the
    /// message the first request wrote.
    pub async fn reissue_code(
        &self,
        id: ParcelId,
        actor: Actor,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Reissued, ChangeError> {
        self.write(move |w, tx| w.reissue_code(tx, &id, actor, idempotency))
            .await
    }
}

impl Writer {
    /// Replaces a stored parcel's pickup code with a fresh one (the old one stops working).
    pub(crate) fn reissue_code(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ParcelId,
        actor: Actor,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Reissued, ChangeError> {
        let mut parcel = self.requested_parcel(tx, id)?;
        if let Some(key) = &idempotency
            && let Some(seen) = IDEMPOTENCY_V1.get(&tx.keys, key.key.as_str())?
        {
            return match seen.message_id {
                Some(message_id) if seen.fingerprint == key.fingerprint => Ok(Reissued {
                    parcel,
                    message_id: Some(message_id),
                    code: None,
                }),
                _ => Err(ChangeError::IdempotencyMismatch),
            };
        }
        let (Some(expires_at), ParcelStatus::Stored) = (parcel.pickup_expires_at, parcel.status)
        else {
            return Err(conflict("parcel", id.as_str(), parcel.status));
        };
        let (code, hash) = self.draw_code(tx, &parcel.station_id)?;
        if let Some(old) = &parcel.code_hash {
            tx.remove_code(old.as_str())?;
        }
        let record = CodeRecord {
            parcel_id: parcel.id.clone(),
            station_id: parcel.station_id.clone(),
            expires_at,
        };
        tx.put_code(hash.as_str(), &record)?;
        parcel.code_hash = Some(hash);
        parcel.code_message = self.send_pickup_code(tx, &parcel, &code, expires_at)?;
        tx.put_parcel(&parcel)?;
        if let Some(key) = idempotency {
            let seen = IdempotencyRecord {
                fingerprint: key.fingerprint,
                answer: None,
                return_id: None,
                message_id: parcel.code_message.clone(),
                created_at: tx.now,
            };
            IDEMPOTENCY_V1.put(&mut tx.keys, key.key.as_str(), &seen)?;
            self.index.key_deadlines.insert((tx.now, key.key));
        }
        self.log(tx, Draft::new(actor, "code_reissued", id.as_str(), "ok"))?;
        Ok(Reissued {
            message_id: parcel.code_message.clone(),
            parcel,
            code: Some(code),
        })
    }
}
