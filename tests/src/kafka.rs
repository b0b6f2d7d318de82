//! Small synchronous Kafka helpers for tests (rdkafka, as in the runtime).
//!
//! [`Producer::send_all`] returns only when every record has its delivery
//! report; [`Consumer::collect`] fails with a count when too few records
//! arrive in time. Both block the calling thread: from an async test, call
//! them inside `tokio::task::spawn_blocking`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _, ProducerContext};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

/// How long [`Producer::send_all`] waits for delivery reports.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest single poll while collecting records.
const POLL_SLICE: Duration = Duration::from_millis(200);

/// Settings shared by every test client: the bootstrap servers and short
/// reconnect backoffs, since tests stop and restart brokers.
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set("retry.backoff.max.ms", "500")
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("log_level", "3");
    config
}

/// A record to produce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outgoing {
    /// The record key; `None` produces a null key.
    pub key: Option<Vec<u8>>,
    /// The record value.
    pub payload: Vec<u8>,
    /// Record headers, in order.
    pub headers: Vec<(String, Vec<u8>)>,
    /// A fixed partition; `None` lets the partitioner choose (by key).
    pub partition: Option<i32>,
}

impl Outgoing {
    /// A record with this payload, no key and no headers.
    pub fn new(payload: impl Into<Vec<u8>>) -> Outgoing {
        Outgoing {
            payload: payload.into(),
            ..Outgoing::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Vec<u8>>) -> Outgoing {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Outgoing {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sends the record to this partition.
    pub fn partition(mut self, partition: i32) -> Outgoing {
        self.partition = Some(partition);
        self
    }
}

/// Where the broker stored a produced record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Delivered {
    /// The partition the record went to.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
}

/// Collects delivery reports by the index of the record in its batch.
#[derive(Default)]
struct Reports(Mutex<HashMap<usize, Result<Delivered, KafkaError>>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, index: Box<usize>) {
        let outcome = match result {
            Ok(message) => Ok(Delivered {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((error, _)) => Err(error.clone()),
        };
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*index, outcome);
    }
}

/// A producer whose sends wait for the broker's acknowledgement (`acks=all`,
/// idempotence off so a restarted broker needs no producer-id state).
pub struct Producer {
    inner: BaseProducer<Reports>,
}

impl Producer {
    /// A producer for `bootstrap` with the test defaults.
    pub fn new(bootstrap: &str) -> Result<Producer> {
        Producer::with_config(client_config(bootstrap))
    }

    /// A producer with these settings (start from [`client_config`]).
    pub fn with_config(mut config: ClientConfig) -> Result<Producer> {
        config
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("message.timeout.ms", "20000");
        let inner = config
            .create_with_context(Reports::default())
            .context("creating a Kafka producer")?;
        Ok(Producer { inner })
    }

    /// Produces one record and waits for its delivery report.
    pub fn send(&self, topic: &str, record: &Outgoing) -> Result<Delivered> {
        Ok(self.send_all(topic, std::slice::from_ref(record))?[0])
    }

    /// Produces the records (in order) and waits until every one has a
    /// successful delivery report; returns where each was stored.
    pub fn send_all(&self, topic: &str, records: &[Outgoing]) -> Result<Vec<Delivered>> {
        self.inner.context().0.lock().unwrap().clear();
        for (index, record) in records.iter().enumerate() {
            let headers =
                record
                    .headers
                    .iter()
                    .fold(OwnedHeaders::new(), |headers, (key, value)| {
                        headers.insert(Header {
                            key,
                            value: Some(value),
                        })
                    });
            let mut base =
                BaseRecord::<[u8], [u8], Box<usize>>::with_opaque_to(topic, Box::new(index))
                    .payload(&record.payload[..])
                    .headers(headers);
            if let Some(key) = &record.key {
                base = base.key(&key[..]);
            }
            if let Some(partition) = record.partition {
                base = base.partition(partition);
            }
            while let Err((error, returned)) = self.inner.send(base) {
                if error.rdkafka_error_code() != Some(RDKafkaErrorCode::QueueFull) {
                    bail!("producing record {index} to {topic:?}: {error}");
                }
                self.inner.poll(Duration::from_millis(50));
                base = returned;
            }
        }
        self.inner
            .flush(DELIVERY_TIMEOUT)
            .with_context(|| format!("waiting for delivery reports from {topic:?}"))?;
        let mut reports = self.inner.context().0.lock().unwrap();
        (0..records.len())
            .map(|index| match reports.remove(&index) {
                Some(Ok(delivered)) => Ok(delivered),
                Some(Err(error)) => Err(anyhow!("record {index} to {topic:?} failed: {error}")),
                None => Err(anyhow!("record {index} to {topic:?}: no delivery report")),
            })
            .collect()
    }
}

/// A consumed record, copied out of the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Topic it was read from.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Key, if not null.
    pub key: Option<Vec<u8>>,
    /// Value, if not null.
    pub payload: Option<Vec<u8>>,
    /// Headers in order; a null header value is `None`.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// The key as UTF-8, if it is that.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The value as UTF-8, if it is that.
    pub fn payload_str(&self) -> Option<&str> {
        self.payload
            .as_deref()
            .and_then(|p| std::str::from_utf8(p).ok())
    }
}

/// A consumer in a consumer group: reads from the earliest offset when the
/// group has none committed, commits only when told to, and asks for data
/// with a short `fetch.wait.max.ms` (tansu answers a waiting fetch only when
/// that time is up).
pub struct Consumer {
    inner: BaseConsumer,
}

impl Consumer {
    /// Subscribes to `topics` as a member of `group`.
    pub fn new(bootstrap: &str, group: &str, topics: &[&str]) -> Result<Consumer> {
        Consumer::with_config(client_config(bootstrap), group, topics)
    }

    /// Like [`Consumer::new`] with these settings (start from
    /// [`client_config`]); the consumer defaults are set only where `config`
    /// has no value.
    pub fn with_config(mut config: ClientConfig, group: &str, topics: &[&str]) -> Result<Consumer> {
        for (key, value) in [
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("fetch.wait.max.ms", "10"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "1000"),
        ] {
            if config.get(key).is_none() {
                config.set(key, value);
            }
        }
        config.set("group.id", group);
        let inner: BaseConsumer = config.create().context("creating a Kafka consumer")?;
        inner
            .subscribe(topics)
            .with_context(|| format!("subscribing to {topics:?}"))?;
        Ok(Consumer { inner })
    }

    /// Polls until `count` records have arrived; fails if they have not
    /// within `timeout`, saying how many did and the last client error.
    /// Client errors alone do not end the wait (a broker may be restarting).
    pub fn collect(&self, count: usize, timeout: Duration) -> Result<Vec<Record>> {
        let deadline = Instant::now() + timeout;
        let mut records = Vec::with_capacity(count);
        let mut last_error = None;
        while records.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!(
                    "received {} of {count} records within {timeout:?} (last client error: {})",
                    records.len(),
                    last_error.map_or("none".to_owned(), |e: KafkaError| e.to_string())
                );
            }
            if let Err(error) = self.poll_once(left.min(POLL_SLICE), &mut records) {
                last_error = Some(error);
            }
        }
        Ok(records)
    }

    /// Every record that arrives within `duration` (for "nothing more
    /// arrives" checks). Client errors are ignored.
    pub fn poll_for(&self, duration: Duration) -> Vec<Record> {
        let deadline = Instant::now() + duration;
        let mut records = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return records;
            }
            let _ = self.poll_once(left.min(POLL_SLICE), &mut records);
        }
    }

    /// Commits the offsets of everything returned so far and waits for the
    /// broker to confirm.
    pub fn commit(&self) -> Result<()> {
        self.inner
            .commit_consumer_state(CommitMode::Sync)
            .context("committing consumer offsets")
    }

    /// The group's committed offsets for partitions `0..partitions` of
    /// `topic` (`None` where nothing is committed), asked of the broker.
    pub fn committed_offsets(&self, topic: &str, partitions: i32) -> Result<Vec<Option<i64>>> {
        let mut list = TopicPartitionList::new();
        for partition in 0..partitions {
            list.add_partition(topic, partition);
        }
        let committed = self
            .inner
            .committed_offsets(list, Duration::from_secs(10))
            .context("fetching committed offsets")?;
        Ok((0..partitions)
            .map(
                |partition| match committed.find_partition(topic, partition) {
                    Some(entry) => match entry.offset() {
                        Offset::Offset(offset) => Some(offset),
                        _ => None,
                    },
                    None => None,
                },
            )
            .collect())
    }

    /// The underlying rdkafka consumer, for anything not covered here.
    pub fn inner(&self) -> &BaseConsumer {
        &self.inner
    }

    fn poll_once(&self, timeout: Duration, into: &mut Vec<Record>) -> Result<(), KafkaError> {
        match self.inner.poll(timeout) {
            None => Ok(()),
            Some(Ok(message)) => {
                into.push(Record {
                    topic: message.topic().to_owned(),
                    partition: message.partition(),
                    offset: message.offset(),
                    key: message.key().map(<[u8]>::to_vec),
                    payload: message.payload().map(<[u8]>::to_vec),
                    headers: message
                        .headers()
                        .map(|headers| {
                            headers
                                .iter()
                                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
                Ok(())
            }
            // Reaching the end of a partition is not an error for a test.
            Some(Err(KafkaError::PartitionEOF(_))) => Ok(()),
            Some(Err(error)) => Err(error),
        }
    }
}
