//! Conversions between the domain types and the WIT types of the plugin worlds.

use super::bindings::reservation_policy::lockergrid::plugin::types as wit;
use crate::ranking::Candidate;
use crate::store::records::StationKind;
use lockergrid_protocol::{ParcelSpec, Size, Tier};

impl From<Size> for wit::Size {
    fn from(s: Size) -> wit::Size {
        match s {
            Size::Small => wit::Size::Small,
            Size::Medium => wit::Size::Medium,
            Size::Large => wit::Size::Large,
            Size::Oversized => wit::Size::Oversized,
        }
    }
}

impl From<Tier> for wit::Tier {
    fn from(t: Tier) -> wit::Tier {
        match t {
            Tier::Standard => wit::Tier::Standard,
            Tier::Prime => wit::Tier::Prime,
            Tier::Business => wit::Tier::Business,
        }
    }
}

impl From<StationKind> for wit::StationKind {
    fn from(k: StationKind) -> wit::StationKind {
        match k {
            StationKind::Urban => wit::StationKind::Urban,
            StationKind::Suburban => wit::StationKind::Suburban,
            StationKind::TransitHub => wit::StationKind::TransitHub,
            StationKind::Residential => wit::StationKind::Residential,
        }
    }
}

impl From<ParcelSpec> for wit::Parcel {
    fn from(p: ParcelSpec) -> wit::Parcel {
        wit::Parcel {
            length_mm: p.length_mm,
            width_mm: p.width_mm,
            height_mm: p.height_mm,
            weight_g: p.weight_g,
        }
    }
}

/// A candidate as the plugin sees it, for the size the parcel needs.
pub fn station(c: &Candidate, size: Size) -> wit::Station {
    let fitting = |f: fn(&crate::store::snapshot::SizeCount) -> u32| {
        size.and_larger().map(|s| f(&c.station.count(s))).sum()
    };
    wit::Station {
        id: c.station.record.id.to_string(),
        kind: c.station.record.kind.into(),
        distance_m: c.distance_m,
        free: fitting(|n| n.free),
        total: fitting(|n| n.total),
        utilisation: c.station.utilisation(size),
    }
}
