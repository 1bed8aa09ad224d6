//! The `Deployment` builder the end-to-end tests and benchmarks start Lockergrid with: a real
//! gateway on a loopback socket over a real redb file in a temporary directory.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let running = lockergrid_tests::Deployment::new().station("st-a", 30).start().await?;
//! let token = running.token("checkout", lockergrid_gateway::auth::Role::Checkout, &[])?;
//! # Ok(()) }
//! ```

pub mod mail;
pub mod receiver;
pub mod relay;
pub mod sms;

use anyhow::Context;
use lockergrid_edge::RunningEdge;
use lockergrid_gateway::api::Limits;
use lockergrid_gateway::auth::Role;
use lockergrid_gateway::config;
use lockergrid_gateway::edge::EdgeLaunch;
use lockergrid_gateway::run::{self, GatewayOptions, RunningGateway};
use lockergrid_gateway::secrets::Secrets;
use lockergrid_gateway::simulated::{self, SimulatedLocker};
use lockergrid_model::Actor;
pub use lockergrid_model::LeasePool;
use lockergrid_model::{Clock, ManualClock, SystemClock};
use lockergrid_model::{PluginSigner, PolicyFile};
use lockergrid_protocol::{
    CompartmentId, OrderId, ParcelId, ParcelSpec, PickupCode, StationId, Tier,
};
use lockergrid_store::{ReserveRequest, Target};
use relay::Relay;
use serde_json::{Value, json};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// What to start.
#[derive(Default)]
pub struct Deployment {
    stations: Vec<(String, u32, f64)>,
    /// Climate-controlled compartments by station, as deploy.toml names them (`S001`).
    climate: Vec<(String, Vec<String>)>,
    clock: Option<ManualClock>,
    hold: Option<String>,
    limits: Option<Limits>,
    without_plugins: bool,
    lease: Option<LeasePool>,
    lockers: Option<Duration>,
    edges: Vec<(String, Vec<String>, SocketAddr)>,
    mail: Option<String>,
    sms: Option<sms::Section>,
    settings: Vec<(String, String, toml::Value)>,
    integrators: Vec<(String, String, String)>,
    firmware_keys: Vec<String>,
}

impl Deployment {
    /// An empty deployment.
    pub fn new() -> Deployment {
        Deployment::default()
    }

    /// Adds an urban station with `compartments` compartments (split 40/35/20/5 %), placed 1 km
    /// east of the previous one.
    pub fn station(mut self, id: &str, compartments: u32) -> Deployment {
        let lon = 4.89 + 0.0147 * self.stations.len() as f64;
        self.stations.push((id.to_owned(), compartments, lon));
        self
    }

    /// Makes compartments of `station` climate-controlled (`["S001"]`, or `["all"]`).
    pub fn climate(mut self, station: &str, compartments: &[&str]) -> Deployment {
        let names = compartments.iter().map(|c| (*c).to_owned()).collect();
        self.climate.push((station.to_owned(), names));
        self
    }

    /// Runs the gateway on a clock the test moves.
    pub fn clock(mut self, clock: ManualClock) -> Deployment {
        self.clock = Some(clock);
        self
    }

    /// Sets the reservation hold, e.g. `"1h"`.
    pub fn hold(mut self, hold: &str) -> Deployment {
        self.hold = Some(hold.to_owned());
        self
    }

    /// Runs without plugins: every decision is the built-in one.
    pub fn without_plugins(mut self) -> Deployment {
        self.without_plugins = true;
        self
    }

    /// Sets the pool edge nodes lease at each of their stations (the repository's policy with
    /// this `[lease]`).
    pub fn lease(mut self, pool: LeasePool) -> Deployment {
        self.lease = Some(pool);
        self
    }

    /// Starts a simulated locker for every station (in this process, over TLS, with its own
    /// certificate) sending heartbeats every `heartbeat`; `start` returns once the gateway has
    /// heard from all of them.
    pub fn lockers(mut self, heartbeat: Duration) -> Deployment {
        self.lockers = Some(heartbeat);
        self
    }

    /// Adds an edge node serving `stations` (already added); `start` starts it in this process
    /// and returns once the gateway has seen it hold the newest version of its records.
    pub fn edge(mut self, id: &str, stations: &[&str]) -> Deployment {
        let stations = stations.iter().map(|s| (*s).to_owned()).collect();
        // A fixed port, so the edge node's lockers find it again after the test restarts it.
        let devices = fixed_port().expect("a free loopback port");
        self.edges.push((id.to_owned(), stations, devices));
        self
    }

    /// Sets `key` of every binding of plugin `plugin` in the policy the deployment installs.
    pub fn setting(mut self, plugin: &str, key: &str, value: impl Into<toml::Value>) -> Deployment {
        self.settings
            .push((plugin.to_owned(), key.to_owned(), value.into()));
        self
    }

    /// Tells `merchant`'s integration, `receiver`, about its parcels and returns.
    pub fn integrator(mut self, merchant: &str, receiver: &receiver::Receiver) -> Deployment {
        self.integrators.push((
            merchant.to_owned(),
            receiver.url(&format!("merchants/{merchant}")),
            receiver.secret().to_owned(),
        ));
        self
    }

    /// Sends e-mail through `server`.
    pub fn mail(mut self, server: &mail::MailServer) -> Deployment {
        self.mail = Some(server.config());
        self
    }

    /// Sends SMS through `provider`; its status callbacks reach the gateway on a port fixed
    /// before the start.
    pub fn sms(mut self, provider: &sms::SmsProvider) -> Deployment {
        self.sms = Some(provider.section());
        self
    }

    /// Sets the API's limits.
    pub fn limits(mut self, limits: Limits) -> Deployment {
        self.limits = Some(limits);
        self
    }

    /// The repository's default plugin policy, which every test deployment installs.
    pub fn policy_template() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/default.toml")
    }

    /// The deployment file this builder describes, with the plugin policy template `policy`.
    fn toml(&self, policy: &std::path::Path, dir: &std::path::Path) -> anyhow::Result<String> {
        // SMS status callbacks need the gateway's address before it starts.
        let listen = match &self.sms {
            Some(_) => fixed_port()?,
            None => SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let mut text = format!(
            "version = 1\n[region]\nid = \"test\"\nname = \"Test\"\n[gateway]\nlisten = \"{listen}\"\ndevices = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[reservation]\nhold = \"{}\"\n",
            self.hold.as_deref().unwrap_or("72h")
        );
        let _ = write!(
            text,
            "[notifications]\nretry_base = \"20ms\"\nretry_max = \"200ms\"\nattempts_per_step = 3\n\
             [notifications.push]\nsecret_file = {:?}\n",
            dir.join(APP_SECRET)
        );
        if let Some(mail) = &self.mail {
            text.push_str(mail);
        }
        if !self.firmware_keys.is_empty() {
            let _ = writeln!(text, "[firmware]\ntrusted_keys = {:?}", self.firmware_keys);
        }
        for (merchant, url, secret) in &self.integrators {
            let file = dir.join(format!("webhook-{merchant}"));
            std::fs::write(&file, format!("{secret}\n"))?;
            let _ = write!(
                text,
                "[[notifications.webhook]]\nmerchant = {merchant:?}\nurl = {url:?}\nsecret_file = {file:?}\n"
            );
        }
        if let Some(sms) = &self.sms {
            text.push_str(&sms.config(dir, &format!("http://{listen}"))?);
        }
        if !self.without_plugins {
            let _ = writeln!(
                text,
                "[plugins]\npolicy = {:?}",
                policy.display().to_string()
            );
        }
        for (id, n, lon) in &self.stations {
            let _ = write!(
                text,
                "[[station]]\nid = \"{id}\"\nname = \"{id}\"\nkind = \"urban\"\nlat = 52.37\nlon = {lon}\ncompartments = {n}\n"
            );
            if let Some((_, climate)) = self.climate.iter().find(|(s, _)| s == id) {
                let _ = writeln!(text, "climate_controlled = {climate:?}");
            }
        }
        for (id, stations, devices) in &self.edges {
            let _ = write!(
                text,
                "[[edge]]\nid = \"{id}\"\nstations = {stations:?}\ndevices = \"{devices}\"\n"
            );
        }
        Ok(text)
    }

    /// Trusts firmware manifests signed by this public key (hex), at the gateway and its lockers.
    pub fn firmware_key(mut self, public_hex: &str) -> Deployment {
        self.firmware_keys.push(public_hex.to_owned());
        self
    }

    /// Starts the gateway in a fresh temporary directory.
    pub async fn start(self) -> anyhow::Result<Running> {
        let dir = tempfile::tempdir()?;
        let policy = if self.lease.is_some() || !self.settings.is_empty() {
            let mut policy = PolicyFile::parse(&std::fs::read_to_string(Self::policy_template())?)?;
            if let Some(pool) = self.lease {
                policy.lease = pool;
            }
            for (plugin, key, value) in &self.settings {
                for binding in policy.plugins.iter_mut().filter(|b| &b.name == plugin) {
                    binding.settings.insert(key.clone(), value.clone());
                }
            }
            let path = dir.path().join("policy-template.toml");
            std::fs::write(&path, policy.to_toml())?;
            path
        } else {
            Self::policy_template()
        };
        let app = receiver::Receiver::start().await?;
        app.secret_file(dir.path(), APP_SECRET)?;
        let deployment =
            config::DeployConfig::from_toml(&self.toml(&policy, dir.path())?, dir.path())?;
        let clock: Arc<dyn Clock> = match &self.clock {
            Some(c) => Arc::new(c.clone()),
            None => Arc::new(SystemClock),
        };
        let options = GatewayOptions {
            clock,
            limits: self.limits.unwrap_or_default(),
            sweep_every: Duration::from_millis(50),
            ..GatewayOptions::default()
        };
        let gateway = run::start(&deployment, options).await?;
        let mut running = Running {
            deployment,
            base: format!("http://{}", gateway.addr),
            gateway,
            lockers: Vec::new(),
            edges: Vec::new(),
            uplinks: Vec::new(),
            http: reqwest::Client::new(),
            app,
            _dir: dir,
        };
        let operator = running.token("deployment", Role::Operator, &[])?;
        for (id, _, _) in &self.edges {
            let relay = Relay::start(running.gateway.devices_addr).await?;
            running.uplinks.push((id.clone(), relay));
            let edge = running.start_edge(id).await?;
            running.edges.push(edge);
            running
                .edge_until(id, |e| e["connected"] == true && e["lag"] == 0)
                .await?;
        }
        if let Some(heartbeat) = self.lockers {
            let edges: Vec<(&str, &RunningEdge)> = self
                .edges
                .iter()
                .map(|(id, _, _)| id.as_str())
                .zip(&running.edges)
                .collect();
            running.lockers = simulated::start_deployment(
                &running.deployment,
                &running.gateway.data_dir,
                running.gateway.simulation(heartbeat)?,
                &edges,
            )
            .await?;
        }
        for locker in &running.lockers {
            let station = locker.station.as_str();
            running
                .locker_until(station, |s| s["connected"] == true)
                .await?;
            let health = format!("{}/v1/stations/{station}/health", running.base);
            running
                .get_until(&health, &operator, |h| h["online"] == true)
                .await?;
        }
        Ok(running)
    }
}

/// The file in the deployment's directory with the customer app's webhook secret.
const APP_SECRET: &str = "app-webhook-secret";

/// A started deployment.
pub struct Running {
    /// The gateway.
    pub gateway: RunningGateway,
    /// The deployment it runs.
    pub deployment: config::DeployConfig,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The simulated lockers, if the deployment asked for them.
    pub lockers: Vec<SimulatedLocker>,
    /// The edge nodes, in the order the deployment added them.
    pub edges: Vec<RunningEdge>,
    /// Each edge node's uplink runs through a relay the test can cut, by edge id.
    pub uplinks: Vec<(String, Relay)>,
    /// A client for it.
    pub http: reqwest::Client,
    /// The customer app's backend: every customer of [`Running::reserve`] is reached here.
    pub app: receiver::Receiver,
    _dir: TempDir,
}

fn edge_in(body: &Value, id: &str) -> Option<Value> {
    body["edges"]
        .as_array()?
        .iter()
        .find(|e| e["id"] == id)
        .cloned()
}

/// The gateway's clock, for an edge node in the same test.
struct FollowStore(lockergrid_store::Store);

impl Clock for FollowStore {
    fn now(&self) -> lockergrid_protocol::Timestamp {
        self.0.now()
    }
}

/// A loopback address whose port is free now and that no socket bound to port 0 can take
/// before the caller binds it: the port is drawn at random from below the kernel's ephemeral
/// range, where only another caller of this function could draw it too. A probe bound to port 0
/// and closed again hands out a port the kernel may give the next socket any test binds.
pub fn fixed_port() -> std::io::Result<SocketAddr> {
    const LOWEST: u16 = 20_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    if ephemeral <= LOWEST {
        return Err(std::io::Error::other(format!(
            "no port below the ephemeral range (it starts at {ephemeral})"
        )));
    }
    let draw = || std::net::TcpListener::bind(("127.0.0.1", rand::random_range(LOWEST..ephemeral)));
    let mut probe = draw();
    for _ in 1..64 {
        if probe.is_ok() {
            break;
        }
        probe = draw();
    }
    probe?.local_addr()
}

/// A parcel that fits a small compartment.
pub fn small_parcel() -> Value {
    json!({ "length_mm": 300, "width_mm": 200, "height_mm": 100, "weight_g": 1_200 })
}

impl Running {
    /// A token for `role` on `stations`, from the gateway's own key.
    pub fn token(&self, subject: &str, role: Role, stations: &[&str]) -> anyhow::Result<String> {
        let stations = stations
            .iter()
            .map(|s| StationId::new(*s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.gateway.token(subject, role, stations)?)
    }

    /// `POST /v1/reservations` at a station with a small parcel for a customer the deployment's
    /// app reaches ([`Running::customer`]); returns status and body.
    pub async fn reserve(
        &self,
        token: &str,
        key: &str,
        station: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let body = json!({
            "order_id": format!("order-{key}"),
            "parcel": small_parcel(),
            "tier": "standard",
            "station_id": station,
            "recipient": self.customer(key),
        });
        self.send(
            self.http
                .post(format!("{}/v1/reservations", self.base))
                .bearer_auth(token)
                .header("idempotency-key", key)
                .json(&body),
        )
        .await
    }

    /// A recipient reached through the deployment's customer app alone, at its own path.
    pub fn customer(&self, key: &str) -> Value {
        json!({
            "id": format!("customer-{key}"),
            "channels": ["push"],
            "contact": { "app_url": self.app.url(&format!("customers/{key}")) },
        })
    }

    /// The codes the customer app received for parcel or return `id` (`parcel_id` or
    /// `return_id`), oldest first, once there are at least `n`.
    pub async fn codes(&self, field: &str, id: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let ours = |h: &receiver::Hook| {
            h.status < 300 && h.body["data"][field] == id && h.body["data"]["code"].is_string()
        };
        let hooks = self
            .app
            .until(|hooks| hooks.iter().filter(|h| ours(h)).count() >= n)
            .await?;
        Ok(hooks
            .iter()
            .filter(|h| ours(h))
            .filter_map(|h| h.body["data"]["code"].as_str().map(str::to_owned))
            .collect())
    }

    /// The pickup code the customer app received for parcel `id` (the newest of `n`).
    pub async fn pickup_code(&self, id: &str) -> anyhow::Result<String> {
        let codes = self.codes("parcel_id", id, 1).await?;
        codes.last().cloned().context("a pickup code")
    }

    /// The drop-off code the customer app received for return `id`.
    pub async fn dropoff_code(&self, id: &str) -> anyhow::Result<String> {
        let codes = self.codes("return_id", id, 1).await?;
        codes.last().cloned().context("a drop-off code")
    }

    /// Sends a request and returns status and JSON body (`null` when the body is not JSON).
    pub async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let response = request.send().await.context("request failed")?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// GETs `url` with `token` until `done` holds for the body (every 20 ms, for up to 15 s) and
    /// returns that body; an error names the last body seen.
    pub async fn get_until(
        &self,
        url: &str,
        token: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (_, body) = self.send(self.http.get(url).bearer_auth(token)).await?;
            if done(&body) {
                return Ok(body);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting on {url}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stores `n` small parcels at `stations` in turn, straight through the gateway's store (a
    /// reservation and a door-less deposit each), for tests and benchmarks that need many
    /// parcels waiting; each parcel's id, pickup code and compartment.
    pub async fn stock(
        &self,
        stations: &[&str],
        n: usize,
    ) -> anyhow::Result<Vec<(ParcelId, PickupCode, CompartmentId)>> {
        let store = &self.gateway.app.store;
        let agent = Actor {
            subject: "stock".into(),
            role: "agent".into(),
        };
        let mut stocked = Vec::with_capacity(n);
        for i in 0..n {
            let request = ReserveRequest {
                order_id: OrderId::new(format!("stock-{i}"))?,
                parcel: ParcelSpec {
                    length_mm: 200,
                    width_mm: 150,
                    height_mm: 100,
                    weight_g: 800,
                },
                tier: Tier::Standard,
                target: Target::Station(StationId::new(stations[i % stations.len()])?),
                hold: Duration::from_secs(3_600),
                idempotency: None,
                actor: agent.clone(),
                decided_by: None,
                recipient: None,
            };
            let held = store.reserve(request).await?.reservation;
            let deposit = store.deposit(held.id, agent.clone(), None).await?;
            stocked.push((
                deposit.parcel.id,
                deposit.code,
                deposit.parcel.compartment_id,
            ));
        }
        Ok(stocked)
    }

    /// Stores one more small parcel at `station` the way [`Running::stock`] does, under order
    /// `key`: its id, pickup code and compartment.
    pub async fn restock(
        &self,
        station: &str,
        key: &str,
    ) -> anyhow::Result<(ParcelId, PickupCode, CompartmentId)> {
        let store = &self.gateway.app.store;
        let agent = Actor {
            subject: "stock".into(),
            role: "agent".into(),
        };
        let request = ReserveRequest {
            order_id: OrderId::new(format!("restock-{key}"))?,
            parcel: ParcelSpec {
                length_mm: 200,
                width_mm: 150,
                height_mm: 100,
                weight_g: 800,
            },
            tier: Tier::Standard,
            target: Target::Station(StationId::new(station)?),
            hold: Duration::from_secs(3_600),
            idempotency: None,
            actor: agent.clone(),
            decided_by: None,
            recipient: None,
        };
        let held = store.reserve(request).await?.reservation;
        let deposit = store.deposit(held.id, agent, None).await?;
        Ok((
            deposit.parcel.id,
            deposit.code,
            deposit.parcel.compartment_id,
        ))
    }

    /// Starts edge node `id` of the deployment in this process (its certificates issued on first
    /// start, its data and its lockers' listener address kept across starts), reporting every
    /// 100 ms on the gateway's clock.
    pub async fn start_edge(&self, id: &str) -> anyhow::Result<RunningEdge> {
        let mut launch = EdgeLaunch::new(&self.deployment, id)?;
        launch.data_dir = self.gateway.data_dir.join("edges").join(id);
        launch.gateway = self.uplink(id)?.addr();
        launch.heartbeat = Duration::from_millis(100);
        let store = self.gateway.app.store.clone();
        launch.clock = Arc::new(FollowStore(store));
        launch.enrol(&self.gateway.data_dir)?;
        launch.start().await
    }

    /// Cuts edge node `id`'s uplink and waits until both sides have noticed: the gateway shows
    /// it disconnected, and the edge node knows it decides on its own (up to 15 s each).
    pub async fn cut_uplink(&self, id: &str) -> anyhow::Result<()> {
        self.uplink(id)?.cut();
        self.edge_until(id, |e| e["connected"] == false).await?;
        let n = self
            .deployment
            .edges
            .iter()
            .position(|e| e.id == id)
            .with_context(|| format!("no edge node {id}"))?;
        let mut up = self.edges[n].connected();
        tokio::time::timeout(Duration::from_secs(15), up.wait_for(|up| !up)).await??;
        Ok(())
    }

    /// The relay edge node `id`'s uplink runs through.
    pub fn uplink(&self, id: &str) -> anyhow::Result<&Relay> {
        self.uplinks
            .iter()
            .find(|(edge, _)| edge == id)
            .map(|(_, relay)| relay)
            .with_context(|| format!("no edge node {id}"))
    }

    /// Reads the operators' view of edge node `id` until `done` holds (up to 15 s).
    pub async fn edge_until(
        &self,
        id: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let operator = self.token("deployment", Role::Operator, &[])?;
        let url = format!("{}/v1/admin/edges", self.base);
        let body = self
            .get_until(&url, &operator, |b| {
                edge_in(b, id).is_some_and(|e| done(&e))
            })
            .await?;
        edge_in(&body, id).context("edge listed")
    }

    /// Sends one line to `station`'s simulated locker's control socket and returns its answer
    /// (`ok`, `ok <json>` or `error <message>`).
    pub async fn locker(&self, station: &str, line: &str) -> anyhow::Result<String> {
        let locker = self
            .lockers
            .iter()
            .find(|l| l.station.as_str() == station)
            .with_context(|| format!("no simulated locker at {station}"))?;
        let stream = tokio::net::TcpStream::connect(locker.control).await?;
        let (read, mut write) = stream.into_split();
        write.write_all(format!("{line}\n").as_bytes()).await?;
        let mut answer = String::new();
        BufReader::new(read).read_line(&mut answer).await?;
        Ok(answer.trim_end().to_owned())
    }

    /// Asks `station`'s locker for its status until `done` holds (every 10 ms, for up to 15 s).
    pub async fn locker_until(
        &self,
        station: &str,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let answer = self.locker(station, "status").await?;
            let status: Value = answer
                .strip_prefix("ok ")
                .and_then(|json| serde_json::from_str(json).ok())
                .with_context(|| format!("locker status: {answer}"))?;
            if done(&status) {
                return Ok(status);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "gave up waiting on locker {station}: {status}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A person at `station` waits for `compartment`'s latch to release, opens the door and
    /// closes it again.
    pub async fn open_and_close(&self, station: &str, compartment: &str) -> anyhow::Result<()> {
        self.locker_until(station, |s| {
            s["unlatched"]
                .as_array()
                .is_some_and(|u| u.iter().any(|c| c == compartment))
        })
        .await?;
        for verb in ["open", "close"] {
            let answer = self
                .locker(station, &format!("{verb} {compartment}"))
                .await?;
            anyhow::ensure!(answer == "ok", "{verb} {compartment}: {answer}");
        }
        Ok(())
    }

    /// The agent's deposit of reservation `id` at a simulated locker: `POST …/deposit`, and while
    /// it waits the agent opens the released door, puts the parcel in and closes it. Returns the
    /// deposit's status and body (a refusal comes back without touching the door).
    pub async fn deposit(&self, agent: &str, id: &str) -> anyhow::Result<(u16, Value)> {
        let request = self.send(
            self.http
                .post(format!("{}/v1/reservations/{id}/deposit", self.base))
                .bearer_auth(agent),
        );
        tokio::pin!(request);
        let (status, reservation) = self
            .send(
                self.http
                    .get(format!("{}/v1/reservations/{id}", self.base))
                    .bearer_auth(agent),
            )
            .await?;
        if status != 200 {
            return request.await;
        }
        let station = reservation["station_id"].as_str().unwrap_or_default();
        let compartment = reservation["compartment_id"].as_str().unwrap_or_default();
        self.through_door(request, station, compartment).await
    }

    /// Sends `request` (an unlock that waits for its door) while a person at `station` opens
    /// and closes `compartment` once it is released; the request's answer.
    pub async fn through_door(
        &self,
        request: impl std::future::Future<Output = anyhow::Result<(u16, Value)>>,
        station: &str,
        compartment: &str,
    ) -> anyhow::Result<(u16, Value)> {
        tokio::pin!(request);
        tokio::select! {
            answer = &mut request => return answer,
            door = self.open_and_close(station, compartment) => door?,
        }
        request.await
    }

    /// A customer drops a return off at `station`: types the drop-off `code` on its keypad,
    /// opens the compartment that is released and closes it again; which compartment that was.
    pub async fn drop_off(&self, station: &str, code: &str) -> anyhow::Result<String> {
        let answer = self.locker(station, &format!("press {code}#")).await?;
        anyhow::ensure!(answer == "ok", "press: {answer}");
        let status = self
            .locker_until(station, |s| {
                s["unlatched"].as_array().is_some_and(|u| !u.is_empty())
            })
            .await?;
        let compartment = status["unlatched"][0]
            .as_str()
            .context("an unlatched compartment")?
            .to_owned();
        self.open_and_close(station, &compartment).await?;
        Ok(compartment)
    }

    /// The deployment's own plugin-signing key, as an operator holding it would use it.
    pub fn plugin_signer(&self) -> anyhow::Result<PluginSigner> {
        let secrets = Secrets::load_or_create(&self.gateway.data_dir)?;
        Ok(PluginSigner::from_secret(secrets.plugin_signing_secret()))
    }

    /// The gateway's `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let url = format!("{}/metrics", self.base);
        Ok(self.http.get(url).send().await?.text().await?)
    }

    /// The whole access log, every page.
    pub async fn access_log(&self, operator: &str) -> anyhow::Result<Vec<Value>> {
        let mut entries = Vec::new();
        let mut from = 1;
        loop {
            let url = format!("{}/v1/admin/access-log?from={from}&limit=1000", self.base);
            let (status, page) = self.send(self.http.get(url).bearer_auth(operator)).await?;
            anyhow::ensure!(status == 200, "access log: {status} {page}");
            let batch = page["entries"].as_array().cloned().unwrap_or_default();
            if batch.is_empty() {
                return Ok(entries);
            }
            entries.extend(batch);
            from = page["next"].as_u64().context("next page")?;
        }
    }

    /// Stops the gateway.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.gateway.stop().await
    }
}

/// Every file under `dir` that contains `needle`.
pub fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_containing(&path, needle));
        } else if std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)) {
            found.push(path.display().to_string());
        }
    }
    found
}
