//! Alerts raised and resolved: what one assessment of a locker's telemetry changed (new alerts
//! opened, those whose reading came back clean resolved), and an operator acknowledging or
//! resolving one, each with its access-log entry.

use crate::access_log::Draft;
use crate::alerts::AlertDraft;
use crate::tables::{ALERTS_V1, OPEN_ALERTS_V1};
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store, StoreError, conflict, new_id};
use lockergrid_model::{Actor, AlertEvent, AlertRecord, AlertStatus};

/// What [`Store::record_alerts`] changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertChanges {
    /// The alerts opened now.
    pub raised: Vec<AlertRecord>,
    /// The alerts resolved now.
    pub resolved: Vec<AlertRecord>,
}

impl Store {
    /// Opens each of `raise` that is not open already and resolves the open alerts of `resolve`
    /// (ids), in one transaction.
    pub async fn record_alerts(
        &self,
        raise: Vec<AlertDraft>,
        resolve: Vec<String>,
        actor: Actor,
    ) -> Result<AlertChanges, StoreError> {
        self.write(move |w, tx| w.record_alerts(tx, raise, resolve, &actor))
            .await
    }

    /// An operator acknowledges or resolves alert `id`.
    pub async fn change_alert(
        &self,
        id: String,
        event: AlertEvent,
        actor: Actor,
    ) -> Result<AlertRecord, ChangeError> {
        self.write(move |w, tx| w.change_alert(tx, &id, event, actor))
            .await
    }
}

impl Writer {
    pub(crate) fn record_alerts(
        &mut self,
        tx: &mut Tx<'_>,
        raise: Vec<AlertDraft>,
        resolve: Vec<String>,
        actor: &Actor,
    ) -> Result<AlertChanges, StoreError> {
        let mut changes = AlertChanges::default();
        for id in resolve {
            if let Some(alert) = self.end_alert(tx, &id, AlertEvent::Resolved)? {
                let entry = Draft::new(
                    actor.clone(),
                    "alert_resolved",
                    &id,
                    "reading back to normal",
                );
                self.log(tx, entry)?;
                changes.resolved.push(alert);
            }
        }
        for draft in raise {
            let key = AlertRecord::open_key(&draft.station, &draft.source, &draft.code);
            if OPEN_ALERTS_V1.get(&tx.open_alerts, key.as_str())?.is_some() {
                continue;
            }
            let alert = AlertRecord {
                id: new_id("alr"),
                station: draft.station,
                source: draft.source,
                code: draft.code,
                severity: draft.severity,
                message: draft.message,
                status: AlertStatus::Open,
                opened_at: tx.now,
                acknowledged: None,
                resolved_at: None,
                decided_by: draft.decided_by,
            };
            ALERTS_V1.put(&mut tx.alerts, alert.id.as_str(), &alert)?;
            OPEN_ALERTS_V1.put(&mut tx.open_alerts, key.as_str(), &alert.id)?;
            let outcome = format!(
                "{} {}: {}",
                alert.severity.as_str(),
                alert.code,
                alert.message
            );
            let entry = Draft::new(
                actor.clone(),
                "alert_raised",
                alert.station.as_str(),
                &outcome,
            )
            .decided_by(alert.decided_by.clone());
            self.log(tx, entry)?;
            changes.raised.push(alert);
        }
        Ok(changes)
    }

    pub(crate) fn change_alert(
        &mut self,
        tx: &mut Tx<'_>,
        id: &str,
        event: AlertEvent,
        actor: Actor,
    ) -> Result<AlertRecord, ChangeError> {
        let mut alert = ALERTS_V1
            .get(&tx.alerts, id)?
            .ok_or_else(|| ChangeError::NotFound {
                kind: "alert",
                id: id.to_owned(),
            })?;
        let status = alert
            .status
            .apply(event)
            .map_err(|e| conflict("alert", id, e.from))?;
        let alert = match event {
            AlertEvent::Resolved => self.end_alert(tx, id, event)?.unwrap_or(alert),
            AlertEvent::Acknowledged => {
                alert.status = status;
                alert.acknowledged = Some((actor.subject.clone(), tx.now));
                ALERTS_V1.put(&mut tx.alerts, id, &alert)?;
                alert
            }
        };
        let action = match event {
            AlertEvent::Acknowledged => "alert_acknowledged",
            AlertEvent::Resolved => "alert_resolved",
        };
        self.log(tx, Draft::new(actor, action, id, "by an operator"))?;
        Ok(alert)
    }

    /// Resolves an open alert: out of the open index, status and time on its record; `None`
    /// when it is not open.
    fn end_alert(
        &mut self,
        tx: &mut Tx<'_>,
        id: &str,
        event: AlertEvent,
    ) -> Result<Option<AlertRecord>, StoreError> {
        let Some(mut alert) = ALERTS_V1.get(&tx.alerts, id)? else {
            return Ok(None);
        };
        let Ok(status) = alert.status.apply(event) else {
            return Ok(None);
        };
        alert.status = status;
        alert.resolved_at = Some(tx.now);
        ALERTS_V1.put(&mut tx.alerts, id, &alert)?;
        let key = AlertRecord::open_key(&alert.station, &alert.source, &alert.code);
        tx.open_alerts.remove(key.as_str())?;
        Ok(Some(alert))
    }
}
