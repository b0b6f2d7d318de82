//! Kafka failures the host reports, each naming what it was doing.

use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};

/// A Kafka client, producer, consumer or embedded-broker failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KafkaError {
    /// The configuration says `brokers = "embedded"` but no embedded broker is running.
    #[error("the Kafka settings name the embedded broker, but none is running")]
    NoEmbeddedBroker,
    /// librdkafka refused the client's configuration (an unknown or invalid property).
    #[error("cannot create the Kafka {client}: {source}")]
    Client {
        /// `consumer`, `producer` or `embedded broker`.
        client: &'static str,
        /// What librdkafka said.
        source: RdKafkaError,
    },
    /// Subscribing to the source topics failed.
    #[error("cannot subscribe to {topics:?}: {source}")]
    Subscribe {
        /// The topics.
        topics: Vec<String>,
        /// What librdkafka said.
        source: RdKafkaError,
    },
    /// The consumer's thread could not be started.
    #[error("cannot start thread `{name}`: {message}")]
    Spawn {
        /// The thread's name.
        name: String,
        /// The operating system's error.
        message: String,
    },
    /// The client hit an error librdkafka considers fatal: it cannot go on.
    #[error("fatal Kafka error ({code}): {reason}")]
    Fatal {
        /// librdkafka's error code.
        code: RDKafkaErrorCode,
        /// librdkafka's description.
        reason: String,
    },
    /// A topic could not be created on the embedded broker.
    #[error("cannot create topic `{topic}` on the embedded broker: {source}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// What librdkafka said.
        source: RdKafkaError,
    },
    /// The brokers did not create a topic the host needs.
    #[error("cannot create topic `{topic}`: {reason}")]
    Create {
        /// The topic.
        topic: String,
        /// What the brokers or librdkafka said.
        reason: String,
    },
    /// A topic of that name already exists on the embedded broker.
    #[error("topic `{0}` already exists on the embedded broker")]
    TopicExists(String),
    /// A record could not be queued, or the broker did not acknowledge it in time.
    #[error("record for topic `{topic}` was not delivered: {source}")]
    Produce {
        /// The topic.
        topic: String,
        /// What librdkafka said (e.g. message timed out, queue full, too large).
        source: RdKafkaError,
    },
    /// Waiting for queued records to be delivered timed out or failed.
    #[error("cannot flush the producer: {0}")]
    Flush(RdKafkaError),
    /// No broker answered a metadata request in time.
    #[error("no broker answered: {0}")]
    Unreachable(RdKafkaError),
}

impl KafkaError {
    /// The librdkafka error code behind this failure, if there is one.
    pub fn code(&self) -> Option<RDKafkaErrorCode> {
        match self {
            KafkaError::Fatal { code, .. } => Some(*code),
            KafkaError::Client { source, .. }
            | KafkaError::Subscribe { source, .. }
            | KafkaError::CreateTopic { source, .. }
            | KafkaError::Produce { source, .. }
            | KafkaError::Flush(source)
            | KafkaError::Unreachable(source) => source.rdkafka_error_code(),
            KafkaError::NoEmbeddedBroker
            | KafkaError::Spawn { .. }
            | KafkaError::Create { .. }
            | KafkaError::TopicExists(_) => None,
        }
    }
}
