//! A return authorised at a station with a free compartment it fits, and its drop-off code.

use crate::access_log::Draft;
use crate::outbox::Notice;
use crate::tables::{IDEMPOTENCY_V1, RETURN_CODES_V1, RETURNS_V1};
use crate::writer::{Tx, Writer};
use crate::{AuthorizedReturn, ReturnRequest};
use crate::{ChangeError, Store, StoreError, new_id};
use lockergrid_model::{About, IdempotencyRecord, NotificationEvent, ReturnRecord};
use lockergrid_model::{ReturnStatus, StationStatus};
use lockergrid_protocol::ReturnId;

impl Store {
    /// Authorises a return at a station that is in service and has a free compartment the
    /// parcel fits now, and issues its drop-off code.
    pub async fn authorize_return(
        &self,
        request: ReturnRequest,
    ) -> Result<AuthorizedReturn, ChangeError> {
        self.write(move |w, tx| w.authorize_return(tx, request))
            .await
    }
}

impl Writer {
    pub(crate) fn authorize_return(
        &mut self,
        tx: &mut Tx<'_>,
        request: ReturnRequest,
    ) -> Result<AuthorizedReturn, ChangeError> {
        if let Some(key) = &request.idempotency
            && let Some(seen) = IDEMPOTENCY_V1.get(&tx.keys, key.key.as_str())?
        {
            let record = match seen.return_id {
                Some(id) if seen.fingerprint == key.fingerprint => {
                    RETURNS_V1.get(&tx.returns, id.as_str())?
                }
                _ => None,
            };
            return record
                .map(|record| AuthorizedReturn { record, code: None })
                .ok_or(ChangeError::IdempotencyMismatch);
        }
        let station =
            self.index
                .stations
                .get(&request.station)
                .ok_or_else(|| ChangeError::NotFound {
                    kind: "station",
                    id: request.station.to_string(),
                })?;
        if station.record.status != StationStatus::Active {
            return Err(crate::conflict(
                "station",
                request.station.as_str(),
                station.record.status,
            ));
        }
        if request
            .size
            .and_larger()
            .all(|s| station.free[s.index()].is_empty())
        {
            return Err(ChangeError::Conflict {
                kind: "station",
                id: request.station.to_string(),
                status: format!(
                    "without a free compartment of size {} or larger",
                    request.size
                ),
            });
        }
        let (code, hash) = self.draw_code(tx, &request.station)?;
        let id = ReturnId::new(new_id("ret")).map_err(|e| StoreError::Corrupt {
            table: "ids",
            detail: e.to_string(),
        })?;
        let mut record = ReturnRecord {
            id: id.clone(),
            merchant: request.actor.merchant(),
            order_id: request.order_id,
            station_id: request.station,
            spec: request.spec,
            size: request.size,
            code_hash: Some(hash.clone()),
            status: ReturnStatus::Authorized,
            created_at: tx.now,
            expires_at: tx.now.plus(request.valid),
            compartment_id: None,
            opened_at: None,
            dropped_off_at: None,
            collected_at: None,
            recipient: request.recipient,
            code_message: None,
        };
        record.code_message = self.notify(
            tx,
            Notice {
                about: About::Return(id.clone()),
                station: &record.station_id,
                recipient: record.recipient.as_ref(),
                event: NotificationEvent::ReturnCode,
                due_at: tx.now,
                code: Some((&code, record.expires_at)),
                after: None,
            },
        )?;
        tx.put_return(&record)?;
        RETURN_CODES_V1.put(&mut tx.return_codes, hash.as_str(), &id.to_string())?;
        self.index
            .return_deadlines
            .insert((record.expires_at, id.clone()));
        if let Some(key) = request.idempotency {
            let seen = IdempotencyRecord {
                fingerprint: key.fingerprint,
                answer: None,
                return_id: Some(id.clone()),
                message_id: None,
                created_at: tx.now,
            };
            IDEMPOTENCY_V1.put(&mut tx.keys, key.key.as_str(), &seen)?;
            self.index.key_deadlines.insert((tx.now, key.key));
        }
        self.log(
            tx,
            Draft::new(request.actor, "return_authorized", id.as_str(), "ok"),
        )?;
        Ok(AuthorizedReturn {
            record,
            code: Some(code),
        })
    }
}
