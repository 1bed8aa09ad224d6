//! Site rules that answer the host's fixtures (every station named `fixture-…`) and trap on
//! every other call, as rules broken by a bad release would: the host must then keep the door
//! shut, not open it.

use lockergrid_plugin_sdk::site_rules::lockergrid::plugin::types::{
    AccessAttempt, Alert, Reading, UpdateCheck,
};
use lockergrid_plugin_sdk::site_rules::{Decision, Guest, UpdateDecision};

struct Broken;

impl Guest for Broken {
    fn check_access(attempt: AccessAttempt) -> Decision {
        if attempt.station_id.starts_with("fixture-") {
            return Decision::Allow;
        }
        panic!("these site rules always fail")
    }

    fn assess(_reading: Reading) -> Vec<Alert> {
        Vec::new()
    }

    fn may_update(_check: UpdateCheck) -> UpdateDecision {
        panic!("these site rules always fail")
    }
}

lockergrid_plugin_sdk::site_rules::export_site_rules!(Broken with_types_in lockergrid_plugin_sdk::site_rules);
