//! The `pipeline.toml` schema, as written: strict serde structs whose field
//! docs show the TOML syntax. [`super::load`] and [`super::validate`] turn
//! them into the checked [`super::Config`].
//!
//! The file's top-level keys are `listeners`, `kafka`, `tenants`,
//! `pipelines`, `plugins`, `admin`, `cluster` and `tests`; each table and each array element is
//! read on its own, so one bad entry does not hide the errors in another.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_spanned::Spanned;

use super::env::ConfigValue;
pub use super::kafka_security::{Compression, SaslMechanism, SecurityDef, SecurityProtocol};
use super::limits::Limits;

/// The top-level keys a pipeline file may have.
pub const TOP_LEVEL_KEYS: [&str; 8] = [
    "listeners",
    "kafka",
    "tenants",
    "pipelines",
    "plugins",
    "admin",
    "cluster",
    "tests",
];

/// `[[tests]]`: a case `sluice test` runs through a pipeline's real plugins
/// (`sluice run` ignores them): `name = "..."`, `pipeline = "ticks"` (may be
/// left out when there is one pipeline), one input (`record = { ... }`, or
/// `handshake = { ... }` and, for a handler, `message = { ... }` and
/// `close = { ... }`) and `expect = { ... }`. See docs/testing-pipelines.md.
pub type TestDef = super::fixture::Case;

/// `[[listeners]]`: an address WebSocket clients connect to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerDef {
    /// `name = "public"`
    pub name: Spanned<String>,
    /// `address = "0.0.0.0:8080"` (an IP address and port; or only the IP address, with `port`)
    pub address: Spanned<String>,
    /// `port = { env = "WS_PORT", default = 80 }`: the port, when `address` is only an IP
    /// address (handy when a port comes from the environment)
    pub port: Option<Spanned<u16>>,
    /// `tls = { cert = "certs/server.pem", key = "certs/server.key" }` (paths relative to this file)
    pub tls: Option<Spanned<TlsDef>>,
    /// `allowed_origins = ["https://app.example.com"]` (absent: any Origin, or none, is accepted)
    pub allowed_origins: Option<Vec<Spanned<String>>>,
    /// `connections_per_ip = { per_second = 20, burst = 50 }`: handshakes one client IP may
    /// open (default 20 per second, bursts of 50); more get 429
    pub connections_per_ip: Option<Spanned<RateDef>>,
    /// `max_connections = 10000`: open WebSocket connections on this listener (default 10000);
    /// more get 503 before the upgrade
    pub max_connections: Option<Spanned<u64>>,
    /// `handshake_timeout_ms = 10000`: how long a client has to finish its TLS handshake and
    /// send its whole upgrade request (default 10000)
    pub handshake_timeout_ms: Option<Spanned<u64>>,
    /// `pending_per_ip = 256`: TCP connections one client IP may hold open before their
    /// upgrade (default 256); more are closed at once. The listener as a whole holds at most
    /// `max_connections` such connections: past that it stops accepting until one finishes
    pub pending_per_ip: Option<Spanned<u64>>,
    /// `ping_interval_ms = 30000`: the server pings each client this often; 0 never (default 30000)
    pub ping_interval_ms: Option<Spanned<u64>>,
    /// `ping_timeout_ms = 10000`: a client that has sent nothing since a ping this long ago is
    /// dropped (default 10000)
    pub ping_timeout_ms: Option<Spanned<u64>>,
    /// `idle_timeout_ms = 0`: close a connection (1000, "idle") when no message went either way
    /// for this long; 0 never (default 0)
    pub idle_timeout_ms: Option<Spanned<u64>>,
    /// `on_shutdown = "going-away"` (default: close with 1001) or `"restart"` (1012: the
    /// service is restarting, clients should reconnect shortly; for rolling deploys)
    #[serde(default)]
    pub on_shutdown: OnShutdown,
}

/// The close code connections get when the process stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnShutdown {
    /// 1001 Going Away.
    #[default]
    GoingAway,
    /// 1012 Service Restart.
    Restart,
}

impl OnShutdown {
    /// The close code and reason.
    pub fn close(self) -> (u16, &'static str) {
        match self {
            OnShutdown::GoingAway => (1001, "server shutting down"),
            OnShutdown::Restart => (1012, "server restarting"),
        }
    }
}

/// A rate: a steady number per second plus a burst allowance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateDef {
    /// `per_second = 20` (at least 1)
    pub per_second: u32,
    /// `burst = 50` (at least 1)
    pub burst: u32,
}

impl Default for RateDef {
    fn default() -> Self {
        Self {
            per_second: 20,
            burst: 50,
        }
    }
}

/// `tls = { ... }` of a listener: PEM files.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsDef {
    /// `cert = "certs/server.pem"` (the certificate chain)
    pub cert: Spanned<String>,
    /// `key = "certs/server.key"` (the private key)
    pub key: Spanned<String>,
}

/// `[kafka]`, and a tenant's `kafka = { ... }` override.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaDef {
    /// `brokers = "embedded"` (librdkafka's in-process mock cluster; the default) or `brokers = "kafka-1:9092,kafka-2:9092"`
    pub brokers: Option<Spanned<String>>,
    /// `[kafka.properties]` then `"fetch.wait.max.ms" = 10`: librdkafka settings, passed through
    /// (values may be `{ env = "NAME" }`; unquoted dotted keys work too)
    #[serde(default)]
    pub properties: BTreeMap<String, Spanned<ConfigValue>>,
    /// `security = { protocol = "sasl_ssl", mechanism = "scram-sha-512", username = "sluice",
    /// password = { env = "KAFKA_PASSWORD" }, ca = "certs/ca.pem" }`: TLS and SASL (see
    /// [`SecurityDef`]; a tenant's `security` replaces the shared one whole)
    pub security: Option<Spanned<SecurityDef>>,
    /// `compression = "zstd"`: how Sluice compresses what it produces: `none` (default),
    /// `gzip`, `snappy`, `lz4` or `zstd` (consuming reads every codec)
    pub compression: Option<Spanned<Compression>>,
}

/// Where the Kafka cluster is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Brokers {
    /// librdkafka's in-process mock cluster: no setup, nothing persists.
    Embedded,
    /// Bootstrap servers, each `host:port`.
    List(Vec<String>),
}

/// `[[tenants]]`: an owner of pipelines, with its own Kafka settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantDef {
    /// `name = "acme"` (a tenant `default` exists implicitly when none is declared)
    pub name: Spanned<String>,
    /// `kafka = { brokers = "kafka.acme:9092", properties = { "security.protocol" = "ssl" } }`
    /// (each key overrides `[kafka]`; properties are merged)
    pub kafka: Option<KafkaDef>,
    /// `admin_token = { env = "ACME_ADMIN_TOKEN" }` (or a string): a bearer token for the admin
    /// API that sees and acts on this tenant's connections and pipelines only (at least 16
    /// printable ASCII characters; needs `[admin]`)
    pub admin_token: Option<Spanned<ConfigValue>>,
    /// `host = "acme.example.com"`: its pipelines answer only handshakes whose `Host` header
    /// names it (any port; absent: any host)
    pub host: Option<Spanned<String>>,
    /// `path_prefix = "/acme"`: literal segments every one of its pipelines' paths must start
    /// with (absent: none; no other tenant's pipeline may use a path inside it)
    pub path_prefix: Option<Spanned<String>>,
    /// `topics = ["acme.*", "shared-audit"]`: the only topics its pipelines may read or write
    /// (sources, sinks, `extra_topics`, dead-letter topics); an entry ending in `*` allows
    /// every topic starting with what comes before it (absent: any topic)
    pub topics: Option<Vec<Spanned<String>>>,
    /// `[tenants.quotas]`: limits on what it may use (each absent key: no limit)
    pub quotas: Option<Spanned<QuotasDef>>,
    /// `cluster_topic = "acme.sluice-bus"`: the topic its cluster traffic (rooms, admin
    /// actions, presence) goes through (needs `[cluster]`; default
    /// `sluice.cluster.<cluster name>.<tenant>`; must be allowed by `topics`)
    pub cluster_topic: Option<Spanned<String>>,
}

/// `[tenants.quotas]`: a tenant's share of the process. Every key is
/// optional; an absent one sets no limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasDef {
    /// `max_connections = 1000`: open connections over all its pipelines; more get 503
    /// before the upgrade
    pub max_connections: Option<Spanned<u64>>,
    /// `inbound_messages_per_second = 500`: client messages over all its connections (bursts
    /// of one second's worth); over it they are dropped and counted (or the connection is
    /// closed with 1008 when its pipeline's `message_rate` says `"close"`)
    pub inbound_messages_per_second: Option<Spanned<u64>>,
    /// `outbound_deliveries_per_second = 5000`: messages queued for its clients (a record
    /// fanned out to 10 clients is 10 deliveries; bursts of one second's worth); over it they
    /// are dropped and counted
    pub outbound_deliveries_per_second: Option<Spanned<u64>>,
    /// `plugin_memory_bytes = 16777216`: the most memory any of its plugins may have (a plugin
    /// asking for more is an error; the 32 MiB default is lowered to it)
    pub plugin_memory_bytes: Option<Spanned<u64>>,
    /// `plugin_deadline_ms = 20`: the longest deadline any of its plugin calls may have (a
    /// plugin asking for more is an error; the 50 ms default is lowered to it)
    pub plugin_deadline_ms: Option<Spanned<u64>>,
    /// `plugin_cpu_share = 0.25`: the fraction of the machine's CPU time (all cores) its
    /// plugin calls may take, from 0.001 to 1; over it, its plugin threads wait before their
    /// next call (records are delayed, not lost)
    pub plugin_cpu_share: Option<Spanned<f64>>,
}

/// `[[pipelines]]`: Kafka topics in front of one WebSocket path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineDef {
    /// `name = "ticks"` (unique in the file)
    pub name: Spanned<String>,
    /// `tenant = "acme"` (default `"default"`)
    pub tenant: Option<Spanned<String>>,
    /// `listener = "public"` (may be left out when there is exactly one listener)
    pub listener: Option<Spanned<String>>,
    /// `path = "/{channel}"` (literal segments and `{name}` parameters)
    pub path: Spanned<String>,
    /// `[pipelines.source]`: the topics it reads (optional for a pipeline with a handler or
    /// a sink)
    pub source: Option<SourceDef>,
    /// `[pipelines.sink]`: the topic client messages are produced to
    pub sink: Option<SinkDef>,
    /// `[pipelines.auth]`: who may connect (an authenticator plugin)
    pub auth: Option<Spanned<PluginRef>>,
    /// `[pipelines.router]`: which channels a record goes to (a router plugin)
    pub router: Option<Spanned<PluginRef>>,
    /// `[[pipelines.transforms]]`: message transformers, applied in order, each in its
    /// `direction`
    #[serde(default)]
    pub transforms: Vec<Spanned<TransformRef>>,
    /// `[pipelines.handler]`: what an interactive endpoint does (a handler plugin)
    pub handler: Option<Spanned<PluginRef>>,
    /// `outbox = { capacity = 1024, when_full = "drop-oldest" }`: each connection's queue of
    /// outgoing messages, and what happens when a slow client fills it (`"drop-oldest"`,
    /// counted, or `"close"` with 1008)
    pub outbox: Option<Spanned<OutboxDef>>,
    /// `welcome = true`: greet each client on connect with seed 002's
    /// `{"messageType": "SYSTEM", "content": "welcome", "clientId": "...", "timestamp": "..."}`
    /// (default false)
    #[serde(default)]
    pub welcome: bool,
    /// `max_connections = 1000`: open connections on this pipeline (default: only the
    /// listener's limit); more get 503 before the upgrade
    pub max_connections: Option<Spanned<u64>>,
    /// `max_message_size = 65536`: the largest message a client may send, in bytes (default
    /// 65536); a larger one closes the connection with 1009
    pub max_message_size: Option<Spanned<u64>>,
    /// `accept = "any"`: what clients may send: `"any"` (default), `"text"`, `"binary"` or
    /// `"none"`; anything else closes the connection with 1003
    #[serde(default)]
    pub accept: Accept,
    /// `message_rate = { per_second = 50, burst = 100, when_exceeded = "drop" }`: client
    /// messages per connection (default: no limit); over it they are dropped and counted, or
    /// (`"close"`) the connection is closed with 1008
    pub message_rate: Option<Spanned<MessageRateDef>>,
    /// `[pipelines.chaos]`: faults the host injects on purpose into the messages this pipeline
    /// sends and into its connections (seed 003's chaos testing; README "Chaos")
    pub chaos: Option<Spanned<ChaosDef>>,
    /// `[pipelines.record]`: record its connections' sessions in seed 003's session format
    /// (README "Recording and replay")
    pub record: Option<Spanned<RecordDef>>,
    /// `subprotocols = ["v2.feed", "v1.feed"]`: `Sec-WebSocket-Protocol` values the pipeline
    /// speaks, preferred first; the first one the client offers is chosen
    pub subprotocols: Option<Vec<Spanned<String>>>,
    /// `require_subprotocol = true`: refuse (400) a client that offers none of `subprotocols`
    /// (default false: it connects without one)
    #[serde(default)]
    pub require_subprotocol: bool,
    /// `compression = true`: permessage-deflate (RFC 7692) with clients that offer it (default
    /// false: compressing costs CPU per message and connection)
    #[serde(default)]
    pub compression: bool,
    /// `token_expiry_grace_ms = 30000`: a connection whose principal's claims carry `exp`
    /// (jwt-auth copies the token's claims) is closed with 1008 "token expired" this long
    /// after `exp` (default 30000, jwt-auth's default clock-skew leeway); `-1`: never
    pub token_expiry_grace_ms: Option<Spanned<i64>>,
    /// `tick_ms = 1000`: how often the handler's `on-tick` runs, in milliseconds, from 10 to
    /// 3600000 (default 1000; only with a handler)
    pub tick_ms: Option<Spanned<u64>>,
}

/// `outbox = { ... }` of a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxDef {
    /// `capacity = 1024` (messages, 1 to 1000000)
    #[serde(default = "default_outbox_capacity")]
    pub capacity: usize,
    /// `when_full = "drop-oldest"` (default) or `"close"`
    #[serde(default)]
    pub when_full: FullPolicy,
}

impl OutboxDef {
    /// Frames a connection may have queued by default: a few seconds of a
    /// busy channel, and a bound on memory per slow client.
    pub const DEFAULT_CAPACITY: usize = 1024;
}

impl Default for OutboxDef {
    fn default() -> Self {
        Self {
            capacity: Self::DEFAULT_CAPACITY,
            when_full: FullPolicy::default(),
        }
    }
}

/// `[pipelines.record]`: where sessions are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordDef {
    /// `output = "recordings/{pipeline}-{connection}.json"` (relative to this file): one file per
    /// connection with `{connection}` in the name, else one per run; `{date}` is the session's
    /// start; an existing file is never overwritten (`-1`, `-2`... is added)
    pub output: Spanned<String>,
    /// `exclude_ping = true`: leave pings and pongs out (default false)
    #[serde(default)]
    pub exclude_ping: bool,
    /// `buffer = 10000`: messages waiting for the disk at most (default); more are dropped and
    /// counted (`messages_dropped_total{reason="recording"}`, the file's `metadata.dropped`)
    pub buffer: Option<Spanned<u64>>,
}

/// `[pipelines.chaos]`: every rate is a probability from 0 to 1, per outgoing message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChaosDef {
    /// `enabled = false` keeps the table but injects nothing (default true)
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// `seed = 42`: the same seed gives a connection (by its id) the same faults run after run
    /// (default: drawn at random)
    pub seed: Option<Spanned<u64>>,
    /// `disconnect_probability = 0.02`: before each outgoing message, the chance that the
    /// connection is dropped without a close frame, as a network failure would
    pub disconnect_probability: Option<Spanned<f64>>,
    /// `delay = { min_ms = 10, max_ms = 100 }`: each outgoing message waits a random time in the
    /// range; messages stay in order, so later ones wait behind it
    pub delay: Option<Spanned<DelayDef>>,
    /// `message_drop_rate = 0.01`: the chance an outgoing message is dropped
    pub message_drop_rate: Option<Spanned<f64>>,
    /// `message_duplicate_rate = 0.005`: the chance an outgoing message is sent twice
    pub message_duplicate_rate: Option<Spanned<f64>>,
    /// `message_reorder_rate = 0.005`: the chance an outgoing message is held back and sent
    /// after the next one
    pub message_reorder_rate: Option<Spanned<f64>>,
    /// `slow_consumer = { delay_ms = 1000, buffer_size = 10, drop_when_full = true }`: the
    /// connection takes one message per `delay_ms`; up to `buffer_size` wait, and when they are
    /// full new ones are dropped (`drop_when_full`, default true) or wait in the outbox, whose
    /// `when_full` then applies
    pub slow_consumer: Option<Spanned<SlowConsumerDef>>,
}

fn enabled() -> bool {
    true
}

/// `delay = { min_ms, max_ms }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayDef {
    /// Shortest delay, in milliseconds.
    pub min_ms: u64,
    /// Longest delay, in milliseconds (at most 60000).
    pub max_ms: u64,
}

/// `slow_consumer = { delay_ms, buffer_size, drop_when_full }`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowConsumerDef {
    /// `enabled = false` turns it off (default true).
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Time between two messages it takes, in milliseconds (1 to 60000).
    pub delay_ms: u64,
    /// Messages waiting for it at most (1 to 1000000).
    pub buffer_size: u64,
    /// Drop new messages when the buffer is full (default true); else they wait in the outbox.
    #[serde(default = "enabled")]
    pub drop_when_full: bool,
}

fn default_outbox_capacity() -> usize {
    OutboxDef::DEFAULT_CAPACITY
}

/// What to do when a connection's queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FullPolicy {
    /// Drop the oldest queued frame to make room (counted).
    #[default]
    DropOldest,
    /// Close the connection with 1008 (policy violation): for consumers
    /// that must not miss a message and would rather reconnect.
    Close,
}

/// What happens to a record that cannot be delivered as it is: no or
/// non-UTF-8 key where the route needs one, a text pipeline and a payload that
/// is not UTF-8, a transform's rejection, a plugin failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum PoisonPolicy {
    /// `on_poison = "skip"`: count it, log it (debug), go on (the default).
    #[default]
    Skip,
    /// `on_poison = "stop"`: stop the pipeline's consumer, loudly.
    Stop,
    /// `on_poison = { dead-letter = "topic" }`: produce it there unchanged, with headers
    /// saying why, and go on.
    DeadLetter(String),
}

/// `[pipelines.source]`: where records come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceDef {
    /// `topics = ["test-websocket-input"]` (at least one)
    pub topics: Spanned<Vec<Spanned<String>>>,
    /// `group_id = "ticks-bridge"` (default `"sluice-<pipeline>"`): the consumer group of `mode = "shared"`
    pub group_id: Option<Spanned<String>>,
    /// `start = "latest"` or `"earliest"`: where a new consumer group begins (default `"latest"`)
    #[serde(default)]
    pub start: StartFrom,
    /// `format = "auto"`, `"text"` or `"binary"`: the WebSocket frame type for records (default `"auto"`)
    #[serde(default)]
    pub format: Format,
    /// `on_poison = "skip"`, `"stop"` or `{ dead-letter = "topic" }` (default `"skip"`)
    #[serde(default)]
    pub on_poison: PoisonPolicy,
    /// `mode = "broadcast"` (default): every `sluice` process reads every partition, so a
    /// client gets every record whichever process it is connected to; `"shared"`: the
    /// processes split the partitions as one consumer group
    #[serde(default)]
    pub mode: SourceMode,
    /// `[pipelines.source.resume]`: clients that reconnect get what they missed (see
    /// docs/resume.md)
    pub resume: Option<ResumeDef>,
}

/// `[pipelines.source.resume]`: signed stream positions, and recovery from them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeDef {
    /// `keys = [{ id = "k2", secret = { env = "TICKS_RESUME_KEY" } }]`: the first signs
    /// positions, every one verifies them (put a new key first to rotate)
    pub keys: Spanned<Vec<ResumeKeyDef>>,
    /// `max_records = 10000`: a reconnect that would read more records than this (summed
    /// over partitions) is told it was not recovered (1 to 10000000)
    pub max_records: Option<Spanned<u64>>,
    /// `max_age_ms = 300000`: nor one whose position is older than this (1000 to 604800000)
    pub max_age_ms: Option<Spanned<u64>>,
    /// `checkpoint_ms = 5000`: how often a connected client's position moves on past
    /// records that were not for it (0: never; else 100 to 3600000)
    pub checkpoint_ms: Option<Spanned<u64>>,
}

/// One key of `[pipelines.source.resume]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeKeyDef {
    /// `id = "k2"`: 1 to 16 letters, digits, `-` or `_`
    pub id: Spanned<String>,
    /// `secret = { env = "TICKS_RESUME_KEY" }`: at least 32 characters
    pub secret: Spanned<String>,
}

/// How several `sluice` processes running one pipeline share its topics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceMode {
    /// Each process reads every partition, assigned by itself without
    /// joining a group, and delivers to its own clients.
    #[default]
    Broadcast,
    /// The processes form one consumer group and split the partitions.
    Shared,
}

/// Where a consumer group without committed offsets begins.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartFrom {
    /// Only records produced from now on.
    #[default]
    Latest,
    /// Everything still in the topic.
    Earliest,
}

/// How a record's payload is framed for WebSocket clients.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// A text frame if the payload is UTF-8, else a binary frame.
    #[default]
    Auto,
    /// Always text (a payload that is not UTF-8 is treated as poison).
    Text,
    /// Always binary.
    Binary,
}

/// `[pipelines.sink]`: where client messages go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkDef {
    /// `topic = "websocket-messages"`
    pub topic: Spanned<String>,
    /// `key = "channel"`, `"principal"` or `{ json = "/user/id" }`: the produced record's key (absent: no key)
    pub key: Option<Spanned<SinkKey>>,
    /// `reply = "seed-002"` (default), `"json"` or `"none"`: what a client is told about each
    /// message it sent (see README, "Replies to client messages")
    #[serde(default)]
    pub reply: ReplyFormat,
    /// `extra_topics = ["audit"]`: further topics a handler plugin may publish to (it may
    /// always publish to `topic`)
    #[serde(default)]
    pub extra_topics: Vec<Spanned<String>>,
}

/// Which client messages a pipeline takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accept {
    /// Text and binary.
    #[default]
    Any,
    /// Text only.
    Text,
    /// Binary only.
    Binary,
    /// Nothing: the endpoint only delivers.
    None,
}

/// `message_rate`: client messages per connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageRateDef {
    /// `per_second = 50` (at least 1)
    pub per_second: u32,
    /// `burst = 100` (at least 1; default `per_second`)
    pub burst: Option<u32>,
    /// `when_exceeded = "drop"` (default: drop and count) or `"close"` (1008)
    #[serde(default)]
    pub when_exceeded: WhenExceeded,
}

/// What happens to a message over the rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WhenExceeded {
    /// Drop it and count it.
    #[default]
    Drop,
    /// Close the connection with 1008.
    Close,
}

/// How a client is told whether its message reached Kafka.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyFormat {
    /// Seed 002's envelope: `{"messageType": "ACK" | "ERROR", "content", "timestamp", ...}`.
    #[default]
    #[serde(rename = "seed-002")]
    Seed002,
    /// `{"type": "ack" | "error", "id", "topic", "partition", "offset" | "reason"}`.
    Json,
    /// No replies: messages are still produced; failures are only counted and logged.
    None,
}

/// The key of a record produced from a client message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SinkKey {
    /// The channel the client is connected to.
    Channel,
    /// The authenticated principal's id.
    Principal,
    /// A value inside the JSON message, by JSON pointer (RFC 6901).
    Json(String),
}

/// A plugin in a pipeline: `[pipelines.router]`, `[pipelines.auth]`, ...
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginRef {
    /// `plugin = "key-router"` (first-party) or `plugin = "plugins/my_router.wasm"` (a path:
    /// contains `/` or ends in `.wasm`; relative to this file)
    pub plugin: Spanned<String>,
    /// `config = { template = "orders.{key}" }`: any table, handed to the plugin as JSON
    /// (`{ env = "NAME" }` anywhere inside is replaced by that environment variable)
    pub config: Option<Spanned<ConfigValue>>,
    /// `limits = { memory_bytes = 33554432, deadline_ms = 50 }` (defaults: 32 MiB, 50 ms)
    pub limits: Option<Spanned<Limits>>,
}

/// A transform in a pipeline: `[[pipelines.transforms]]`, a [`PluginRef`] with a direction.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformRef {
    /// `plugin = "envelope"`, as in any plugin's table
    pub plugin: Spanned<String>,
    /// `config = { ... }`, as in any plugin's table
    pub config: Option<Spanned<ConfigValue>>,
    /// `limits = { ... }`, as in any plugin's table
    pub limits: Option<Spanned<Limits>>,
    /// `direction = "inbound"`: what it transforms: `"outbound"` (Kafka records on their way to
    /// clients), `"inbound"` (client messages on their way to the sink) or `"both"` (default, what
    /// every transform did before `direction` existed, so older files keep their meaning)
    pub direction: Option<Spanned<Direction>>,
}

impl TransformRef {
    /// The plugin part, checked like any plugin's table.
    pub fn plugin_ref(&self) -> PluginRef {
        PluginRef {
            plugin: self.plugin.clone(),
            config: self.config.clone(),
            limits: self.limits.clone(),
        }
    }
}

/// Which way a transform applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Kafka records on their way to clients (the record path).
    Outbound,
    /// Client messages on their way to the sink topic (the inbound path).
    Inbound,
    /// Both.
    #[default]
    Both,
}

impl Direction {
    /// Whether it applies to records on their way to clients.
    pub fn outbound(self) -> bool {
        matches!(self, Self::Outbound | Self::Both)
    }

    /// Whether it applies to client messages on their way to the sink.
    pub fn inbound(self) -> bool {
        matches!(self, Self::Inbound | Self::Both)
    }
}

/// `[admin]`: the admin REST API (connections, pipelines, `/metrics`) on its own listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminDef {
    /// `address = "127.0.0.1:9090"` (an IP address and port, not a WebSocket listener's; keep it
    /// private: `/metrics` answers without a token)
    pub address: Spanned<String>,
    /// `token = { env = "SLUICE_ADMIN_TOKEN" }` (or a string): the operator's bearer token, which
    /// sees and does everything (at least 16 printable ASCII characters)
    pub token: Spanned<ConfigValue>,
}

/// `[cluster]`: this process is one node of a cluster: every process with the same `name` (and
/// the same Kafka) shares rooms, admin actions and presence (README "Running a cluster").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterDef {
    /// `name = "chat-prod"`: the cluster (letters, digits, `_`, `-`)
    pub name: Spanned<String>,
    /// `node_id = { env = "NODE_ORDINAL" }` (or a number from 1 to 65535): this node, unique in
    /// the cluster; it is part of every connection id (absent: drawn at random at start; set it
    /// in production, a clash is reported but not repaired)
    pub node_id: Option<Spanned<u64>>,
    /// `presence_interval_ms = 5000`: how often each node restates its connections; a node silent
    /// for three intervals is taken for dead and its connections leave presence (500 to 60000)
    pub presence_interval_ms: Option<Spanned<u64>>,
}

/// `[plugins]`: settings for every plugin.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginsDef {
    /// `cache_dir = ".sluice/compiled"`: where compiled components are cached
    /// (relative to this file; default `$XDG_CACHE_HOME/sluice/compiled`)
    pub cache_dir: Option<Spanned<String>>,
}

impl Brokers {
    /// Parses `embedded` or a comma-separated `host:port` list.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim() == "embedded" {
            return Ok(Brokers::Embedded);
        }
        let mut list = Vec::new();
        for entry in text.split(',').map(str::trim) {
            let Some((host, port)) = entry.rsplit_once(':') else {
                return Err(format!(
                    "broker {entry:?} must be `host:port` (or use `embedded`)"
                ));
            };
            if host.is_empty() || host.contains(char::is_whitespace) {
                return Err(format!("broker {entry:?} has no valid host"));
            }
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("broker {entry:?} has an invalid port"));
            }
            list.push(entry.to_owned());
        }
        Ok(Brokers::List(list))
    }
}

impl fmt::Display for Brokers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Brokers::Embedded => f.write_str("embedded"),
            Brokers::List(list) => f.write_str(&list.join(",")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brokers_parse() {
        assert_eq!(Brokers::parse("embedded"), Ok(Brokers::Embedded));
        assert_eq!(
            Brokers::parse("a:9092, [::1]:9093"),
            Ok(Brokers::List(vec!["a:9092".into(), "[::1]:9093".into()]))
        );
        assert!(Brokers::parse("a").is_err());
        assert!(Brokers::parse("a:x").is_err());
        assert!(Brokers::parse(":9092").is_err());
        assert!(Brokers::parse("a:9092,").is_err());
    }
}
