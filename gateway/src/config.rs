//! The deployment file (`deploy.toml`): parsed once with unknown fields refused, then validated
//! into a [`DeployConfig`] that the rest of the gateway consumes.

use lockergrid_device_plane::{Identity, Kind};
use lockergrid_model::{StationKind, StationRecord, StationStatus};
use lockergrid_protocol::firmware::FirmwarePublicKey;
use lockergrid_protocol::{CompartmentId, GeoPoint, Size, StationId};
use lockergrid_store::StationSeed;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod notifications;
pub use notifications::{
    EmailConfig, EmailTls, NotificationConfig, PushConfig, RetryPolicy, SmsConfig, WebhookConfig,
};

/// The deployment file format this gateway reads.
pub const FORMAT_VERSION: u32 = 1;
/// Fewest and most compartments a station may have.
pub const COMPARTMENT_RANGE: std::ops::RangeInclusive<u32> = 1..=1_000;

/// Why a deployment file was refused; one line each.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this format.
    #[error("{path:?}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file parsed but says something impossible.
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployConfig {
    version: u32,
    region: RawRegion,
    gateway: RawGateway,
    #[serde(default)]
    reservation: RawReservation,
    #[serde(rename = "station")]
    stations: Vec<RawStation>,
    #[serde(default, rename = "edge")]
    edges: Vec<RawEdge>,
    #[serde(default)]
    plugins: Option<RawPlugins>,
    #[serde(default)]
    notifications: notifications::RawNotifications,
    #[serde(default)]
    firmware: RawFirmware,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFirmware {
    /// Public keys (hex) whose firmware manifests the gateway takes.
    #[serde(default)]
    trusted_keys: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugins {
    policy: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegion {
    id: String,
    name: String,
    #[serde(default)]
    utc_offset_minutes: i32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGateway {
    listen: SocketAddr,
    data_dir: PathBuf,
    #[serde(default = "default_devices")]
    devices: SocketAddr,
}

fn default_devices() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8883))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReservation {
    #[serde(default = "default_hold")]
    hold: String,
}

impl Default for RawReservation {
    fn default() -> Self {
        RawReservation {
            hold: default_hold(),
        }
    }
}

fn default_hold() -> String {
    "72h".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStation {
    id: String,
    name: String,
    kind: StationKind,
    lat: f64,
    lon: f64,
    compartments: u32,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    opening_hours: Option<String>,
    /// Climate-controlled compartments by their number within the station (`S001`, `M002`),
    /// or `["all"]`.
    #[serde(default)]
    climate_controlled: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdge {
    id: String,
    stations: Vec<String>,
    #[serde(default = "any_loopback_port")]
    devices: SocketAddr,
}

fn any_loopback_port() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// An edge node and the stations it serves.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeNode {
    /// Its id.
    pub id: String,
    /// The stations whose lockers connect through it.
    pub stations: Vec<StationId>,
    /// Where those lockers connect: its own device listener.
    pub devices: SocketAddr,
}

/// A validated deployment.
#[derive(Debug, Clone)]
pub struct DeployConfig {
    /// Region id.
    pub region_id: String,
    /// Region name.
    pub region_name: String,
    /// Where the gateway's HTTP API listens.
    pub listen: SocketAddr,
    /// Where lockers reach the gateway: MQTT over TLS 1.3 with their device certificates.
    pub devices: SocketAddr,
    /// Where the gateway keeps its state, relative to the deployment file's folder when relative.
    pub data_dir: PathBuf,
    /// The policy template the plugins are installed from on first start, if plugins are used.
    pub plugin_policy: Option<PathBuf>,
    /// Local time at the stations as minutes east of UTC (site rules' opening hours).
    pub utc_offset_minutes: i32,
    /// How long a reservation holds its compartment before the deposit.
    pub hold: Duration,
    /// The stations with their compartments.
    pub stations: Vec<StationSeed>,
    /// The edge nodes.
    pub edges: Vec<EdgeNode>,
    /// What messages to customers say about each station.
    pub station_info: BTreeMap<StationId, StationInfo>,
    /// How notifications are delivered.
    pub notifications: NotificationConfig,
    /// The keys whose firmware manifests the gateway takes (`[firmware] trusted_keys`).
    pub firmware_keys: Vec<FirmwarePublicKey>,
}

/// What a customer's message says about a station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationInfo {
    /// Its name.
    pub name: String,
    /// Where to find it.
    pub address: Option<String>,
    /// When it is open, as people read it (`24/7`, `Mo-Sa 07:00-22:00`).
    pub opening_hours: Option<String>,
}

/// Splits a station's compartments roughly 40/35/20/5 % over small, medium, large and oversized,
/// with at least one oversized compartment once there are four or more.
pub fn split_compartments(total: u32) -> [u32; 4] {
    let share = |pct: u32| (total * pct + 50) / 100;
    let small = share(40);
    let medium = share(35);
    let large = share(20);
    let oversized = total.saturating_sub(small + medium + large);
    if oversized == 0 && total >= 4 {
        return [small - 1, medium, large, 1];
    }
    [small, medium, large, oversized]
}

impl DeployConfig {
    /// The deployment's certificate authority: `<data_dir>/pki`.
    pub fn pki_dir(&self) -> PathBuf {
        self.data_dir.join("pki")
    }

    /// Reads and validates a deployment file.
    pub fn load(path: &Path) -> Result<DeployConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let raw: RawDeployConfig = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().replace('\n', " "),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        DeployConfig::resolve(raw, base)
    }

    /// Validates a deployment given as TOML text, with relative paths against `base`.
    pub fn from_toml(text: &str, base: &Path) -> Result<DeployConfig, ConfigError> {
        let raw: RawDeployConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<inline>"),
            message: e.to_string().replace('\n', " "),
        })?;
        DeployConfig::resolve(raw, base)
    }

    fn resolve(raw: RawDeployConfig, base: &Path) -> Result<DeployConfig, ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        if raw.version != FORMAT_VERSION {
            return Err(invalid(format!(
                "deployment version {} is not supported; this gateway reads version {FORMAT_VERSION}",
                raw.version
            )));
        }
        if raw.region.utc_offset_minutes.abs() > 14 * 60 {
            return Err(invalid(format!(
                "region.utc_offset_minutes {} is outside -840..=840",
                raw.region.utc_offset_minutes
            )));
        }
        let hold = humantime::parse_duration(&raw.reservation.hold)
            .map_err(|e| invalid(format!("reservation.hold {:?}: {e}", raw.reservation.hold)))?;
        let station_info = raw
            .stations
            .iter()
            .filter_map(|s| {
                let id = StationId::new(s.id.clone()).ok()?;
                let info = StationInfo {
                    name: s.name.clone(),
                    address: s.address.clone(),
                    opening_hours: s.opening_hours.clone(),
                };
                Some((id, info))
            })
            .collect();
        let notifications = raw.notifications.resolve(base)?;
        let stations = raw
            .stations
            .into_iter()
            .map(resolve_station)
            .collect::<Result<Vec<_>, _>>()?;
        let mut seen = BTreeSet::new();
        for s in &stations {
            if !seen.insert(s.record.id.clone()) {
                return Err(invalid(format!(
                    "station {:?} is listed twice",
                    s.record.id
                )));
            }
        }
        let edges = raw
            .edges
            .into_iter()
            .map(|e| resolve_edge(e, &seen))
            .collect::<Result<Vec<_>, _>>()?;
        check_edges(&edges)?;
        Ok(DeployConfig {
            region_id: raw.region.id,
            region_name: raw.region.name,
            listen: raw.gateway.listen,
            devices: raw.gateway.devices,
            data_dir: base.join(raw.gateway.data_dir),
            plugin_policy: raw.plugins.map(|p| base.join(p.policy)),
            utc_offset_minutes: raw.region.utc_offset_minutes,
            hold,
            stations,
            edges,
            station_info,
            notifications,
            firmware_keys: raw
                .firmware
                .trusted_keys
                .iter()
                .map(|k| {
                    FirmwarePublicKey::from_hex(k).ok_or_else(|| {
                        ConfigError::Invalid(format!(
                            "[firmware] trusted_keys: {k:?} is not an Ed25519 public key in hex"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        })
    }
}

fn resolve_station(raw: RawStation) -> Result<StationSeed, ConfigError> {
    let id = StationId::new(raw.id.clone())
        .map_err(|e| ConfigError::Invalid(format!("station id {:?}: {e}", raw.id)))?;
    let location = GeoPoint::new(raw.lat, raw.lon)
        .map_err(|e| ConfigError::Invalid(format!("station {id}: {e}")))?;
    if !COMPARTMENT_RANGE.contains(&raw.compartments) {
        return Err(ConfigError::Invalid(format!(
            "station {id}: {} compartments is outside {COMPARTMENT_RANGE:?}",
            raw.compartments
        )));
    }
    let compartments = split_compartments(raw.compartments);
    let climate_controlled = climate(&id, &raw.climate_controlled, compartments)?;
    Ok(StationSeed {
        record: StationRecord {
            id,
            name: raw.name,
            kind: raw.kind,
            location,
            status: StationStatus::Active,
            site_rules_override: None,
            lockdown: None,
            climate_controlled,
        },
        compartments,
    })
}

/// The compartments `names` (`S001`, `M002`, or `all`) are at station `id`, each checked to
/// exist.
fn climate(
    id: &StationId,
    names: &[String],
    counts: [u32; 4],
) -> Result<BTreeSet<CompartmentId>, ConfigError> {
    let every = || {
        Size::ALL.into_iter().flat_map(move |size| {
            (1..=counts[size.index()])
                .filter_map(move |n| CompartmentId::numbered(id.as_str(), size, n).ok())
        })
    };
    if names == ["all"] {
        return Ok(every().collect());
    }
    names
        .iter()
        .map(|name| {
            let wanted = format!("{id}:{name}");
            every().find(|c| c.as_str() == wanted).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "station {id}: climate_controlled names {name:?}, which it does not have"
                ))
            })
        })
        .collect()
}

fn resolve_edge(raw: RawEdge, known: &BTreeSet<StationId>) -> Result<EdgeNode, ConfigError> {
    let stations = raw
        .stations
        .iter()
        .map(|s| match StationId::new(s.clone()) {
            Ok(id) if known.contains(&id) => Ok(id),
            _ => Err(ConfigError::Invalid(format!(
                "edge {:?} serves unknown station {s:?}",
                raw.id
            ))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(EdgeNode {
        id: raw.id,
        stations,
        devices: raw.devices,
    })
}

/// Each edge node has a usable, unique id, and a station is served by at most one.
fn check_edges(edges: &[EdgeNode]) -> Result<(), ConfigError> {
    let mut ids = BTreeSet::new();
    let mut served = BTreeMap::new();
    for edge in edges {
        if Identity::new(Kind::Edge, &edge.id).is_err() {
            return Err(ConfigError::Invalid(format!(
                "edge id {:?} is not a valid device id",
                edge.id
            )));
        }
        if !ids.insert(edge.id.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "edge {:?} is listed twice",
                edge.id
            )));
        }
        for station in &edge.stations {
            if let Some(other) = served.insert(station.clone(), edge.id.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "station {station:?} is served by edges {other:?} and {:?}",
                    edge.id
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
