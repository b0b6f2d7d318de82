//! The record path of one pipeline: transforms, then the router, once per
//! record (the router once per batch), then fanout through the hub. Runs on
//! the pipeline's consumer thread, so plugin calls never touch tokio.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{Format, PoisonPolicy};
use crate::hub::{Frame, Hub, Kind, Wakeups};
use crate::kafka::BatchVerdict as Verdict;
use crate::plugin::{
    Direction, FrameKind, Header, Message, Outcome, PluginInstance, TransformContext,
};
use crate::record::Record;
use crate::ws::BROADCAST_CHANNEL;

/// Counters of a pipeline's record path.
#[derive(Debug, Default)]
pub struct PathStats {
    /// Records taken from Kafka.
    pub records: AtomicU64,
    /// Records published to at least one subscriber.
    pub delivered: AtomicU64,
    /// Records that had a channel but no subscriber, or no channel at all.
    pub unrouted: AtomicU64,
    /// Records filtered out by a transform.
    pub filtered: AtomicU64,
    /// Records handled by the poison policy.
    pub poison: AtomicU64,
}

/// Sends a poison record to the dead-letter topic; an error stops the
/// pipeline rather than lose the record.
pub type DeadLetter = Box<dyn FnMut(&Record, &str) -> Result<(), String> + Send>;

/// Transforms, router and hub of one pipeline.
pub struct RecordPath {
    pipeline: String,
    transforms: Vec<PluginInstance>,
    router: Option<PluginInstance>,
    hub: Arc<Hub>,
    format: Format,
    poison: PoisonPolicy,
    dead_letter: Option<DeadLetter>,
    stats: Arc<PathStats>,
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
            pipeline: pipeline.to_owned(),
            transforms,
            router,
            hub,
            format,
            poison,
            dead_letter,
            stats: Arc::default(),
            metrics: crate::metrics::global().pipeline("", pipeline),
        }
    }

    /// Counts its drops under these labels (the default has no tenant).
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::PipelineMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<PathStats> {
        self.stats.clone()
    }

    /// Processes one batch of consumed records.
    pub fn on_batch(&mut self, records: &[Record]) -> Verdict {
        match self.process(records) {
            Ok(()) => Verdict::Continue,
            Err(reason) => Verdict::Stop(reason),
        }
    }

    /// `Err` carries the reason to stop.
    fn process(&mut self, records: &[Record]) -> Result<(), String> {
        self.stats
            .records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        let mut ready = Vec::with_capacity(records.len());
        for record in records {
            match self.transform(record) {
                Ok(out) => ready.extend(out),
                Err(reason) => self.poisoned(record, &reason)?,
            }
        }
        if ready.is_empty() {
            return Ok(());
        }
        let batch: Arc<[Record]> = ready.into();
        let routes = match &mut self.router {
            None => None,
            Some(router) => match router.route_batch(batch.clone()) {
                Ok(routes) => Some(routes),
                Err(error) => {
                    let reason = error.to_string();
                    for record in batch.iter() {
                        self.poisoned(record, &reason)?;
                    }
                    return Ok(());
                }
            },
        };
        let mut channels: Vec<&str> = Vec::new();
        // Subscribers are woken once, after the whole batch is queued (also
        // when a poison record ends the batch early: on drop).
        let mut wakeups = Wakeups::default();
        for (i, record) in batch.iter().enumerate() {
            let frame = match self.frame(record) {
                Ok(frame) => frame,
                Err(reason) => {
                    // A dead-letter send may block: deliver what is queued first.
                    wakeups.wake_all();
                    self.poisoned(record, reason)?;
                    continue;
                }
            };
            channels.clear();
            match routes.as_ref().map(|r| &r[i]) {
                None => channels.push(BROADCAST_CHANNEL),
                Some(route) => {
                    if let (true, Some(key)) = (route.key_channel, record.key.as_deref()) {
                        match std::str::from_utf8(key) {
                            Ok(key) => channels.push(key),
                            Err(_) => {
                                wakeups.wake_all();
                                self.poisoned(record, "key is not UTF-8")?;
                                continue;
                            }
                        }
                    }
                    for channel in &route.channels {
                        if !channels.contains(&channel.as_str()) {
                            channels.push(channel);
                        }
                    }
                }
            }
            let taken: usize = channels
                .iter()
                .map(|c| self.hub.publish_deferred(c, &frame, &mut wakeups))
                .sum();
            if taken > 0 {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
            } else {
                self.stats.unrouted.fetch_add(1, Ordering::Relaxed);
                self.metrics.dropped("no_subscriber", 1);
            }
        }
        wakeups.wake_all();
        Ok(())
    }

    /// Runs the transforms; a record comes out as zero or more records.
    fn transform(&mut self, record: &Record) -> Result<Vec<Record>, String> {
        let mut records = vec![record.clone()];
        for transform in &mut self.transforms {
            let mut next = Vec::with_capacity(records.len());
            for record in records {
                let msg = message_of(&record);
                let ctx = TransformContext {
                    direction: Direction::Outbound,
                    channel: String::new(),
                    principal_id: None,
                };
                match transform.transform(&msg, &ctx).map_err(|e| e.to_string())? {
                    Outcome::Keep => next.push(record),
                    Outcome::Replace(messages) => {
                        next.extend(messages.into_iter().map(|m| record_from(&record, m)));
                    }
                    Outcome::Reject(reason) => {
                        return Err(format!("rejected by a transform: {reason}"));
                    }
                }
            }
            records = next;
        }
        if records.is_empty() {
            self.stats.filtered.fetch_add(1, Ordering::Relaxed);
            self.metrics.dropped("filtered", 1);
        }
        Ok(records)
    }

    fn frame(&self, record: &Record) -> Result<Frame, &'static str> {
        let utf8 = || std::str::from_utf8(&record.payload).is_ok();
        let kind = match self.format {
            Format::Binary => Kind::Binary,
            Format::Text if utf8() => Kind::Text,
            Format::Text => return Err("payload is not UTF-8 in a text pipeline"),
            Format::Auto if utf8() => Kind::Text,
            Format::Auto => Kind::Binary,
        };
        Ok(Frame::new(kind, record.payload.clone()))
    }

    /// Applies the poison policy to one record; `Err` is the reason to stop.
    fn poisoned(&mut self, record: &Record, reason: &str) -> Result<(), String> {
        self.stats.poison.fetch_add(1, Ordering::Relaxed);
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
                send(record, reason).map_err(|error| {
                    tracing::error!(%pipeline, %topic, partition, offset, %dlq, %error, "Dead-lettering failed: stopping the pipeline.");
                    format!("could not dead-letter {topic}/{partition}@{offset} to {dlq}: {error}")
                })
            }
        }
    }
}

fn message_of(record: &Record) -> Message {
    let kind = if std::str::from_utf8(&record.payload).is_ok() {
        FrameKind::Text
    } else {
        FrameKind::Binary
    };
    Message {
        kind,
        payload: record.payload.to_vec(),
        key: record.key.as_ref().map(|k| k.to_vec()),
        headers: record
            .headers
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.to_vec(),
            })
            .collect(),
    }
}

/// A transform's output as a record at the original's position. A message
/// without a key keeps the original key, so routing by key still works.
fn record_from(original: &Record, msg: Message) -> Record {
    Record {
        key: msg.key.map(Into::into).or_else(|| original.key.clone()),
        payload: msg.payload.into(),
        headers: msg
            .headers
            .into_iter()
            .map(|h| (h.name, h.value.into()))
            .collect(),
        ..original.clone()
    }
}
