//! The record path of one pipeline: the plugin [`Stages`] (transforms,
//! then the router, once per batch), then fanout through the hub. Runs on
//! the pipeline's consumer thread, so plugin calls never touch tokio.

use std::sync::Arc;

use super::stages::{Outlet, Poison, Stages};
use crate::config::{Format, PoisonPolicy};
use crate::hub::{Frame, Hub, Wakeups};
use crate::kafka::BatchVerdict as Verdict;
use crate::plugin::PluginInstance;
use crate::record::Record;

/// Sends a poison record to the dead-letter topic; an error stops the
/// pipeline rather than lose the record.
pub type DeadLetter = Box<dyn FnMut(&Record, &str) -> Result<(), String> + Send>;

/// Hands a routed frame for `channel` to the pipeline's subscribers on
/// other nodes of a cluster; says whether any were there (`mode =
/// "shared"`: this node is the only one that reads the record).
pub type Forward = Box<dyn FnMut(&str, &Frame) -> bool + Send>;

/// Where a live reload sends a pipeline's next [`Stages`] (same format,
/// new plugin instances).
pub type StageSender = std::sync::mpsc::Sender<Stages>;

/// Transforms, router and hub of one pipeline.
pub struct RecordPath {
    stages: Stages,
    next_stage: Option<std::sync::mpsc::Receiver<Stages>>,
    fanout: Fanout,
}

/// Where a running pipeline's records go: its hub, or its poison policy.
struct Fanout {
    pipeline: String,
    hub: Arc<Hub>,
    /// Writers to wake once the batch is queued (one wake-up per batch,
    /// not per record).
    wakeups: Wakeups,
    poison: PoisonPolicy,
    dead_letter: Option<DeadLetter>,
    forward: Option<Forward>,
    metrics: Arc<crate::metrics::PipelineMetrics>,
}

impl RecordPath {
    /// A record path; `dead_letter` is required when the policy names a topic.
    pub fn new(
        pipeline: &str,
        transforms: Vec<PluginInstance>,
        router: Option<PluginInstance>,
        hub: Arc<Hub>,
        format: Format,
        poison: PoisonPolicy,
        dead_letter: Option<DeadLetter>,
    ) -> Self {
        Self {
            stages: Stages {
                transforms,
                router,
                format,
            },
            next_stage: None,
            fanout: Fanout {
                pipeline: pipeline.to_owned(),
                hub,
                wakeups: Wakeups::default(),
                poison,
                dead_letter,
                forward: None,
                metrics: crate::metrics::global().pipeline("", pipeline),
            },
        }
    }

    /// Counts its records under these labels (the default: the process's
    /// registry, no tenant).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::PipelineMetrics>) -> Self {
        self.fanout.metrics = metrics;
        self
    }

    /// Also hands every routed frame to `forward` (see [`Forward`]).
    pub fn forwarding(mut self, forward: Forward) -> Self {
        self.fanout.forward = Some(forward);
        self
    }

    /// Takes new [`Stages`] from the returned sender before each batch
    /// (a batch already started finishes on the stage it started with).
    pub fn swappable(&mut self) -> StageSender {
        let (tx, rx) = std::sync::mpsc::channel();
        self.next_stage = Some(rx);
        tx
    }

    /// Processes one batch of consumed records.
    pub fn on_batch(&mut self, records: &[Record]) -> Verdict {
        if let Some(next) = &self.next_stage
            && let Some(stages) = next.try_iter().last()
        {
            self.stages = stages;
            tracing::debug!(pipeline = %self.fanout.pipeline, "Record path switched to the reloaded plugins.");
        }
        match self.process(records) {
            Ok(()) => Verdict::Continue,
            Err(reason) => Verdict::Stop(reason),
        }
    }

    /// `Err` carries the reason to stop.
    fn process(&mut self, records: &[Record]) -> Result<(), String> {
        let result = self.stages.run(records, &mut self.fanout);
        self.fanout.wakeups.wake_all();
        result
    }
}

impl Outlet for Fanout {
    fn deliver(&mut self, _record: &Record, frame: &Frame, channels: &[&str]) {
        let taken: usize = channels
            .iter()
            .map(|c| self.hub.publish_deferred(c, frame, &mut self.wakeups))
            .sum();
        let forwarded = match &mut self.forward {
            Some(forward) => channels
                .iter()
                .fold(false, |any, c| forward(c, frame) | any),
            None => false,
        };
        if taken > 0 || forwarded {
            self.metrics.routed();
        } else {
            self.metrics.dropped("no_subscriber", 1);
        }
    }

    fn filtered(&mut self, _record: &Record) {
        self.metrics.dropped("filtered", 1);
    }

    /// Applies the poison policy to one record; `Err` is the reason to stop.
    fn poisoned(&mut self, record: &Record, why: Poison<'_>) -> Result<(), String> {
        // A dead-letter send may block: deliver what is queued first.
        self.wakeups.wake_all();
        self.metrics.poisoned();
        let reason = why.to_string();
        let (pipeline, topic, partition, offset) = (
            &self.pipeline,
            &record.topic,
            record.partition,
            record.offset,
        );
        match &self.poison {
            PoisonPolicy::Skip => {
                self.metrics.dropped("poison", 1);
                tracing::debug!(%pipeline, %topic, partition, offset, %reason, "Skipping a poison record.");
                Ok(())
            }
            PoisonPolicy::Stop => {
                tracing::error!(%pipeline, %topic, partition, offset, %reason, "Poison record: stopping the pipeline.");
                Err(format!(
                    "poison record at {topic}/{partition}@{offset}: {reason}"
                ))
            }
            PoisonPolicy::DeadLetter(dlq) => {
                let send = self
                    .dead_letter
                    .as_mut()
                    .expect("dead-letter sender configured");
                send(record, &reason).map_err(|error| {
                    tracing::error!(%pipeline, %topic, partition, offset, %dlq, %error, "Dead-lettering failed: stopping the pipeline.");
                    format!("could not dead-letter {topic}/{partition}@{offset} to {dlq}: {error}")
                })
            }
        }
    }
}
