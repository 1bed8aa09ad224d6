//! The site's rules on an access attempt, at any node. Rules bound for a station fail closed:
//! when they cannot answer (their plugin fails or is out of service) nothing opens, unless an
//! operator has given the station a bounded override (`StationRecord::site_rules_override`);
//! every door opened under one names it, its operator and reason in the access log. A station
//! its site rules locked down (a tamper alarm) opens nothing at all — code, deposit or
//! collection — until an operator clears it, but under a technician's bounded override, which
//! every door it opens names in the same way.

use crate::Node;
use lockergrid_model::{AccessAttempt, AccessDecision, DecidedBy, World};
use lockergrid_plugin_host::Decider;

/// Why the site's rules keep a door shut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The site's reason, or why its rules could not answer.
    pub reason: String,
    /// Who decided, for the access log.
    pub decided_by: DecidedBy,
}

impl Node {
    /// Whether the deployment made `compartment` of `station` climate-controlled.
    pub fn climate_controlled(
        &self,
        station: &lockergrid_protocol::StationId,
        compartment: &lockergrid_protocol::CompartmentId,
    ) -> bool {
        self.store
            .snapshot()
            .station(station)
            .is_some_and(|view| view.record.climate_controlled.contains(compartment))
    }

    /// Asks the site's rules about `attempt`; `Ok` with who allowed it (an override in force
    /// recorded as the reason the rules were passed over), or the denial.
    pub async fn check_access(&self, attempt: &AccessAttempt) -> Result<DecidedBy, Denied> {
        let station = self
            .store
            .snapshot()
            .station(&attempt.station)
            .map(|v| v.record.clone());
        let lockdown = station.as_ref().and_then(|s| s.lockdown.as_ref());
        let technician = station
            .as_ref()
            .and_then(|s| s.lockdown_override_at(attempt.at).cloned());
        if let Some(lockdown) = lockdown
            && technician.is_none()
        {
            let decided_by = lockdown
                .decided_by
                .clone()
                .unwrap_or_else(|| Decider::BuiltIn(None).decided_by(World::SiteRules));
            return Err(Denied {
                reason: format!(
                    "the station is locked down since {}: {}; no door opens until an operator clears it",
                    lockdown.since, lockdown.reason
                ),
                decided_by,
            });
        }
        let checked = self.plugins.check_access(attempt).await;
        let mut decided_by = checked.decider.decided_by(World::SiteRules);
        if let Some(o) = &technician {
            tracing::warn!(station = %attempt.station, technician = %o.by, "a door of a locked-down station opens under a technician's override");
            decided_by.fallback = Some(format!(
                "the station is locked down; opened under the override of {} until {}: {}",
                o.by, o.until, o.reason
            ));
        }
        let reason = match checked.answer {
            AccessDecision::Allow => return Ok(decided_by),
            AccessDecision::Deny(reason) => reason,
            AccessDecision::Unavailable(why) => {
                let snapshot = self.store.snapshot();
                let overridden = snapshot
                    .station(&attempt.station)
                    .and_then(|view| view.record.site_rules_override_at(attempt.at).cloned());
                let Some(o) = overridden else {
                    return Err(Denied {
                        reason: format!(
                            "{why}; the station stays shut until they answer or an operator overrides them"
                        ),
                        decided_by,
                    });
                };
                tracing::warn!(station = %attempt.station, operator = %o.by, %why, "site rules passed over by an operator's override");
                decided_by.fallback = Some(format!(
                    "{why}; opened under the override of {} until {}: {}",
                    o.by, o.until, o.reason
                ));
                return Ok(decided_by);
            }
        };
        Err(Denied { reason, decided_by })
    }
}
