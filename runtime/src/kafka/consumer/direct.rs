//! Broadcast mode without a consumer group: the consumer assigns itself
//! every partition of its topics.
//!
//! A broadcast consumer reads every partition anyway, and what a group per
//! process start would commit is never read back (the next start has a new
//! group), while each start would leave an idle group on the broker and
//! make `ready` wait for a join (3 s on the embedded broker). So the
//! consumer asks the broker for its topics' partitions and assigns them
//! itself, each with an explicit start: a position handed over by the
//! consumer it replaces, else the high watermark *now* (`latest`) or the
//! first offset (`earliest`). It is positioned as soon as the broker
//! answered. Partitions and topics that appear later are found by a
//! metadata refresh and read from their first record: everything in them
//! was produced after this consumer started watching. Nothing is joined or
//! committed; the positions of handled batches stay in the process
//! ([`super::ConsumerHandle::positions`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::{Offset, TopicPartitionList};

use super::context::PipelineContext;
use super::{ConsumerProgress, Frontier, Positions};
use crate::config::StartFrom;

/// How often the topics' partitions are looked up again once every topic
/// exists (a group consumer finds new partitions only every
/// `topic.metadata.refresh.interval.ms`, 5 minutes by default).
pub(super) const REFRESH: Duration = Duration::from_secs(10);

/// How often while a topic does not exist yet, or a lookup failed.
pub(super) const RETRY: Duration = Duration::from_millis(500);

/// How long each broker request may take: the consumer thread waits for
/// it, so keep it short; a failure is retried after [`RETRY`].
const TIMEOUT: Duration = Duration::from_secs(2);

/// Where a partition not assigned yet starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Its high watermark, looked up before it is assigned.
    Latest,
    /// Its first record still there.
    Beginning,
    /// This offset (handed over; out of range means deleted records, and
    /// `auto.offset.reset = earliest` then takes the first one there).
    At(i64),
}

/// The self-assignment of one direct consumer.
#[derive(Debug)]
pub(super) struct Direct {
    topics: Vec<String>,
    start: StartFrom,
    resume: Positions,
    /// Partitions assigned.
    assigned: BTreeSet<(String, i32)>,
    /// Partitions found but not assigned yet, with their start.
    pending: BTreeMap<(String, i32), Start>,
    /// Whether every topic has been looked up once: partitions found after
    /// that are new.
    baseline: bool,
    /// Topics the broker did not know at the last lookup.
    missing: BTreeSet<String>,
    next_lookup: Instant,
}

impl Direct {
    pub(super) fn new(topics: &[String], (start, resume): (StartFrom, Positions)) -> Self {
        Self {
            topics: topics.to_vec(),
            start,
            resume,
            assigned: BTreeSet::new(),
            pending: BTreeMap::new(),
            baseline: false,
            missing: BTreeSet::new(),
            next_lookup: Instant::now(),
        }
    }

    /// When due, looks the partitions up and assigns those it has not yet
    /// (their starts go to `frontier`, so that a successor resumes even
    /// partitions nothing was read from), then says whether the consumer
    /// is positioned.
    pub(super) fn tick(&mut self, consumer: &BaseConsumer<PipelineContext>, frontier: &Frontier) {
        if Instant::now() < self.next_lookup {
            return;
        }
        let context = consumer.context();
        let settled = self
            .look_up(consumer)
            .and_then(|()| self.assign(consumer, frontier));
        let pipeline = &*context.pipeline;
        match settled {
            Ok(()) => {
                let every = if self.missing.is_empty() {
                    REFRESH
                } else {
                    RETRY
                };
                self.next_lookup = Instant::now() + every;
            }
            Err(error) => {
                tracing::debug!(pipeline, %error, "Looking up the partitions failed; retrying.");
                context.report(&error, &error.to_string());
                self.next_lookup = Instant::now() + RETRY;
            }
        }
        let progress: &ConsumerProgress = &context.progress;
        let positioned = self.baseline && self.pending.is_empty();
        if positioned && !progress.positioned.load(Ordering::Acquire) {
            tracing::info!(pipeline, partitions = self.assigned.len(), missing = ?self.missing, "Kafka partitions assigned without a consumer group.");
        }
        progress.positioned.store(positioned, Ordering::Release);
        progress
            .assigned_partitions
            .store(self.assigned.len() as u64, Ordering::Release);
    }

    /// Adds every partition neither assigned nor pending to `pending`.
    fn look_up(&mut self, consumer: &BaseConsumer<PipelineContext>) -> Result<(), RdKafkaError> {
        let mut missing = BTreeSet::new();
        let mut found = Vec::new();
        for topic in &self.topics {
            let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT)?;
            for entry in metadata.topics() {
                match entry.error() {
                    None => {}
                    Some(code)
                        if rdkafka::error::RDKafkaErrorCode::from(code)
                            == rdkafka::error::RDKafkaErrorCode::UnknownTopicOrPartition =>
                    {
                        missing.insert(entry.name().to_owned());
                        continue;
                    }
                    Some(code) => return Err(RdKafkaError::MetadataFetch(code.into())),
                }
                for partition in entry.partitions() {
                    found.push((entry.name().to_owned(), partition.id()));
                }
            }
        }
        for key in found {
            if self.assigned.contains(&key) || self.pending.contains_key(&key) {
                continue;
            }
            let start = match self.resume.get(&key) {
                Some(&offset) => Start::At(offset),
                None if self.baseline => Start::Beginning,
                None => match self.start {
                    StartFrom::Latest => Start::Latest,
                    StartFrom::Earliest => Start::Beginning,
                },
            };
            self.pending.insert(key, start);
        }
        if self.missing != missing && !missing.is_empty() {
            tracing::info!(pipeline = &*consumer.context().pipeline, topics = ?missing, "Topics do not exist yet; each is read from its first record when it appears.");
        }
        self.missing = missing;
        self.baseline = true;
        Ok(())
    }

    /// Assigns the pending partitions, each at its start.
    fn assign(
        &mut self,
        consumer: &BaseConsumer<PipelineContext>,
        frontier: &Frontier,
    ) -> Result<(), RdKafkaError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::with_capacity(self.pending.len());
        let mut starts = Vec::with_capacity(self.pending.len());
        for ((topic, partition), start) in &self.pending {
            // Offset 0 stands for "the first record still there": out of
            // range once records were deleted, which resets to the first.
            let (offset, position) = match *start {
                Start::Latest => {
                    let (_, high) = consumer.fetch_watermarks(topic, *partition, TIMEOUT)?;
                    (Offset::Offset(high), high)
                }
                Start::Beginning => (Offset::Beginning, 0),
                Start::At(offset) => (Offset::Offset(offset), offset),
            };
            list.add_partition_offset(topic, *partition, offset)?;
            starts.push(((topic.clone(), *partition), position));
        }
        consumer.incremental_assign(&list)?;
        for ((topic, partition), position) in starts {
            frontier.start(&topic, partition, position);
        }
        let context = consumer.context();
        tracing::debug!(
            pipeline = &*context.pipeline,
            partitions = list.count(),
            "Assigned partitions."
        );
        self.assigned
            .extend(std::mem::take(&mut self.pending).into_keys());
        context.metrics.rebalanced(self.assigned.len());
        Ok(())
    }
}
