//! The expiry sweep: holds and pickup windows that are due by the store's clock, and idempotency
//! keys past their lifetime.

use crate::reservations::KEY_LIFETIME;
use crate::reservations::SWEEP_LIMIT;
use crate::reservations::into_store;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, ExpiryReport, Store, StoreError};
use lockergrid_model::Actor;
use lockergrid_protocol::CompartmentEvent;

impl Store {
    /// Expires every hold and pickup window that is due by the store's clock.
    pub async fn expire_due(&self) -> Result<ExpiryReport, StoreError> {
        self.write(move |w, tx| w.expire_due(tx)).await
    }
}

impl Writer {
    pub(crate) fn expire_due(&mut self, tx: &mut Tx<'_>) -> Result<ExpiryReport, StoreError> {
        let mut report = ExpiryReport::default();
        while let Some((due, id)) = self.index.hold_deadlines.first().cloned() {
            if due > tx.now || report.holds_expired as usize >= SWEEP_LIMIT {
                break;
            }
            self.index.hold_deadlines.remove(&(due, id.clone()));
            match self.held_reservation(tx, &id) {
                Ok(reservation) => {
                    self.end_hold(
                        tx,
                        reservation,
                        CompartmentEvent::HoldExpired,
                        Actor::system(),
                    )
                    .map_err(into_store)?;
                    report.holds_expired += 1;
                }
                Err(ChangeError::Store(e)) => return Err(e),
                Err(_) => {}
            }
        }
        while let Some((due, id)) = self.index.pickup_deadlines.first().cloned() {
            if due > tx.now || report.parcels_expired as usize >= SWEEP_LIMIT {
                break;
            }
            self.index.pickup_deadlines.remove(&(due, id.clone()));
            self.expire_parcel(tx, &id)?;
            report.parcels_expired += 1;
        }
        while let Some((due, id)) = self.index.drop_off_deadlines.first().cloned() {
            if due > tx.now || report.drop_offs_abandoned as usize >= SWEEP_LIMIT {
                break;
            }
            self.index.drop_off_deadlines.remove(&(due, id.clone()));
            if self.drop_off_timed_out(tx, &id)? {
                report.drop_offs_abandoned += 1;
            }
        }
        while let Some((due, id)) = self.index.return_deadlines.first().cloned() {
            if due > tx.now || report.returns_expired as usize >= SWEEP_LIMIT {
                break;
            }
            self.index.return_deadlines.remove(&(due, id.clone()));
            if self.return_window_closed(tx, &id)? {
                report.returns_expired += 1;
            }
        }
        while let Some((created, key)) = self.index.key_deadlines.first().cloned() {
            if created.plus(KEY_LIFETIME) > tx.now || report.keys_forgotten as usize >= SWEEP_LIMIT
            {
                break;
            }
            self.index.key_deadlines.remove(&(created, key.clone()));
            tx.keys.remove(key.as_str())?;
            report.keys_forgotten += 1;
        }
        Ok(report)
    }
}
