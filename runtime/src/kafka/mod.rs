//! Kafka: the consumer thread of a pipeline, the producer, and the embedded broker.
//!
//! - [`ClientSettings`] turns a tenant's [`config::Kafka`] into librdkafka
//!   settings: the bootstrap servers (a list, or the [`EmbeddedBroker`]'s
//!   address), live-delivery defaults, then `security` and `compression`
//!   ([`security`]), then the file's `properties`, then the few settings the
//!   host's guarantees depend on.
//! - [`spawn_consumer`] runs a pipeline's consumer on its own thread (plugins
//!   are called synchronously from it, never from a tokio worker) and stores
//!   offsets only after a batch was handled: at-least-once.
//! - [`Producer`] resolves a send only on the broker's delivery report.
//! - [`EmbeddedBroker`] is librdkafka's in-process mock cluster, reachable by
//!   other processes on loopback.

mod consumer;
mod embedded;
mod error;
mod log;
mod producer;
pub mod protocol_probe;
pub mod security;
mod topics;

use std::collections::BTreeMap;
use std::sync::Arc;

use rdkafka::ClientConfig;

use crate::config::{self, Brokers, Compression, StartFrom};
use security::TokenProvider;

pub use consumer::{
    BatchVerdict, ConsumerExit, ConsumerHandle, ConsumerOptions, ConsumerProgress, ConsumerStatus,
    ConsumerWatch, DEFAULT_MAX_BATCH, DEFAULT_POLL_TIMEOUT, Frontier, Membership, Positions,
    Reader, Subscription, spawn_consumer,
};
pub use embedded::EmbeddedBroker;
pub use error::KafkaError;
pub use producer::{
    DEFAULT_ENQUEUE_TIMEOUT, DEFAULT_MESSAGE_TIMEOUT, Delivered, Producer, ProducerOptions,
};
pub use topics::ensure_topic;

/// Consumer settings the file may override. A waiting fetch is not woken
/// when data arrives (neither by the mock cluster nor by tansu), so the
/// fetch wait bounds the added latency: keep it short for live delivery.
pub const CONSUMER_DEFAULTS: [(&str, &str); 4] = [
    ("fetch.wait.max.ms", "10"),
    ("enable.auto.commit", "true"),
    ("enable.partition.eof", "false"),
    ("client.id", "sluice"),
];

/// Extra consumer defaults on the embedded broker. When a group's last
/// member leaves, the mock cluster makes the next member to join wait
/// `session.timeout.ms` minus one second (45 s by default) before it
/// assigns anything: a short session keeps a restarted consumer's wait short.
pub const EMBEDDED_CONSUMER_DEFAULTS: [(&str, &str); 2] = [
    ("session.timeout.ms", "6000"),
    ("heartbeat.interval.ms", "1000"),
];

/// Producer settings the file may override: every in-sync replica
/// acknowledges, and retries never duplicate or reorder.
pub const PRODUCER_DEFAULTS: [(&str, &str); 3] = [
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("client.id", "sluice"),
];

/// What every Kafka client of one tenant is built from.
#[derive(Clone)]
pub struct ClientSettings {
    bootstrap_servers: String,
    embedded: bool,
    /// From `security`: applied before `properties`.
    security: Vec<(&'static str, String)>,
    compression: Compression,
    properties: BTreeMap<String, String>,
    token: Option<Arc<dyn TokenProvider>>,
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Properties may hold passwords: show only their keys.
        f.debug_struct("ClientSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("embedded", &self.embedded)
            .field("compression", &self.compression)
            .field("properties", &self.properties.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ClientSettings {
    /// Settings for a tenant's `[kafka]`. `brokers = "embedded"` needs the
    /// running `embedded` broker.
    pub fn new(
        kafka: &config::Kafka,
        embedded: Option<&EmbeddedBroker>,
    ) -> Result<Self, KafkaError> {
        let (bootstrap_servers, is_embedded) = match &kafka.brokers {
            Brokers::List(list) => (list.join(","), false),
            Brokers::Embedded => {
                let broker = embedded.ok_or(KafkaError::NoEmbeddedBroker)?;
                (broker.bootstrap_servers().to_owned(), true)
            }
        };
        Ok(Self {
            bootstrap_servers,
            embedded: is_embedded,
            security: kafka
                .security
                .as_ref()
                .map(security::properties)
                .unwrap_or_default(),
            compression: kafka.compression,
            properties: kafka.properties.clone(),
            token: security::token_provider(kafka.security.as_ref()),
        })
    }

    /// Settings for a broker at `bootstrap_servers` (`host:port,...`), no properties.
    pub fn for_bootstrap(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            embedded: false,
            security: Vec::new(),
            compression: Compression::None,
            properties: BTreeMap::new(),
            token: None,
        }
    }

    /// Settings for the embedded broker, no properties.
    pub fn for_embedded(broker: &EmbeddedBroker) -> Self {
        Self {
            bootstrap_servers: broker.bootstrap_servers().to_owned(),
            embedded: true,
            security: Vec::new(),
            compression: Compression::None,
            properties: BTreeMap::new(),
            token: None,
        }
    }

    /// Adds (or replaces) a librdkafka property, as `[kafka.properties]` would.
    pub fn with_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// Hands OAUTHBEARER tokens from `provider` to every client built from
    /// these settings (replacing a static `token` from the file).
    pub fn with_token_provider(mut self, provider: Arc<dyn TokenProvider>) -> Self {
        self.token = Some(provider);
        self
    }

    /// The OAUTHBEARER token provider, if the settings use one.
    pub(crate) fn token_provider(&self) -> Option<Arc<dyn TokenProvider>> {
        self.token.clone()
    }

    /// Whether the clients speak TLS to the brokers (`security`, or a
    /// `security.protocol` property, which wins).
    pub fn expects_tls(&self) -> bool {
        let protocol = self
            .properties
            .get("security.protocol")
            .cloned()
            .or_else(|| {
                self.security
                    .iter()
                    .find(|(k, _)| *k == "security.protocol")
                    .map(|(_, v)| v.clone())
            });
        protocol
            .is_some_and(|p| p.eq_ignore_ascii_case("ssl") || p.eq_ignore_ascii_case("sasl_ssl"))
    }

    /// Why the first broker refuses these clients' protocol, if it does
    /// (see [`protocol_probe`]); blocks for up to a few seconds.
    pub fn protocol_mismatch(&self) -> Option<String> {
        let first = self.bootstrap_servers.split(',').next()?.trim();
        protocol_probe::mismatch(first, self.expects_tls())
    }

    /// The bootstrap servers, `host:port,...`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// Whether these settings point at the embedded broker.
    pub fn is_embedded(&self) -> bool {
        self.embedded
    }

    /// The properties from the file.
    pub fn properties(&self) -> &BTreeMap<String, String> {
        &self.properties
    }

    /// The configuration of a consumer for `group_id` starting at `start`;
    /// a `direct` one never commits, and every start it gives is explicit,
    /// so an offset out of range means deleted records: it goes on at the
    /// first record still there.
    pub(crate) fn consumer_config(
        &self,
        group_id: &str,
        start: StartFrom,
        direct: bool,
    ) -> ClientConfig {
        let mut defaults = CONSUMER_DEFAULTS.to_vec();
        if self.embedded {
            defaults.extend(EMBEDDED_CONSUMER_DEFAULTS);
        }
        let reset = match start {
            _ if direct => "earliest",
            StartFrom::Latest => "latest",
            StartFrom::Earliest => "earliest",
        };
        let mut forced = vec![
            ("group.id", group_id.to_owned()),
            ("enable.auto.offset.store", "false".to_owned()),
            ("auto.offset.reset", reset.to_owned()),
        ];
        if direct {
            forced.push(("enable.auto.commit", "false".to_owned()));
        }
        self.build("consumer", &defaults, &forced)
    }

    /// The configuration of a producer; `forced` are settings from code
    /// (e.g. `message.timeout.ms`) that win over the file.
    pub(crate) fn producer_config(&self, forced: &[(&str, String)]) -> ClientConfig {
        let mut config = self.build("producer", &PRODUCER_DEFAULTS, forced);
        if !self.properties.contains_key("compression.codec")
            && !self.properties.contains_key("compression.type")
        {
            let (key, value) = security::compression_property(self.compression);
            config.set(key, value);
        }
        config
    }

    /// Defaults, then `security`, then the file's properties, then
    /// `forced`, then the servers.
    fn build(
        &self,
        client: &'static str,
        defaults: &[(&str, &str)],
        forced: &[(&str, String)],
    ) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.security {
            config.set(*key, value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        for (key, value) in forced {
            if let Some(from_file) = self.properties.get(*key)
                && from_file != value
            {
                tracing::warn!(client, property = %key, ignored = %from_file, used = %value,
                    "Kafka property overridden by the host.");
            }
            config.set(*key, value);
        }
        if self.properties.contains_key("bootstrap.servers") {
            tracing::warn!(client, used = %self.bootstrap_servers,
                "Kafka property `bootstrap.servers` ignored: `brokers` decides.");
        }
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ClientSettings {
        ClientSettings::for_bootstrap("k1:9092,k2:9092")
            .with_property("fetch.wait.max.ms", "50")
            .with_property("enable.auto.offset.store", "true")
            .with_property("acks", "1")
    }

    #[test]
    fn consumer_config_layers_defaults_file_and_forced() {
        let config = settings().consumer_config("g", StartFrom::Earliest, false);
        assert_eq!(config.get("bootstrap.servers"), Some("k1:9092,k2:9092"));
        assert_eq!(
            config.get("fetch.wait.max.ms"),
            Some("50"),
            "the file wins over defaults"
        );
        assert_eq!(
            config.get("enable.auto.offset.store"),
            Some("false"),
            "forced wins"
        );
        assert_eq!(config.get("auto.offset.reset"), Some("earliest"));
        assert_eq!(config.get("group.id"), Some("g"));
        assert_eq!(config.get("enable.auto.commit"), Some("true"));
        assert_eq!(config.get("session.timeout.ms"), None, "not embedded");
    }

    #[test]
    fn a_direct_consumer_never_commits_and_resets_to_the_first_record() {
        let settings = settings().with_property("enable.auto.commit", "true");
        let config = settings.consumer_config("g", StartFrom::Latest, true);
        assert_eq!(config.get("enable.auto.commit"), Some("false"));
        assert_eq!(config.get("auto.offset.reset"), Some("earliest"));
    }

    #[test]
    fn producer_config_keeps_file_overrides() {
        let config = settings().producer_config(&[("message.timeout.ms", "1000".into())]);
        assert_eq!(config.get("acks"), Some("1"));
        assert_eq!(config.get("enable.idempotence"), Some("true"));
        assert_eq!(config.get("message.timeout.ms"), Some("1000"));
    }

    #[test]
    fn embedded_needs_a_running_broker() {
        let kafka = config::Kafka {
            brokers: Brokers::Embedded,
            properties: BTreeMap::new(),
            security: None,
            compression: Compression::None,
        };
        assert!(matches!(
            ClientSettings::new(&kafka, None),
            Err(KafkaError::NoEmbeddedBroker)
        ));
        let kafka = config::Kafka {
            brokers: Brokers::List(vec!["a:1".into(), "b:2".into()]),
            properties: BTreeMap::new(),
            security: None,
            compression: Compression::Zstd,
        };
        let settings = ClientSettings::new(&kafka, None).unwrap();
        assert_eq!(settings.bootstrap_servers(), "a:1,b:2");
        assert!(!settings.is_embedded());
        let producer = settings.producer_config(&[]);
        assert_eq!(producer.get("compression.codec"), Some("zstd"));
        let consumer = settings.consumer_config("g", StartFrom::Latest, false);
        assert_eq!(
            consumer.get("compression.codec"),
            None,
            "a producer setting"
        );
    }

    #[test]
    fn security_comes_before_the_files_properties() {
        let kafka = config::Kafka {
            brokers: Brokers::List(vec!["k:9093".into()]),
            properties: BTreeMap::from([
                ("sasl.username".to_owned(), "from-properties".to_owned()),
                ("compression.type".to_owned(), "lz4".to_owned()),
            ]),
            security: Some(config::Security {
                protocol: config::SecurityProtocol::SaslSsl,
                sasl: Some(config::Sasl::Password {
                    mechanism: config::SaslMechanism::ScramSha256,
                    username: "from-security".into(),
                    password: config::Secret::new("pw"),
                }),
                tls: None,
            }),
            compression: Compression::Gzip,
        };
        let settings = ClientSettings::new(&kafka, None).unwrap();
        let consumer = settings.consumer_config("g", StartFrom::Latest, false);
        assert_eq!(consumer.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(consumer.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(
            consumer.get("sasl.username"),
            Some("from-properties"),
            "properties win"
        );
        let producer = settings.producer_config(&[]);
        assert_eq!(
            producer.get("compression.type"),
            Some("lz4"),
            "properties win"
        );
        assert_eq!(producer.get("compression.codec"), None);
        assert!(
            !format!("{settings:?}").contains("pw"),
            "Debug hides values"
        );
    }
}
