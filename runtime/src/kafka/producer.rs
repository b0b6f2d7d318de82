//! The producer: a send resolves only on the broker's delivery report.
//!
//! Used for dead-letter topics and for client messages a WebSocket client
//! gets an ACK for: the ACK is sent only after [`Producer::send`] returned
//! [`Delivered`], so every ACKed message is in Kafka.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rdkafka::ClientContext;
use rdkafka::client::OAuthToken;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

use super::log::{ErrorLog, forward};
use super::security::{self, TokenProvider};
use super::{ClientSettings, KafkaError};

const CLIENT: &str = "producer";

/// How long the broker has to acknowledge a record before the send fails.
pub const DEFAULT_MESSAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a send waits for room in librdkafka's local queue when it is full.
pub const DEFAULT_ENQUEUE_TIMEOUT: Duration = Duration::from_secs(5);

/// Options of a [`Producer`].
#[derive(Debug, Clone)]
pub struct ProducerOptions {
    /// Who the producer works for (a pipeline name), for logs.
    pub owner: String,
    /// `message.timeout.ms`: the broker must acknowledge a record within this time.
    pub message_timeout: Duration,
    /// How long a send waits while the local queue is full (then `QueueFull`).
    pub enqueue_timeout: Duration,
}

impl ProducerOptions {
    /// Defaults for a producer working for `owner`.
    pub fn new(owner: impl Into<String>) -> Self {
        Self {
            owner: owner.into(),
            message_timeout: DEFAULT_MESSAGE_TIMEOUT,
            enqueue_timeout: DEFAULT_ENQUEUE_TIMEOUT,
        }
    }
}

/// Where the broker stored a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// The partition.
    pub partition: i32,
    /// The record's offset in it.
    pub offset: i64,
}

/// A Kafka producer (`acks=all`, idempotent unless the file says otherwise).
/// Cheap to clone: clones share one librdkafka client and its thread.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer<ProducerLog>,
    enqueue_timeout: Duration,
    owner: Arc<str>,
    errors: Arc<ErrorLog>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// Creates a producer; connecting happens in the background.
    pub fn new(settings: &ClientSettings, options: ProducerOptions) -> Result<Self, KafkaError> {
        let timeout_ms = options
            .message_timeout
            .as_millis()
            .clamp(1, i32::MAX as u128);
        let config = settings.producer_config(&[("message.timeout.ms", timeout_ms.to_string())]);
        let owner: Arc<str> = Arc::from(options.owner);
        let errors = Arc::new(ErrorLog::default());
        let context = ProducerLog {
            owner: owner.clone(),
            errors: errors.clone(),
            token: settings.token_provider(),
        };
        let inner = config
            .create_with_context(context)
            .map_err(|source| KafkaError::Client {
                client: CLIENT,
                source,
            })?;
        Ok(Self {
            inner,
            enqueue_timeout: options.enqueue_timeout,
            owner,
            errors,
        })
    }

    /// Why the client is failing right now (a refused password, an
    /// untrusted certificate, brokers down, ...), if it is.
    pub fn client_problem(&self) -> Option<String> {
        self.errors.problem()
    }

    /// Whether the client is failing for its configuration (credentials,
    /// certificates, protocol), which retrying does not fix.
    pub fn misconfigured(&self) -> bool {
        self.errors.misconfigured()
    }

    /// Puts a record on librdkafka's queue now (so records enqueued one
    /// after another keep their order in a partition) and returns a future
    /// of its delivery report. Fails at once if the local queue is full.
    pub fn enqueue(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(String, Bytes)],
    ) -> Result<
        impl std::future::Future<Output = Result<Delivered, KafkaError>> + Send + 'static + use<>,
        KafkaError,
    > {
        let record = future_record(topic, key, payload, headers);
        let topic = topic.to_owned();
        let future = self
            .inner
            .send_result(record)
            .map_err(|(source, _)| KafkaError::Produce {
                topic: topic.clone(),
                source,
            })?;
        Ok(async move {
            match future.await {
                Ok(Ok(delivery)) => Ok(Delivered {
                    partition: delivery.partition,
                    offset: delivery.offset,
                }),
                Ok(Err((source, _))) => Err(KafkaError::Produce { topic, source }),
                Err(_canceled) => Err(KafkaError::Produce {
                    topic,
                    source: rdkafka::error::KafkaError::Canceled,
                }),
            }
        })
    }

    /// Sends a record and waits for the broker's delivery report.
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
        headers: &[(String, Bytes)],
    ) -> Result<Delivered, KafkaError> {
        let record = future_record(topic, key, payload, headers);
        match self.inner.send(record, self.enqueue_timeout).await {
            Ok(delivery) => {
                self.errors.recovered(CLIENT, &self.owner);
                tracing::trace!(owner = %self.owner, topic, partition = delivery.partition,
                    offset = delivery.offset, "Record delivered.");
                Ok(Delivered {
                    partition: delivery.partition,
                    offset: delivery.offset,
                })
            }
            Err((source, _)) => {
                tracing::debug!(owner = %self.owner, topic, error = %source, "Record not delivered.");
                Err(KafkaError::Produce {
                    topic: topic.to_owned(),
                    source,
                })
            }
        }
    }

    /// Waits up to `timeout` until every queued record was delivered or failed.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.inner.flush(timeout).map_err(KafkaError::Flush)
    }

    /// Asks the cluster for its metadata: proves a broker answers. Blocks
    /// up to `timeout`: from async code, call it in `spawn_blocking`.
    pub fn reachable(&self, timeout: Duration) -> Result<(), KafkaError> {
        use rdkafka::producer::Producer as _;
        self.inner
            .client()
            .fetch_metadata(None, timeout)
            .map(|_| ())
            .map_err(KafkaError::Unreachable)
    }

    /// Records queued or in flight, not yet reported.
    pub fn in_flight(&self) -> i32 {
        self.inner.in_flight_count()
    }
}

/// A record for librdkafka, borrowing the caller's bytes.
fn future_record<'a>(
    topic: &'a str,
    key: Option<&'a [u8]>,
    payload: &'a [u8],
    headers: &[(String, Bytes)],
) -> FutureRecord<'a, [u8], [u8]> {
    let mut record: FutureRecord<'a, [u8], [u8]> = FutureRecord::to(topic).payload(payload);
    if let Some(key) = key {
        record = record.key(key);
    }
    if !headers.is_empty() {
        let owned = headers.iter().fold(
            OwnedHeaders::new_with_capacity(headers.len()),
            |all, (name, value)| {
                all.insert(Header {
                    key: name.as_str(),
                    value: Some(value.as_ref()),
                })
            },
        );
        record = record.headers(owned);
    }
    record
}

/// Forwards the producer's logs and client errors to `tracing`.
struct ProducerLog {
    owner: Arc<str>,
    errors: Arc<ErrorLog>,
    token: Option<Arc<dyn TokenProvider>>,
}

impl ClientContext for ProducerLog {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        security::refresh(self.token.as_ref())
    }

    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        forward(CLIENT, &self.owner, level, fac, log_message);
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        self.errors.report(CLIENT, &self.owner, &error, reason);
    }
}
