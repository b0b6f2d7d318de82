//! The loop of a consumer thread: poll, gather a batch, hand it over, store offsets.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{BorrowedMessage, Headers};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::context::PipelineContext;
use super::direct::Direct;
use super::start;
use super::undecodable::{self, Stuck};
use super::{BatchVerdict, ConsumerExit, ConsumerOptions, Shared, panic_message};
use crate::config::StartFrom;
use crate::kafka::KafkaError;
use crate::record::Record;

/// One consumer thread's loop and what it reads with.
pub(super) struct Reading<'a> {
    pub(super) shared: &'a Shared,
    pub(super) options: &'a ConsumerOptions,
    pub(super) start: StartFrom,
    /// A direct consumer's self-assignment (none in a group).
    pub(super) direct: Option<Direct>,
}

impl Reading<'_> {
    /// Runs until a stop request, a `Stop` verdict or a fatal error; in a
    /// group, commits the handled offsets before returning.
    pub(super) fn run<F>(
        &mut self,
        consumer: &BaseConsumer<PipelineContext>,
        on_batch: &mut F,
    ) -> ConsumerExit
    where
        F: FnMut(&[Record]) -> BatchVerdict,
    {
        let (shared, options) = (self.shared, self.options);
        let context = consumer.context();
        let pipeline = &*context.pipeline;
        let max_batch = options.max_batch.max(1);
        let mut topics = TopicNames::default();
        let mut batch: Vec<Record> = Vec::with_capacity(max_batch);
        let mut stuck = Stuck::default();
        tracing::info!(
            pipeline,
            max_batch,
            direct = self.direct.is_some(),
            "Kafka consumer running."
        );
        let exit = loop {
            if shared.stop.load(Ordering::Acquire) {
                break ConsumerExit::Stopped;
            }
            self.position(consumer);
            batch.clear();
            if let Err(error) = gather(
                consumer,
                options.poll_timeout,
                max_batch,
                &mut topics,
                &mut batch,
            ) {
                break ConsumerExit::Failed(error);
            }
            // A partition held by a batch that cannot be decoded: its next
            // offset goes to the pipeline as poison, then the consumer seeks on.
            let hole = stuck.next(consumer, context.take_undecodable());
            if let Some(hole) = &hole {
                batch.push(hole.clone());
            } else if batch.is_empty() {
                continue;
            }
            if batch.len() > usize::from(hole.is_some()) {
                context.recovered();
            }
            let handled = handled_positions(&batch);
            shared.frontier.claim(&handled);
            // A panicking callback did not handle its batch: nothing is stored
            // for it, and what was handled before is still committed below.
            let verdict = match catch_unwind(AssertUnwindSafe(|| on_batch(&batch))) {
                Ok(verdict) => verdict,
                Err(panic) => break ConsumerExit::Panicked(panic_message(&*panic)),
            };
            options.metrics.batch(batch.len());
            // A stopped batch was not fully handled (a poison record under the
            // `stop` policy, say): leave it uncommitted so a restart reads it again.
            if let BatchVerdict::Stop(reason) = verdict {
                break ConsumerExit::Verdict(reason);
            }
            shared.frontier.deliver(&handled);
            // Stored offsets are what a group commits, and what lag is
            // measured from.
            store_offsets(consumer, pipeline, &handled);
            if let Some(hole) = &hole {
                undecodable::seek_past(consumer, pipeline, hole);
            }
        };
        if self.direct.is_none() {
            context.commit_stored(consumer, "exit");
        }
        exit
    }

    /// Fixes where the assignment starts: a direct consumer assigns itself
    /// what it found; in a group, the rebalance callback fixes where a new
    /// assignment starts, and when it could not, this seeks (see `start.rs`).
    fn position(&mut self, consumer: &BaseConsumer<PipelineContext>) {
        let progress = &self.shared.progress;
        if let Some(direct) = &mut self.direct {
            direct.tick(consumer, &self.shared.frontier);
        } else if !progress.positioned.load(Ordering::Acquire)
            && progress.assigned_partitions.load(Ordering::Acquire) > 0
        {
            match start::seek_to_latest(consumer, self.start) {
                Ok(()) => progress.positioned.store(true, Ordering::Release),
                Err(error) => {
                    tracing::debug!(pipeline = &*consumer.context().pipeline, %error, "Fixing start positions failed; retrying.")
                }
            }
        }
    }
}

/// Polls once with `timeout`, then takes whatever else is already there
/// without waiting, up to `max_batch` records.
fn gather(
    consumer: &BaseConsumer<PipelineContext>,
    timeout: Duration,
    max_batch: usize,
    topics: &mut TopicNames,
    batch: &mut Vec<Record>,
) -> Result<(), KafkaError> {
    let mut wait = timeout;
    while batch.len() < max_batch {
        match consumer.poll(wait) {
            // Nothing (more) there, or a rebalance or commit event was served.
            None => return Ok(()),
            Some(Ok(message)) => batch.push(to_record(&message, topics)),
            Some(Err(error)) => return on_error(consumer, error),
        }
        wait = Duration::ZERO;
    }
    Ok(())
}

/// Counts and logs a polling error; only a fatal one ends the consumer.
fn on_error(
    consumer: &BaseConsumer<PipelineContext>,
    error: RdKafkaError,
) -> Result<(), KafkaError> {
    let context = consumer.context();
    context.metrics.error();
    match error {
        RdKafkaError::PartitionEOF(partition) => {
            tracing::trace!(
                pipeline = &*context.pipeline,
                partition,
                "End of partition."
            );
            Ok(())
        }
        RdKafkaError::MessageConsumptionFatal(code) => {
            let reason = consumer
                .client()
                .fatal_error()
                .map_or_else(|| code.to_string(), |(_, reason)| reason);
            Err(KafkaError::Fatal { code, reason })
        }
        error => {
            // Client-level errors were already logged by the context; this
            // catches partition-level ones, deduplicated the same way.
            context.report(&error, &error.to_string());
            Ok(())
        }
    }
}

/// Copies a message into a [`Record`]: one buffer holds the payload, the
/// key and the header values, each a slice of it.
pub(super) fn to_record(message: &BorrowedMessage<'_>, topics: &mut TopicNames) -> Record {
    let payload = message.payload().unwrap_or_default();
    let key = message.key();
    let headers = message.headers();
    let header_bytes: usize = headers.map_or(0, |all| {
        all.iter()
            .map(|header| header.value.map_or(0, <[u8]>::len))
            .sum()
    });
    let mut buffer =
        BytesMut::with_capacity(payload.len() + key.map_or(0, <[u8]>::len) + header_bytes);
    buffer.extend_from_slice(payload);
    if let Some(key) = key {
        buffer.extend_from_slice(key);
    }
    if let Some(all) = headers {
        for header in all.iter() {
            buffer.extend_from_slice(header.value.unwrap_or_default());
        }
    }
    let mut rest = buffer.freeze();
    let payload = take(&mut rest, payload.len());
    let key = key.map(|key| take(&mut rest, key.len()));
    let headers = headers.map_or_else(Vec::new, |all| {
        all.iter()
            .map(|header| {
                let len = header.value.map_or(0, <[u8]>::len);
                (header.key.to_owned(), take(&mut rest, len))
            })
            .collect()
    });
    Record {
        topic: topics.get(message.topic()),
        partition: message.partition(),
        offset: message.offset(),
        timestamp_ms: message.timestamp().to_millis(),
        key,
        payload,
        headers,
        undecodable: None,
    }
}

/// The first `len` bytes of `rest` (no copy; nothing shared for an empty slice).
fn take(rest: &mut Bytes, len: usize) -> Bytes {
    if len == 0 {
        Bytes::new()
    } else {
        rest.split_to(len)
    }
}

/// Per partition of the batch, the offset after its last record: where
/// the consumer (or, in a group, its successor after the next commit)
/// resumes.
fn handled_positions(batch: &[Record]) -> Vec<((&str, i32), i64)> {
    let mut last: Vec<((&str, i32), i64)> = Vec::new();
    for record in batch {
        let key = (&*record.topic, record.partition);
        match last.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = entry.1.max(record.offset + 1),
            None => last.push((key, record.offset + 1)),
        }
    }
    last
}

/// Stores the handled positions for the group's next commit.
fn store_offsets(
    consumer: &BaseConsumer<PipelineContext>,
    pipeline: &str,
    handled: &[((&str, i32), i64)],
) {
    let mut offsets = TopicPartitionList::with_capacity(handled.len());
    for &((topic, partition), next) in handled {
        if let Err(error) = offsets.add_partition_offset(topic, partition, Offset::Offset(next)) {
            tracing::warn!(pipeline, topic, partition, %error, "Cannot record a handled offset.");
        }
    }
    if let Err(error) = consumer.store_offsets(&offsets) {
        // Typically a partition revoked while its batch was handled: its new
        // owner reads those records again (at-least-once).
        tracing::debug!(pipeline, %error, "Some handled offsets were not stored.");
    }
}

/// One shared name per topic, so records do not each allocate theirs.
#[derive(Debug, Default)]
pub(super) struct TopicNames(Vec<Arc<str>>);

impl TopicNames {
    fn get(&mut self, name: &str) -> Arc<str> {
        if let Some(known) = self.0.iter().find(|known| ***known == *name) {
            return known.clone();
        }
        let topic: Arc<str> = Arc::from(name);
        self.0.push(topic.clone());
        topic
    }
}
