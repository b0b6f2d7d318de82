//! The Kafka side of fanout mode: one thread producing stamped records on a
//! fixed schedule (open loop) or as fast as delivery allows (closed loop).
//!
//! Open loop: record i is due at `i / rate` seconds; the thread sleeps until
//! a record is due and never waits for a delivery report, so a slow broker
//! or bridge makes records late (which their latency, measured from the
//! due time, shows) rather than making the generator send fewer. Closed
//! loop: at most `max_in_flight` records without a delivery report; a
//! record's stamp is the time it was handed to the client.
//!
//! Delivery reports are served by rdkafka's own polling thread
//! (`ThreadedProducer`): `BaseProducer::poll` with a timeout busy-waits
//! through its last millisecond, which took a whole core here.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext, ThreadedProducer};
use serde::Serialize;

use crate::args::Rate;
use crate::payload::{PayloadBuf, Stamp};
use crate::stats::since_ns;

/// How long `flush` waits for outstanding delivery reports at the end.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// Distinct delivery errors kept for the report.
const KEPT_ERRORS: usize = 5;

/// What to produce.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// Channel names: record i goes to channel i mod len, keyed by its name.
    pub channels: Vec<String>,
    /// Open-loop rate or closed loop.
    pub rate: Rate,
    /// Records in all; `None`: until `duration` is over.
    pub records: Option<u64>,
    /// How long to send for when `records` is `None`.
    pub duration: Duration,
    /// Payload size.
    pub size: usize,
    /// Closed loop: records without a delivery report at most.
    pub max_in_flight: usize,
    /// The producer's `linger.ms`.
    pub linger_ms: u32,
    /// More librdkafka settings.
    pub properties: Vec<(String, String)>,
}

/// What the producer did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProduceReport {
    /// Records handed to the client.
    pub records: u64,
    /// Records whose delivery failed (or that could not be queued).
    pub failed: u64,
    /// Payload bytes per record.
    pub payload_bytes: usize,
    /// Seconds from the first to the last send.
    pub send_seconds: f64,
    /// Records per second achieved over `send_seconds`.
    pub records_per_sec: f64,
    /// Seconds from the first send until every delivery report arrived.
    pub delivered_seconds: f64,
    /// Open loop: the most a send was behind its schedule, milliseconds
    /// (large values mean the generator itself could not keep up).
    pub max_behind_schedule_ms: f64,
    /// A few delivery errors.
    pub errors: Vec<String>,
    /// Records sent per channel (index as in the channel list).
    #[serde(skip)]
    pub per_channel: Vec<u64>,
    /// Failed records per channel.
    #[serde(skip)]
    pub failed_per_channel: Vec<u64>,
    /// When the first record was sent, ns since the run's start.
    #[serde(skip)]
    pub first_send_ns: u64,
}

struct Context {
    in_flight: AtomicUsize,
    /// Closed loop: the window size, at which the sender waits.
    window: usize,
    /// Wakes the sender when the window gets room.
    room: (Mutex<()>, Condvar),
    failed: Vec<AtomicU64>,
    errors: Mutex<Vec<String>>,
}

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, channel: usize) {
        if self.in_flight.fetch_sub(1, Ordering::AcqRel) == self.window {
            let _guard = self.room.0.lock().unwrap_or_else(|e| e.into_inner());
            self.room.1.notify_one();
        }
        if let Err((error, _)) = result {
            self.failed[channel].fetch_add(1, Ordering::Relaxed);
            self.keep_error(error.to_string());
        }
    }
}

impl Context {
    /// Blocks while `window` records are in flight.
    fn wait_for_room(&self) {
        let mut guard = self.room.0.lock().unwrap_or_else(|e| e.into_inner());
        while self.in_flight.load(Ordering::Acquire) >= self.window {
            // The timeout covers a report that lands between the check
            // and the wait.
            guard = self
                .room
                .1
                .wait_timeout(guard, Duration::from_millis(1))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn keep_error(&self, error: String) {
        let mut errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        if errors.len() < KEPT_ERRORS && !errors.contains(&error) {
            errors.push(error);
        }
    }
}

/// Produces according to `plan`, stamping times relative to `start`;
/// blocks until every delivery report arrived (or the flush timed out).
pub fn produce(plan: &Plan, start: Instant) -> Result<ProduceReport> {
    let channels = plan.channels.len().max(1);
    let context = Context {
        in_flight: AtomicUsize::new(0),
        window: plan.max_in_flight.max(1),
        room: (Mutex::new(()), Condvar::new()),
        failed: (0..channels).map(|_| AtomicU64::new(0)).collect(),
        errors: Mutex::new(Vec::new()),
    };
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &plan.bootstrap)
        .set("client.id", "sluice-loadgen")
        .set("linger.ms", plan.linger_ms.to_string())
        .set("queue.buffering.max.messages", "1000000")
        .set("message.timeout.ms", "30000")
        .set("log_level", "3");
    for (key, value) in &plan.properties {
        config.set(key, value);
    }
    let producer: ThreadedProducer<Context> = config
        .create_with_context(context)
        .context("creating the Kafka producer")?;

    let mut payload = PayloadBuf::new(plan.size);
    let mut report = ProduceReport {
        payload_bytes: payload.bytes().len(),
        per_channel: vec![0; channels],
        ..ProduceReport::default()
    };
    let interval_ns = match plan.rate {
        Rate::PerSecond(rate) => Some(1e9 / rate),
        Rate::Max => None,
    };
    let total = plan.records.or_else(|| match plan.rate {
        Rate::PerSecond(rate) => Some((rate * plan.duration.as_secs_f64()).round() as u64),
        Rate::Max => None,
    });
    let deadline_ns = u64::try_from(plan.duration.as_nanos()).unwrap_or(u64::MAX);
    let schedule_start = since_ns(start);
    report.first_send_ns = schedule_start;
    let mut behind_ns = 0;
    let mut last_send = schedule_start;
    let mut i: u64 = 0;
    loop {
        if total.is_some_and(|total| i >= total) {
            break;
        }
        let due = match interval_ns {
            Some(interval) => {
                let due = schedule_start + (i as f64 * interval) as u64;
                let now = since_ns(start);
                if due > now {
                    std::thread::sleep(Duration::from_nanos(due - now));
                } else {
                    behind_ns = behind_ns.max(now - due);
                }
                due
            }
            None => {
                producer.context().wait_for_room();
                let now = since_ns(start);
                if total.is_none() && now - schedule_start >= deadline_ns {
                    break;
                }
                now
            }
        };
        let channel = (i % channels as u64) as usize;
        let bytes = payload.stamp(Stamp {
            channel: channel as u32,
            seq: i / channels as u64,
            sent_ns: due,
        });
        let key = plan.channels[channel].as_bytes();
        producer.context().in_flight.fetch_add(1, Ordering::AcqRel);
        let mut record = BaseRecord::with_opaque_to(&plan.topic, channel)
            .key(key)
            .payload(bytes);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((error, _)) => {
                    let context = producer.context();
                    context.in_flight.fetch_sub(1, Ordering::AcqRel);
                    context.failed[channel].fetch_add(1, Ordering::Relaxed);
                    context.keep_error(error.to_string());
                    break;
                }
            }
        }
        report.per_channel[channel] += 1;
        last_send = since_ns(start);
        i += 1;
    }
    report.records = i;
    if let Err(error) = producer.flush(FLUSH_TIMEOUT) {
        producer.context().keep_error(format!("flush: {error}"));
    }
    let context = producer.context();
    report.failed_per_channel = context
        .failed
        .iter()
        .map(|f| f.load(Ordering::Relaxed))
        .collect();
    // Records still in flight after the flush timeout never got a report.
    let unreported = context.in_flight.load(Ordering::Acquire) as u64;
    report.failed = report.failed_per_channel.iter().sum::<u64>() + unreported;
    report.errors = context
        .errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let send_ns = last_send.saturating_sub(schedule_start);
    report.send_seconds = send_ns as f64 / 1e9;
    report.records_per_sec = if send_ns > 0 {
        i as f64 / report.send_seconds
    } else {
        0.0
    };
    report.delivered_seconds = (since_ns(start) - schedule_start) as f64 / 1e9;
    report.max_behind_schedule_ms = behind_ns as f64 / 1e6;
    Ok(report)
}

/// Creates `topic` with `partitions` partitions (replication 1); an
/// existing topic is not an error.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<String> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("log_level", "3")
        .create()
        .context("creating a Kafka admin client")?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&new], &options)
        .await
        .with_context(|| format!("creating topic {topic:?}"))?;
    match results.into_iter().next() {
        None | Some(Ok(_)) => Ok("created".to_owned()),
        Some(Err((_, RDKafkaErrorCode::TopicAlreadyExists))) => Ok("exists".to_owned()),
        Some(Err((name, code))) => anyhow::bail!("creating topic {name:?}: {code}"),
    }
}
