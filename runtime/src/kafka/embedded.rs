//! The embedded broker: librdkafka's in-process mock cluster.
//!
//! It listens on loopback, so other processes (kcat, Python, Node) produce
//! to and consume from it like any broker; nothing persists. It supports
//! producing (idempotent too), fetching, consumer groups with committed
//! offsets, and topic auto-creation by producers, which gives a topic
//! librdkafka's mock default of 4 partitions. A consumer's subscription
//! alone creates nothing (librdkafka asks for auto-creation only for topics
//! it produces to): create a pipeline's topics with
//! [`EmbeddedBroker::ensure_topic`] before its consumer starts.
//!
//! Behaviours of the mock to know:
//! - a waiting fetch is not woken when data arrives: the consumer's
//!   `fetch.wait.max.ms` bounds the latency;
//! - a consumer group's first join waits 3 s (the mock's
//!   `group.initial.rebalance.delay.ms`, which rdkafka offers no way to set;
//!   broadcast mode joins no group);
//! - after a group's last member left, the next join waits the session
//!   timeout minus 1 s: see [`super::EMBEDDED_CONSUMER_DEFAULTS`].

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::producer::{Producer as _, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Message};

use super::KafkaError;
use super::log::{ErrorLog, forward};

const CLIENT: &str = "embedded broker";

/// A running in-process Kafka cluster of one broker. Dropping it stops it.
pub struct EmbeddedBroker {
    // The cluster belongs to this client (`test.mock.num.brokers`) and lives
    // as long as it; the client's own thread serves its log queue.
    owner: ThreadedProducer<EmbeddedContext>,
    bootstrap_servers: String,
    partitions: i32,
}

impl std::fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("partitions", &self.partitions)
            .finish()
    }
}

impl EmbeddedBroker {
    /// Starts the cluster; topics made by [`EmbeddedBroker::ensure_topic`]
    /// get `partitions` partitions.
    pub fn start(partitions: i32) -> Result<Self, KafkaError> {
        let owner: ThreadedProducer<EmbeddedContext> = ClientConfig::new()
            .set("test.mock.num.brokers", "1")
            .set("client.id", "sluice-embedded")
            .create_with_context(EmbeddedContext::default())
            .map_err(|source| KafkaError::Client {
                client: CLIENT,
                source,
            })?;
        let bootstrap_servers = owner
            .client()
            .mock_cluster()
            .map(|cluster| cluster.bootstrap_servers())
            .ok_or(KafkaError::Client {
                client: CLIENT,
                source: RdKafkaError::MockCluster(RDKafkaErrorCode::Fail),
            })?;
        tracing::info!(%bootstrap_servers, partitions, "Embedded Kafka broker started.");
        Ok(Self {
            owner,
            bootstrap_servers,
            partitions: partitions.max(1),
        })
    }

    /// Where clients connect: `127.0.0.1:port`.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// The partition count of topics made by [`EmbeddedBroker::ensure_topic`].
    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Creates `topic` with `partitions` partitions; fails if it exists.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), KafkaError> {
        let cluster = self
            .owner
            .client()
            .mock_cluster()
            .ok_or(KafkaError::Client {
                client: CLIENT,
                source: RdKafkaError::MockCluster(RDKafkaErrorCode::Fail),
            })?;
        match cluster.create_topic(topic, partitions, 1) {
            Ok(()) => {
                tracing::debug!(topic, partitions, "Embedded broker created a topic.");
                Ok(())
            }
            Err(RdKafkaError::MockCluster(RDKafkaErrorCode::TopicAlreadyExists)) => {
                Err(KafkaError::TopicExists(topic.to_owned()))
            }
            Err(source) => Err(KafkaError::CreateTopic {
                topic: topic.to_owned(),
                source,
            }),
        }
    }

    /// Creates `topic` with the broker's partition count unless it exists;
    /// returns whether it was created.
    pub fn ensure_topic(&self, topic: &str) -> Result<bool, KafkaError> {
        match self.create_topic(topic, self.partitions) {
            Ok(()) => Ok(true),
            Err(KafkaError::TopicExists(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        tracing::info!(bootstrap_servers = %self.bootstrap_servers, "Embedded Kafka broker stopped.");
    }
}

/// Forwards the owning client's logs; it never produces.
#[derive(Debug, Default)]
struct EmbeddedContext {
    errors: ErrorLog,
}

impl ClientContext for EmbeddedContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward(CLIENT, "mock cluster", level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        self.errors.report(CLIENT, "mock cluster", &error, reason);
    }
}

impl ProducerContext for EmbeddedContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        if let Err((error, message)) = result {
            tracing::debug!(%error, topic = message.topic(), "Embedded broker's own client failed a delivery.");
        }
    }
}
