//! Holding one compartment of the smallest free size a parcel fits, at the first target station
//! with one; an idempotency key replays the first answer.

use crate::access_log::Draft;
use crate::reservations::corrupt_id;
use crate::reservations::into_store;
use crate::tables::{IDEMPOTENCY_V1, RESERVATIONS_V1};
use crate::writer::{Tx, Writer};
use crate::{ReserveError, ReserveRequest, Reserved, Store, Target, new_id};
use lockergrid_model::{IdempotencyRecord, Parcel, Reservation, ReservationStatus, StationStatus};
use lockergrid_protocol::{CompartmentEvent, ParcelId, ParcelStatus, ReservationId, Size};

impl Store {
    /// Holds one compartment of the smallest free size the parcel fits, at the first target
    /// station that has one.
    pub async fn reserve(&self, request: ReserveRequest) -> Result<Reserved, ReserveError> {
        let size = request.parcel.smallest_size()?;
        self.write(move |w, tx| w.reserve(tx, request, size)).await
    }
}

impl Writer {
    pub(crate) fn reserve(
        &mut self,
        tx: &mut Tx<'_>,
        request: ReserveRequest,
        size: Size,
    ) -> Result<Reserved, ReserveError> {
        if let Some(key) = &request.idempotency
            && let Some(seen) = IDEMPOTENCY_V1.get(&tx.keys, key.key.as_str())?
        {
            return match seen.answer {
                Some(reservation) if seen.fingerprint == key.fingerprint => Ok(Reserved {
                    reservation,
                    replayed: true,
                }),
                _ => Err(ReserveError::IdempotencyMismatch),
            };
        }
        let candidates = match &request.target {
            Target::Station(id) => {
                let station = self
                    .index
                    .stations
                    .get(id)
                    .ok_or_else(|| ReserveError::UnknownStation(id.clone()))?;
                if station.record.status != StationStatus::Active {
                    return Err(ReserveError::StationInactive(id.clone()));
                }
                std::slice::from_ref(id)
            }
            Target::Ranked(ids) => ids.as_slice(),
        };
        let (station, compartment, got) = self
            .find_free(candidates, size)
            .ok_or(ReserveError::NoCapacity(size))?;
        let id = ReservationId::new(new_id("rsv")).map_err(corrupt_id)?;
        let parcel_id = ParcelId::new(new_id("pcl")).map_err(corrupt_id)?;
        self.move_compartment(
            tx,
            &compartment,
            CompartmentEvent::Reserve,
            Some(id.clone()),
        )
        .map_err(|e| ReserveError::Store(into_store(e)))?;
        let merchant = request.actor.merchant();
        let reservation = Reservation {
            id: id.clone(),
            merchant: merchant.clone(),
            order_id: request.order_id.clone(),
            parcel_id: parcel_id.clone(),
            station_id: station,
            compartment_id: compartment,
            size: got,
            tier: request.tier,
            created_at: tx.now,
            hold_until: tx.now.plus(request.hold),
            status: ReservationStatus::Held,
        };
        let parcel = Parcel {
            id: parcel_id,
            merchant,
            reservation_id: id.clone(),
            order_id: request.order_id,
            station_id: reservation.station_id.clone(),
            compartment_id: reservation.compartment_id.clone(),
            spec: request.parcel,
            tier: request.tier,
            status: ParcelStatus::Reserved,
            reserved_at: tx.now,
            stored_at: None,
            pickup_expires_at: None,
            picked_up_at: None,
            expired_at: None,
            collected_at: None,
            cancelled_at: None,
            code_hash: None,
            recipient: request.recipient,
            code_message: None,
        };
        RESERVATIONS_V1.put(&mut tx.reservations, id.as_str(), &reservation)?;
        tx.put_parcel(&parcel)?;
        if let Some(key) = request.idempotency {
            let seen = IdempotencyRecord {
                fingerprint: key.fingerprint,
                answer: Some(reservation.clone()),
                return_id: None,
                message_id: None,
                created_at: tx.now,
            };
            IDEMPOTENCY_V1.put(&mut tx.keys, key.key.as_str(), &seen)?;
            self.index.key_deadlines.insert((tx.now, key.key));
        }
        self.index
            .hold_deadlines
            .insert((reservation.hold_until, id.clone()));
        self.log(
            tx,
            Draft::new(request.actor, "reserve", id.as_str(), "ok").decided_by(request.decided_by),
        )?;
        Ok(Reserved {
            reservation,
            replayed: false,
        })
    }
}
