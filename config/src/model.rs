//! The checked configuration: names resolved, defaults applied, `{ env }`
//! references replaced, plugin bytes read. What a running process is built from.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::kafka_security::{Compression, Security};
use super::limits::Limits;
use super::role::{Native, Role};
pub use super::secret::Secret;

use super::schema::{
    Accept, Brokers, Direction, Format, OnShutdown, OutboxDef, PoisonPolicy, RateDef, ReplyFormat,
    SinkKey, SourceMode, StartFrom, WhenExceeded,
};
use super::template::RouteTemplate;
use super::tenants::{Namespace, Quotas};

/// A checked pipeline file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from.
    pub file: PathBuf,
    /// Where clients connect.
    pub listeners: Vec<Listener>,
    /// `[kafka]`: the settings of tenants without an override.
    pub kafka: Kafka,
    /// The tenants (at least `default` when the file declares none).
    pub tenants: Vec<Tenant>,
    /// The pipelines, in file order.
    pub pipelines: Vec<Pipeline>,
    /// Settings for every plugin.
    pub plugins: PluginSettings,
    /// The admin API, when the file has an `[admin]` table.
    pub admin: Option<Admin>,
    /// The cluster this process is a node of, when the file has `[cluster]`.
    pub cluster: Option<super::cluster::Cluster>,
    /// `[[tests]]`, for `sluice test` (a running process ignores them).
    pub tests: Vec<PipelineTest>,
}

/// A `[[tests]]` block: a case run through one pipeline.
#[derive(Debug, Clone)]
pub struct PipelineTest {
    /// The case.
    pub case: super::fixture::Case,
    /// The pipeline it runs through (resolved when left out).
    pub pipeline: String,
    /// Where it is in the file.
    pub position: super::Position,
}

/// `[admin]`: where the admin REST API listens and the operator's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// The socket address to bind.
    pub address: SocketAddr,
    /// The operator's bearer token: sees and does everything.
    pub token: Secret,
}

/// A listening address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Its name.
    pub name: String,
    /// The socket address to bind.
    pub address: SocketAddr,
    /// TLS files, if it serves `wss://`.
    pub tls: Option<Tls>,
    /// Origins a browser may connect from (`None`: no check).
    pub allowed_origins: Option<Vec<String>>,
    /// Handshakes per client IP.
    pub connections_per_ip: RateDef,
    /// Connection limits and timers.
    pub limits: ListenerLimits,
}

/// A listener's connection limits and timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Open WebSocket connections at most.
    pub max_connections: usize,
    /// Time to finish the TLS handshake and send the upgrade request.
    pub handshake_timeout: Duration,
    /// TCP connections one client IP may hold before their upgrade.
    pub pending_per_ip: usize,
    /// How often the server pings (`None`: never).
    pub ping_interval: Option<Duration>,
    /// How long a ping may go unanswered.
    pub ping_timeout: Duration,
    /// Close after this long without a message either way (`None`: never).
    pub idle_timeout: Option<Duration>,
    /// The close code connections get when the process stops.
    pub on_shutdown: OnShutdown,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            handshake_timeout: Duration::from_secs(10),
            pending_per_ip: 256,
            ping_interval: Some(Duration::from_secs(30)),
            ping_timeout: Duration::from_secs(10),
            idle_timeout: None,
            on_shutdown: OnShutdown::GoingAway,
        }
    }
}

/// What a pipeline lets its clients do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionPolicy {
    /// Open connections at most (`None`: only the listener's limit).
    pub max_connections: Option<usize>,
    /// Largest client message, in bytes.
    pub max_message_size: usize,
    /// Which messages clients may send.
    pub accept: Accept,
    /// Client messages per connection.
    pub message_rate: Option<MessageRate>,
    /// Subprotocols spoken, preferred first.
    pub subprotocols: Vec<String>,
    /// Refuse clients that offer none of them.
    pub require_subprotocol: bool,
    /// Negotiate permessage-deflate with clients that offer it.
    pub compression: bool,
    /// How long after its principal's `exp` claim a connection is closed
    /// (`None`: never).
    pub token_expiry_grace: Option<std::time::Duration>,
}

impl Default for ConnectionPolicy {
    fn default() -> Self {
        Self {
            max_connections: None,
            max_message_size: 64 * 1024,
            accept: Accept::Any,
            message_rate: None,
            subprotocols: Vec::new(),
            require_subprotocol: false,
            compression: false,
            token_expiry_grace: Some(std::time::Duration::from_secs(30)),
        }
    }
}

/// A checked `message_rate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageRate {
    /// Sustained messages per second.
    pub per_second: u32,
    /// Messages allowed at once.
    pub burst: u32,
    /// Drop or close when over.
    pub when_exceeded: WhenExceeded,
}

/// TLS files of a listener (paths resolved against the pipeline file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Kafka connection settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kafka {
    /// The cluster.
    pub brokers: Brokers,
    /// librdkafka properties, `{ env }` references resolved.
    pub properties: BTreeMap<String, String>,
    /// TLS and SASL, if the cluster is secured.
    pub security: Option<Security>,
    /// How Sluice's producers compress.
    pub compression: Compression,
}

/// A tenant and its effective Kafka settings (`[kafka]` with its override applied).
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Its name.
    pub name: String,
    /// Its Kafka settings.
    pub kafka: Kafka,
    /// Its admin API token: sees and acts on this tenant only.
    pub admin_token: Option<Secret>,
    /// Its host, path prefix and topics.
    pub namespace: Namespace,
    /// Its limits.
    pub quotas: Quotas,
    /// Its cluster bus topic as written (`None`: the namespace's, see
    /// [`super::cluster::Cluster::bus_topic`]).
    pub cluster_topic: Option<String>,
}

/// A checked pipeline. Two are equal when they would run the same way (a
/// live reload leaves such a pipeline alone). A reload compares its parts
/// whole: [`Serving`] (with `transforms`) decides whether the endpoint is
/// rebuilt, `source` whether the consumer restarts, `router` and
/// `transforms` whether the record path gets new stages; a new key belongs
/// in one of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// Its unique name.
    pub name: String,
    /// The tenant that owns it.
    pub tenant: String,
    /// How it serves its WebSocket clients.
    pub serving: Serving,
    /// Where records come from, if anywhere.
    pub source: Option<Source>,
    /// Router plugin.
    pub router: Option<PluginConfig>,
    /// Transformer plugins, in order, each applied in its direction.
    pub transforms: Vec<Transform>,
}

/// A transformer plugin and the way it applies.
#[derive(Debug, Clone, PartialEq)]
pub struct Transform {
    /// The plugin.
    pub plugin: PluginConfig,
    /// Records to clients, client messages to the sink, or both.
    pub direction: Direction,
}

/// How a pipeline serves its WebSocket clients: where, to whom, and what
/// it does with their messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Serving {
    /// The listener it is served on.
    pub listener: String,
    /// The `Host` it answers (its tenant's; `None`: any).
    pub host: Option<String>,
    /// The WebSocket path it serves.
    pub path: RouteTemplate,
    /// Where client messages go, if anywhere.
    pub sink: Option<Sink>,
    /// Authenticator plugin.
    pub auth: Option<PluginConfig>,
    /// Handler plugin.
    pub handler: Option<PluginConfig>,
    /// Each connection's outgoing queue.
    pub outbox: OutboxDef,
    /// Greet each client with its id on connect.
    pub welcome: bool,
    /// How often the handler's `on-tick` runs (set when there is a handler).
    pub tick: Option<Duration>,
    /// What its clients may do.
    pub policy: ConnectionPolicy,
    /// Faults injected on purpose into what it sends (`None`: none).
    pub chaos: Option<super::chaos::Chaos>,
    /// Where its sessions are recorded (`None`: nowhere).
    pub record: Option<super::record::Record>,
}

/// A pipeline's Kafka source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// Topics to read (at least one).
    pub topics: Vec<String>,
    /// Consumer group.
    pub group_id: String,
    /// Where a new group begins.
    pub start: StartFrom,
    /// WebSocket frame type for records.
    pub format: Format,
    /// What happens to a record that cannot be delivered.
    pub on_poison: PoisonPolicy,
    /// How processes share the topics.
    pub mode: SourceMode,
    /// Signed positions and recovery, if enabled.
    pub resume: Option<Resume>,
}

/// `[pipelines.source.resume]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// (id, secret): the first signs, all verify.
    pub keys: Vec<(String, Secret)>,
    /// Most records one recovery reads.
    pub max_records: u64,
    /// Oldest position recovered from.
    pub max_age: Duration,
    /// How often an idle client's position moves on (`None`: never).
    pub checkpoint: Option<Duration>,
}

/// A pipeline's Kafka sink.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sink {
    /// Topic to produce to.
    pub topic: String,
    /// How produced records are keyed (`None`: no key).
    pub key: Option<SinkKey>,
    /// What a client is told about each message.
    pub reply: ReplyFormat,
    /// Further topics a handler may publish to.
    pub extra_topics: Vec<String>,
}

/// Where a plugin's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// A first-party plugin embedded in the binary.
    Builtin(String),
    /// A component file.
    File(PathBuf),
    /// A built-in plugin in Rust (`plugin = "native:<name>"`): no component.
    Native(Native),
}

/// A plugin as its pipeline names it: bytes, role, config and limits,
/// ready for the plugin host.
#[derive(Clone)]
pub struct PluginConfig {
    /// The `plugin = "..."` value as written.
    pub name: String,
    /// Where its bytes came from.
    pub source: PluginSource,
    /// The role its place in the pipeline gives it.
    pub role: Role,
    /// The component bytes (for a built-in plugin, its name).
    pub bytes: Arc<[u8]>,
    /// Hex SHA-256 of the bytes.
    pub hash: String,
    /// Its `config` table as JSON, `{ env }` references resolved (`{}` if absent).
    pub config_json: String,
    /// Its limits.
    pub limits: Limits,
}

/// Plugins are the same when their bytes (by hash), config and limits are.
impl PartialEq for PluginConfig {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.source == other.source
            && self.role == other.role
            && self.hash == other.hash
            && self.config_json == other.config_json
            && self.limits == other.limits
    }
}

/// `[plugins]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginSettings {
    /// Compile cache directory (`None`: the default location).
    pub cache_dir: Option<PathBuf>,
}

impl Config {
    /// A tenant by name.
    pub fn tenant(&self, name: &str) -> Option<&Tenant> {
        self.tenants.iter().find(|t| t.name == name)
    }

    /// A listener by name.
    pub fn listener(&self, name: &str) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.name == name)
    }
}

impl Pipeline {
    /// The transforms of records on their way to clients, in order.
    pub fn outbound_transforms(&self) -> impl Iterator<Item = &PluginConfig> {
        self.transforms
            .iter()
            .filter(|t| t.direction.outbound())
            .map(|t| &t.plugin)
    }

    /// The transforms of client messages on their way to the sink, in order.
    pub fn inbound_transforms(&self) -> impl Iterator<Item = &PluginConfig> {
        self.transforms
            .iter()
            .filter(|t| t.direction.inbound())
            .map(|t| &t.plugin)
    }

    /// Every plugin with its slot (`auth`, `router`, `transforms[0]`, ..., `handler`).
    pub fn plugins(&self) -> Vec<(String, &PluginConfig)> {
        let mut all = Vec::new();
        all.extend(self.serving.auth.iter().map(|p| ("auth".to_owned(), p)));
        all.extend(self.router.iter().map(|p| ("router".to_owned(), p)));
        all.extend(
            self.transforms
                .iter()
                .enumerate()
                .map(|(i, t)| (format!("transforms[{i}]"), &t.plugin)),
        );
        all.extend(
            self.serving
                .handler
                .iter()
                .map(|p| ("handler".to_owned(), p)),
        );
        all
    }
}

impl fmt::Debug for PluginConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The bytes would drown everything else.
        f.debug_struct("PluginConfig")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("role", &self.role)
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("hash", &self.hash)
            .field("config_json", &self.config_json)
            .field("limits", &self.limits)
            .finish()
    }
}

impl PluginConfig {
    /// The built-in plugin it names, if it is one.
    pub fn native(&self) -> Option<Native> {
        match self.source {
            PluginSource::Native(native) => Some(native),
            _ => None,
        }
    }
}
