//! A pipeline's consumer: one thread, batches of records, at-least-once.
//!
//! The thread (`sluice-consume-<pipeline>`) polls a librdkafka consumer,
//! gathers what is already there into a batch of up to `max_batch` records
//! and hands it to the pipeline's callback, which calls plugins
//! synchronously: never on a tokio worker. Offsets are stored only after the
//! callback returned. In a consumer group ([`Membership::Group`]) they are
//! committed by librdkafka's auto-commit, on a revoke and on exit, so a
//! crash re-delivers at most what was unfinished; a direct consumer
//! ([`Membership::Direct`], `direct.rs`) keeps them in the process.
//! librdkafka reconnects by itself; errors are logged and counted and the
//! loop goes on. A callback that panics did not handle its batch: its
//! offsets are not stored, and the group resumes at its first record.
//! Whatever ends the thread is kept: [`ConsumerHandle::status`] and
//! [`ConsumerHandle::join`] report it.

mod context;
mod direct;
mod frontier;
mod handle;
mod poll_loop;
mod reader;
mod start;
mod undecodable;

use std::collections::BTreeMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _};

use super::log::{ErrorKind, ErrorLog};
use super::{ClientSettings, KafkaError};
use crate::config::{self, StartFrom};
use crate::record::Record;
use context::PipelineContext;
use handle::Shared;

pub use frontier::Frontier;
pub use handle::{ConsumerHandle, ConsumerStatus, ConsumerWatch};
pub use reader::Reader;

/// Records handed to the callback at most at once.
pub const DEFAULT_MAX_BATCH: usize = 256;

/// How long one poll waits for a record: also how fast a stop is noticed.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_millis(100);

/// The next offset to read per (topic, partition).
pub type Positions = BTreeMap<(String, i32), i64>;

/// What a consumer reads: from a pipeline's `[pipelines.source]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topics to read.
    pub topics: Vec<String>,
    /// Consumer group: joined with [`Membership::Group`]; librdkafka needs
    /// one to assign partitions at all, but a direct consumer never joins
    /// it or commits to it.
    pub group_id: String,
    /// Where a group without committed offsets begins, or a direct
    /// consumer's partitions known when it starts.
    pub start: StartFrom,
    /// Who decides which partitions it reads.
    pub membership: Membership,
}

/// Who decides which partitions a consumer reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Membership {
    /// The members of the consumer group split them, and handled offsets
    /// are committed to the group (`mode = "shared"`).
    Group,
    /// The consumer reads every partition, assigned by itself, without
    /// joining anything (`mode = "broadcast"`, see `direct.rs`). Partitions
    /// in `resume` start there: a replaced consumer's positions.
    Direct {
        /// Where partitions start instead of `start`.
        resume: Positions,
    },
}

impl From<&config::Source> for Subscription {
    fn from(source: &config::Source) -> Self {
        Self {
            topics: source.topics.clone(),
            group_id: source.group_id.clone(),
            start: source.start,
            membership: match source.mode {
                config::SourceMode::Broadcast => Membership::Direct {
                    resume: Positions::new(),
                },
                config::SourceMode::Shared => Membership::Group,
            },
        }
    }
}

/// How a consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// The pipeline it serves: names the thread and every log line.
    pub pipeline: String,
    /// Most records per batch.
    pub max_batch: usize,
    /// How long one poll waits.
    pub poll_timeout: Duration,
    /// Where its records, batches, errors and rebalances are counted.
    pub metrics: crate::metrics::ConsumerMetrics,
    /// The frontier it moves (see `frontier.rs`) when it must outlive the
    /// consumer (a pipeline's, for its resuming clients); else its own.
    pub frontier: Option<Arc<Frontier>>,
}

impl ConsumerOptions {
    /// Defaults for `pipeline`, counted in the process's registry without
    /// a tenant label (see [`Self::counted_in`]).
    pub fn new(pipeline: impl Into<String>) -> Self {
        let pipeline = pipeline.into();
        Self {
            metrics: crate::metrics::global().consumer("", &pipeline),
            pipeline,
            max_batch: DEFAULT_MAX_BATCH,
            poll_timeout: DEFAULT_POLL_TIMEOUT,
            frontier: None,
        }
    }

    /// Counts in these handles instead.
    pub fn counted_in(mut self, metrics: crate::metrics::ConsumerMetrics) -> Self {
        self.metrics = metrics;
        self
    }
}

/// What the callback says after a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchVerdict {
    /// Handled; go on.
    Continue,
    /// Not (fully) handled: stop the consumer for this reason without
    /// committing the batch, so a restart reads it again.
    Stop(String),
}

/// Why a consumer thread ended.
#[derive(Debug, Clone)]
pub enum ConsumerExit {
    /// [`ConsumerHandle::stop`] was called.
    Stopped,
    /// The callback returned [`BatchVerdict::Stop`] with this reason.
    Verdict(String),
    /// The client could not be built, or hit a fatal error.
    Failed(KafkaError),
    /// The callback (or the loop) panicked with this message.
    Panicked(String),
}

impl fmt::Display for ConsumerExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConsumerExit::Stopped => f.write_str("stopped on request"),
            ConsumerExit::Verdict(reason) => write!(f, "stopped by the pipeline: {reason}"),
            ConsumerExit::Failed(error) => write!(f, "failed: {error}"),
            ConsumerExit::Panicked(message) => write!(f, "panicked: {message}"),
        }
    }
}

/// Where a consumer stands, for the process to act on (its counts are
/// metrics: [`ConsumerOptions::metrics`]).
#[derive(Debug, Default)]
pub struct ConsumerProgress {
    /// Partitions assigned right now.
    pub assigned_partitions: AtomicU64,
    /// True once the current assignment's start positions are fixed: from
    /// then on, every record produced to an assigned partition is read.
    pub positioned: AtomicBool,
    /// Lag per (topic, partition), from librdkafka's statistics (every
    /// [`STATS_INTERVAL_MS`]).
    pub lag: crate::metrics::LagMap,
    /// The client's errors, logged once per streak; the latest is kept
    /// while it fails.
    pub(super) errors: ErrorLog,
    /// Where its client errors are counted (set when it starts).
    metrics: std::sync::OnceLock<crate::metrics::ConsumerMetrics>,
}

impl ConsumerProgress {
    /// Why the consumer's client is failing right now (a wrong password,
    /// an untrusted certificate, brokers down, ...), if it is.
    pub fn client_problem(&self) -> Option<String> {
        self.errors.problem()
    }

    /// Whether the client is failing for its configuration (credentials,
    /// certificates, protocol), which retrying does not fix.
    pub fn misconfigured(&self) -> bool {
        self.errors.misconfigured()
    }

    /// A TLS/plaintext mismatch found by asking the broker
    /// ([`crate::kafka::protocol_probe`]): counted, and the client's
    /// problem while it fails.
    pub fn protocol_mismatch(&self, reason: &str) {
        self.errors.protocol_mismatch(reason);
        if let Some(metrics) = self.metrics.get() {
            metrics.client_error(ErrorKind::ProtocolMismatch.as_str());
        }
    }
}

/// How often librdkafka reports statistics (consumer lag among them).
pub const STATS_INTERVAL_MS: &str = "5000";

/// Starts a consumer for `subscription` on its own thread; `on_batch` gets
/// every batch. Fails if the client cannot be built or cannot subscribe.
pub fn spawn_consumer<F>(
    settings: &ClientSettings,
    subscription: Subscription,
    options: ConsumerOptions,
    on_batch: F,
) -> Result<ConsumerHandle, KafkaError>
where
    F: FnMut(&[Record]) -> BatchVerdict + Send + 'static,
{
    let shared = Arc::new(Shared {
        frontier: options.frontier.clone().unwrap_or_default(),
        ..Shared::default()
    });
    let _ = shared.progress.metrics.set(options.metrics.clone());
    let direct = matches!(subscription.membership, Membership::Direct { .. });
    let mut config = settings.consumer_config(&subscription.group_id, subscription.start, direct);
    config.set("statistics.interval.ms", STATS_INTERVAL_MS);
    let start = subscription.start;
    let token = settings.token_provider();
    let name = format!("sluice-consume-{}", options.pipeline);
    let (ready_tx, ready_rx) = mpsc::sync_channel(1);
    let thread_shared = shared.clone();
    let pipeline = options.pipeline.clone();
    let thread = std::thread::Builder::new()
        .name(name.clone())
        .spawn(move || {
            let mut on_batch = on_batch;
            let run = catch_unwind(AssertUnwindSafe(|| {
                let context = PipelineContext::new(
                    &options.pipeline,
                    start,
                    &thread_shared.progress,
                    options.metrics.clone(),
                )
                .with_token_provider(token);
                let consumer = match create(config, context, &subscription) {
                    Ok(consumer) => consumer,
                    Err(error) => {
                        let _ = ready_tx.send(Err(error.clone()));
                        return ConsumerExit::Failed(error);
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let direct = match subscription.membership {
                    Membership::Direct { resume } => {
                        Some(direct::Direct::new(&subscription.topics, (start, resume)))
                    }
                    Membership::Group => None,
                };
                let mut read = poll_loop::Reading {
                    shared: &thread_shared,
                    options: &options,
                    start,
                    direct,
                };
                read.run(&consumer, &mut on_batch)
                // Dropping the consumer closes it: leaves the group.
            }));
            let exit = run.unwrap_or_else(|panic| ConsumerExit::Panicked(panic_message(&*panic)));
            log_exit(&options.pipeline, &exit);
            *thread_shared.exit.lock().unwrap_or_else(|e| e.into_inner()) = Some(exit);
        })
        .map_err(|error| KafkaError::Spawn {
            name,
            message: error.to_string(),
        })?;
    let handle = ConsumerHandle::new(pipeline, shared, thread);
    match ready_rx.recv() {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(error)) => Err(error),
        // The thread panicked while building the client.
        Err(_) => Err(KafkaError::Spawn {
            name: format!("sluice-consume-{}", handle.pipeline()),
            message: handle.join().to_string(),
        }),
    }
}

/// Builds the client and, in a group, subscribes (a direct consumer
/// assigns itself partitions in its poll loop, so that a broker that is
/// slow or down does not hold up the start).
fn create(
    config: rdkafka::ClientConfig,
    context: PipelineContext,
    subscription: &Subscription,
) -> Result<BaseConsumer<PipelineContext>, KafkaError> {
    let consumer = client(&config, context)?;
    if subscription.membership != Membership::Group {
        return Ok(consumer);
    }
    let topics: Vec<&str> = subscription.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|source| KafkaError::Subscribe {
            topics: subscription.topics.clone(),
            source,
        })?;
    Ok(consumer)
}

/// A librdkafka consumer with this context.
fn client(
    config: &rdkafka::ClientConfig,
    context: PipelineContext,
) -> Result<BaseConsumer<PipelineContext>, KafkaError> {
    config
        .create_with_context(context)
        .map_err(|source| KafkaError::Client {
            client: "consumer",
            source,
        })
}

fn log_exit(pipeline: &str, exit: &ConsumerExit) {
    match exit {
        ConsumerExit::Stopped => tracing::info!(pipeline, "Kafka consumer stopped."),
        ConsumerExit::Verdict(reason) => {
            tracing::warn!(pipeline, reason = %reason, "Kafka consumer stopped by the pipeline.")
        }
        ConsumerExit::Failed(error) => {
            tracing::error!(pipeline, %error, "Kafka consumer failed.")
        }
        ConsumerExit::Panicked(message) => {
            tracing::error!(pipeline, panic = %message, "Kafka consumer thread panicked.")
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}
