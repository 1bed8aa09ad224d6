//! A station's lock-down (a tamper alarm its site rules lock it down for): set with the station
//! taken out of service, a technician's bounded override given or taken back, and cleared by an
//! operator, who puts the station back in service — each with its access-log entry, in one
//! transaction. The station record carries it, so edge nodes keep the doors shut too.

use crate::access_log::Draft;
use crate::tables::STATIONS_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store};
use lockergrid_model::StationStatus;
use lockergrid_model::{Actor, DecidedBy, Lockdown, SiteRulesOverride, StationRecord};
use lockergrid_protocol::StationId;

/// A change to a station's lock-down.
#[derive(Debug, Clone)]
pub enum LockdownChange {
    /// Lock it down (no change when it is already).
    Begin {
        /// The alert that causes it.
        reason: String,
        /// The site rules that decided it.
        decided_by: Option<DecidedBy>,
    },
    /// Give (or with `None` take back) a technician's leave to open doors while it lasts.
    Technician(Option<SiteRulesOverride>),
    /// End it; the station is back in service.
    Clear {
        /// Why, for the access log.
        reason: String,
    },
}

impl Store {
    /// Applies `change` to `station`'s lock-down; the station as it is then.
    pub async fn change_lockdown(
        &self,
        station: StationId,
        change: LockdownChange,
        actor: Actor,
    ) -> Result<StationRecord, ChangeError> {
        self.write(move |w, tx| w.change_lockdown(tx, &station, change, actor))
            .await
    }
}

impl Writer {
    pub(crate) fn change_lockdown(
        &mut self,
        tx: &mut Tx<'_>,
        station: &StationId,
        change: LockdownChange,
        actor: Actor,
    ) -> Result<StationRecord, ChangeError> {
        let index = self
            .index
            .stations
            .get_mut(station)
            .ok_or_else(|| ChangeError::NotFound {
                kind: "station",
                id: station.to_string(),
            })?;
        let record = &mut index.record;
        let not_locked = || ChangeError::Conflict {
            kind: "station",
            id: station.to_string(),
            status: "not locked down".into(),
        };
        let (action, outcome) = match change {
            LockdownChange::Begin { .. } if record.lockdown.is_some() => {
                return Ok(record.clone());
            }
            LockdownChange::Begin { reason, decided_by } => {
                record.lockdown = Some(Lockdown {
                    since: tx.now,
                    reason: reason.clone(),
                    decided_by,
                    technician: None,
                });
                record.status = StationStatus::OutOfService;
                ("station_locked_down", reason)
            }
            LockdownChange::Technician(leave) => {
                let lockdown = record.lockdown.as_mut().ok_or_else(not_locked)?;
                let outcome = match &leave {
                    Some(o) => format!("doors may open until {}: {}", o.until, o.reason),
                    None => "doors stay shut again".to_owned(),
                };
                lockdown.technician = leave;
                ("lockdown_override", outcome)
            }
            LockdownChange::Clear { reason } => {
                record.lockdown.take().ok_or_else(not_locked)?;
                if record.status == StationStatus::OutOfService {
                    record.status = StationStatus::Active;
                }
                ("lockdown_cleared", reason)
            }
        };
        let record = record.clone();
        STATIONS_V1.put(&mut tx.stations, station.as_str(), &record)?;
        tx.dirty.insert(station.clone());
        self.log(tx, Draft::new(actor, action, station.as_str(), &outcome))?;
        Ok(record)
    }
}
