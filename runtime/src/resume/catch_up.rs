//! The pipeline's catch-up reader: one thread that reads what reconnecting
//! clients missed, routes it with the pipeline's own transforms and router,
//! and queues each record ahead of the live ones of every client whose gap
//! holds it.
//!
//! Requests that arrive together are served by one pass: the partitions'
//! ranges are merged, each record is read and routed once for all of them
//! (a thousand clients back after a deploy missed the same records), so
//! the cost is one read of the union of the gaps, not one per client, and
//! the live consumer is never involved. A pass ends when every range is
//! read, or after [`PASS_LIMIT`].

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::envelope;
use super::position::Signer;
use crate::hub::{Frame, Outbox};
use crate::kafka::{Positions, Reader};
use crate::metrics::ResumeMetrics;
use crate::pipeline::{Outlet, Poison, Stages};
use crate::record::Record;

/// Requests that arrive within this long of the first are served together.
const GATHER: Duration = Duration::from_millis(20);
/// Longest a pass may read; its unfinished clients are told they were not
/// recovered.
pub(super) const PASS_LIMIT: Duration = Duration::from_secs(30);
/// Records read per poll.
const BATCH: usize = 256;

/// A reconnected client waiting for what it missed.
pub(super) struct Request {
    pub(super) outbox: Arc<Outbox>,
    pub(super) channel: String,
    /// Per partition, `[from, to)`: what it missed.
    pub(super) gaps: Vec<Gap>,
    /// Where it stands once the gaps are delivered (also the floor below
    /// which live records are not delivered to it again).
    pub(super) base: Positions,
    /// The frontier when it came: where it stands if it is not recovered.
    pub(super) live: Positions,
}

/// The offsets `[from, to)` of one partition.
#[derive(Debug, Clone)]
pub(super) struct Gap {
    pub(super) topic: Arc<str>,
    pub(super) partition: i32,
    pub(super) from: i64,
    pub(super) to: i64,
}

/// What the reader thread is built from, on its first request.
pub(super) struct Parts {
    pub(super) reader: Box<dyn FnOnce() -> anyhow::Result<(Reader, Stages)> + Send>,
    pub(super) signer: Arc<Signer>,
    pub(super) pipeline: String,
    pub(super) metrics: ResumeMetrics,
}

/// The handle of a pipeline's catch-up thread (started on first use).
pub(super) struct CatchUp {
    parts: Mutex<Option<Parts>>,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    signer: Arc<Signer>,
    metrics: ResumeMetrics,
}

impl CatchUp {
    pub(super) fn new(parts: Parts) -> Self {
        Self {
            signer: parts.signer.clone(),
            metrics: parts.metrics.clone(),
            parts: Mutex::new(Some(parts)),
            requests: Mutex::new(None),
        }
    }

    /// Queues a request; the thread starts with the first one.
    pub(super) fn submit(&self, request: Request) {
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        if requests.is_none()
            && let Some(parts) = self.parts.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            let (tx, rx) = mpsc::channel();
            let name = format!("sluice-catch-up-{}", parts.pipeline);
            let spawned = std::thread::Builder::new()
                .name(name)
                .spawn(move || run(parts, &rx));
            if let Err(error) = spawned {
                tracing::error!(%error, "Cannot start the catch-up thread.");
            } else {
                *requests = Some(tx);
            }
        }
        let (request, reason) = match &*requests {
            Some(tx) => match tx.send(request) {
                Ok(()) => return,
                Err(mpsc::SendError(request)) => (request, "its reader ended"),
            },
            None => (request, "no reader"),
        };
        let reason = format!("recovery is unavailable ({reason})");
        let outcome = Outcome::Not {
            label: "failed",
            reason: &reason,
        };
        finish(&request, outcome, &self.signer, &self.metrics);
    }
}

/// How a reconnect with a position ended.
pub(super) enum Outcome<'a> {
    /// It got everything it missed: this many records.
    Complete(u64),
    /// It could not, for this reason (`label`: the metric's outcome).
    Not {
        label: &'static str,
        reason: &'a str,
    },
}

/// Tells a client the outcome and lets its live records go (without those
/// below its floor when it was recovered).
pub(super) fn finish(
    request: &Request,
    outcome: Outcome<'_>,
    signer: &Signer,
    metrics: &ResumeMetrics,
) {
    let outbox = &request.outbox;
    match outcome {
        Outcome::Complete(records) => {
            metrics.recovery("complete");
            metrics.recovered(records);
            let floor = request
                .base
                .iter()
                .map(|((topic, partition), next)| {
                    (Arc::<str>::from(topic.as_str()), *partition, *next)
                })
                .collect();
            let _ = outbox.push_ahead(envelope::recovered(records));
            let _ = outbox.push_ahead(envelope::position(
                signer,
                request.base.clone(),
                super::now_ms(),
            ));
            outbox.release(floor);
        }
        Outcome::Not { label, reason } => {
            metrics.recovery(label);
            let _ = outbox.push_ahead(envelope::not_recovered(reason));
            let _ = outbox.push_ahead(envelope::position(
                signer,
                request.live.clone(),
                super::now_ms(),
            ));
            outbox.release(Vec::new());
        }
    }
}

fn run(parts: Parts, requests: &mpsc::Receiver<Request>) {
    let Parts {
        reader,
        signer,
        pipeline,
        metrics,
    } = parts;
    let (mut reader, mut stages) = match reader() {
        Ok(built) => built,
        Err(error) => {
            tracing::error!(pipeline, error = %format!("{error:#}"), "Recovery is unavailable: its reader cannot start.");
            let reason = format!("recovery is unavailable: {error:#}");
            for request in requests.iter() {
                finish(
                    &request,
                    Outcome::Not {
                        label: "failed",
                        reason: &reason,
                    },
                    &signer,
                    &metrics,
                );
            }
            return;
        }
    };
    let pass = Pass {
        signer: &signer,
        metrics: &metrics,
    };
    while let Ok(first) = requests.recv() {
        let mut clients = vec![first];
        let until = Instant::now() + GATHER;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match requests.recv_timeout(left) {
                Ok(request) => clients.push(request),
                Err(_) => break,
            }
        }
        let count = clients.len();
        let started = Instant::now();
        metrics.pass();
        pass.serve(&mut reader, &mut stages, clients);
        tracing::debug!(
            pipeline,
            clients = count,
            took_ms = started.elapsed().as_millis() as u64,
            "Catch-up pass done."
        );
    }
}

/// What every pass reports with.
struct Pass<'a> {
    signer: &'a Signer,
    metrics: &'a ResumeMetrics,
}

/// One client in a pass.
struct Waiting {
    request: Request,
    delivered: u64,
    done: bool,
}

impl Pass<'_> {
    fn serve(&self, reader: &mut Reader, stages: &mut Stages, pass: Vec<Request>) {
        let (signer, metrics) = (self.signer, self.metrics);
        let mut waiting: Vec<Waiting> = Vec::with_capacity(pass.len());
        // Records deleted since a client's position: it cannot be recovered.
        let mut firsts: Vec<(Arc<str>, i32, i64)> = Vec::new();
        'requests: for request in pass {
            for gap in &request.gaps {
                let first = match firsts
                    .iter()
                    .find(|(t, p, _)| *t == gap.topic && *p == gap.partition)
                {
                    Some(&(_, _, first)) => first,
                    None => match reader.first_offset(&gap.topic, gap.partition) {
                        Ok(first) => {
                            firsts.push((gap.topic.clone(), gap.partition, first));
                            first
                        }
                        Err(error) => {
                            let reason = format!("cannot read what was missed: {error}");
                            let outcome = Outcome::Not {
                                label: "failed",
                                reason: &reason,
                            };
                            finish(&request, outcome, signer, metrics);
                            continue 'requests;
                        }
                    },
                };
                if gap.from < first {
                    let reason = "records since this position were deleted (retention)";
                    let outcome = Outcome::Not {
                        label: "deleted",
                        reason,
                    };
                    finish(&request, outcome, signer, metrics);
                    continue 'requests;
                }
            }
            waiting.push(Waiting {
                request,
                delivered: 0,
                done: false,
            });
        }
        // Every partition from the earliest offset any client needs.
        let mut ranges: Vec<Gap> = Vec::new();
        for w in &waiting {
            for gap in &w.request.gaps {
                match ranges
                    .iter_mut()
                    .find(|r| r.topic == gap.topic && r.partition == gap.partition)
                {
                    Some(range) => {
                        range.from = range.from.min(gap.from);
                        range.to = range.to.max(gap.to);
                    }
                    None => ranges.push(gap.clone()),
                }
            }
        }
        let from: Vec<(&str, i32, i64)> = ranges
            .iter()
            .map(|r| (&*r.topic, r.partition, r.from))
            .collect();
        if let Err(error) = reader.assign(&from) {
            let reason = format!("cannot read what was missed: {error}");
            for w in &waiting {
                let outcome = Outcome::Not {
                    label: "failed",
                    reason: &reason,
                };
                finish(&w.request, outcome, signer, metrics);
            }
            return;
        }
        let deadline = Instant::now() + PASS_LIMIT;
        let mut batch = Vec::with_capacity(BATCH);
        let mut read: Vec<(Arc<str>, i32, i64)> = ranges
            .iter()
            .map(|r| (r.topic.clone(), r.partition, r.from))
            .collect();
        loop {
            // Offsets may skip (transaction markers, compaction): the reader's
            // own position counts as read too.
            for (topic, partition, next) in reader.positions() {
                if let Some(r) = read
                    .iter_mut()
                    .find(|(t, p, _)| **t == *topic && *p == partition)
                {
                    r.2 = r.2.max(next);
                }
            }
            // A client is done once every partition it waits on was read past its gap.
            for w in waiting.iter_mut().filter(|w| !w.done) {
                let complete = w.request.gaps.iter().all(|gap| {
                    read.iter()
                        .find(|(t, p, _)| *t == gap.topic && *p == gap.partition)
                        .is_some_and(|r| r.2 >= gap.to)
                });
                if complete {
                    w.done = true;
                    finish(&w.request, Outcome::Complete(w.delivered), signer, metrics);
                }
            }
            if waiting.iter().all(|w| w.done) {
                return;
            }
            if Instant::now() >= deadline {
                let reason = "reading what was missed took too long";
                for w in waiting.iter().filter(|w| !w.done) {
                    finish(
                        &w.request,
                        Outcome::Not {
                            label: "failed",
                            reason,
                        },
                        signer,
                        metrics,
                    );
                }
                return;
            }
            batch.clear();
            reader.poll(BATCH, Duration::from_millis(100), &mut batch);
            if batch.is_empty() {
                continue;
            }
            metrics.read(batch.len() as u64);
            for record in &batch {
                if let Some(r) = read
                    .iter_mut()
                    .find(|(t, p, _)| **t == *record.topic && *p == record.partition)
                {
                    r.2 = r.2.max(record.offset + 1);
                }
            }
            let mut outlet = Deliver {
                waiting: &mut waiting,
                metrics,
            };
            // A stage that fails poisons records as in the live path: they are
            // skipped there too, so the client misses nothing it would have got.
            let _ = stages.run(&batch, &mut outlet);
        }
    }
}

/// Queues routed records for the clients whose gap holds them.
struct Deliver<'a> {
    waiting: &'a mut Vec<Waiting>,
    metrics: &'a ResumeMetrics,
}

impl Outlet for Deliver<'_> {
    fn deliver(&mut self, record: &Record, frame: &Frame, channels: &[&str]) {
        for w in self.waiting.iter_mut().filter(|w| !w.done) {
            let missed = w.request.gaps.iter().any(|gap| {
                gap.partition == record.partition
                    && *gap.topic == *record.topic
                    && (gap.from..gap.to).contains(&record.offset)
            });
            if missed && channels.contains(&w.request.channel.as_str()) {
                if w.request.outbox.push_ahead(frame.clone()).is_err() {
                    // Closed (too slow, or gone): its position is still good.
                    w.done = true;
                    self.metrics.recovery("slow_client");
                    w.request.outbox.release(Vec::new());
                } else {
                    w.delivered += 1;
                }
            }
        }
    }

    fn filtered(&mut self, _record: &Record) {}

    fn poisoned(&mut self, _record: &Record, _why: Poison<'_>) -> Result<(), String> {
        Ok(())
    }
}
