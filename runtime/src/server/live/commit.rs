//! Swapping a planned config in: consumers kept, given new stages,
//! restarted or stopped; removed pipelines' connections closed with 1012;
//! one line per change; and the wait until new consumers are positioned.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::super::parts::{self, Feed};
use super::plan::{FeedPlan, Next};
use super::{Active, Live, probes};
use crate::config::{Config, Pipeline};
use crate::hub::CloseRequest;
use crate::kafka::Positions;
use crate::pipeline::Stages;
use crate::session::Sessions;

/// How long a new consumer may take to be assigned partitions.
const ASSIGNMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a new consumer may go without partitions before the broker is
/// asked whether it speaks the protocol the consumer does.
const MISMATCH_AFTER: Duration = Duration::from_secs(2);

/// The close code for clients of a pipeline a reload removed: 1012 (service
/// restart) tells them to reconnect, which may find another pipeline.
const REMOVED: (u16, &str) = (1012, "pipeline removed by a reload");

impl Live {
    /// Swaps the prepared pipelines in. Only starting a consumer can still
    /// fail here; that pipeline then serves its sockets without records
    /// (`/readyz` says so) and the line says why.
    pub(super) async fn commit(
        &mut self,
        config: Config,
        next: Vec<Next>,
        probes: Vec<probes::Probe>,
    ) -> Vec<String> {
        let mut changes = Vec::new();
        let mut old: Vec<Option<Active>> = std::mem::take(&mut self.active)
            .into_iter()
            .map(Some)
            .collect();
        let mut started = Vec::new();
        let mut active = Vec::with_capacity(next.len());
        for mut n in next {
            let previous = n.old.and_then(|i| old[i].take());
            n.hub.limit_deliveries_by(n.tenant.clone());
            let name = n.config.name.clone();
            let mut feed = previous.and_then(|a| a.feed);
            let mut notes = Vec::new();
            match std::mem::replace(&mut n.feed, FeedPlan::Keep) {
                FeedPlan::Keep => {}
                FeedPlan::Swap(stages) => {
                    if let Some(feed) = &feed {
                        // A consumer that ended has dropped its receiver;
                        // `/readyz` already reports it.
                        let _ = feed.stages.send(stages);
                    }
                    notes.push("router and transforms replaced");
                }
                FeedPlan::Stop => {
                    stop_feed(&n.config, feed.take()).await;
                    notes.push("consumer stopped");
                }
                FeedPlan::Start(stages) => {
                    // A broadcast-mode consumer on the same brokers resumes
                    // where the one it replaces stopped (a group resumes
                    // from its commits).
                    let same_brokers = feed
                        .as_ref()
                        .zip(n.settings.as_ref())
                        .is_some_and(|(f, s)| f.bootstrap_servers == s.bootstrap_servers());
                    let had_feed = feed.is_some();
                    let mut resume = stop_feed(&n.config, feed.take()).await;
                    if !same_brokers {
                        resume.clear();
                    }
                    feed = self.start_feed(&n, stages, resume, &mut changes);
                    if let (Some(f), Some(settings)) = (&feed, &n.settings) {
                        started.push(Started {
                            pipeline: name.clone(),
                            watch: f.handle.watch(),
                            settings: settings.clone(),
                        });
                    }
                    notes.push(if had_feed {
                        "consumer restarted"
                    } else {
                        "consumer started"
                    });
                }
            }
            if n.endpoint_rebuilt {
                if let (Some(sessions), Some(every)) = (&n.endpoint.sessions, n.config.serving.tick)
                {
                    tokio::spawn(Sessions::run_ticker(
                        Arc::downgrade(sessions),
                        every,
                        self.shutdown.clone(),
                    ));
                }
                if n.old.is_some() {
                    notes.push(
                        "endpoint rebuilt (open connections keep the version they opened with)",
                    );
                }
            }
            match n.old {
                None => changes.push(format!("pipeline `{name}` added")),
                Some(_) if !notes.is_empty() => {
                    changes.push(format!("pipeline `{name}`: {}", notes.join("; ")));
                }
                Some(_) => {}
            }
            active.push(Active {
                config: n.config,
                kafka: n.kafka,
                hub: n.hub,
                metrics: n.metrics,
                tenant: n.tenant,
                endpoint: n.endpoint,
                feed,
            });
        }
        for removed in old.into_iter().flatten() {
            let closed = self.close_connections(&removed.config);
            stop_feed(&removed.config, removed.feed).await;
            changes.push(format!(
                "pipeline `{}` removed ({closed} connection(s) closed with {})",
                removed.config.name, REMOVED.0
            ));
        }
        self.active = active;
        self.probes = probes;
        self.config = Some(config);
        self.publish();
        wait_for_assignments(&started).await;
        changes
    }

    fn start_feed(
        &self,
        n: &Next,
        stages: Stages,
        resume: Positions,
        changes: &mut Vec<String>,
    ) -> Option<Feed> {
        let (source, settings) = (n.config.source.as_ref()?, n.settings.as_ref()?);
        let started = parts::feed(
            (&n.config, source),
            stages,
            (n.hub.clone(), n.metrics.clone()),
            (settings, &self.cluster),
            resume,
        );
        match started {
            Ok(feed) => {
                let lag = crate::metrics::global().lag();
                lag.remove(&n.config.tenant, &n.config.name);
                lag.add(
                    &n.config.tenant,
                    &n.config.name,
                    feed.handle.progress().lag.clone(),
                );
                Some(feed)
            }
            Err(error) => {
                tracing::error!(pipeline = %n.config.name, error = %format!("{error:#}"), "Consumer did not start.");
                changes.push(format!(
                    "pipeline `{}`: consumer did not start: {error:#}",
                    n.config.name
                ));
                None
            }
        }
    }

    /// Closes the open connections of a removed pipeline; returns how many.
    fn close_connections(&self, pipeline: &Pipeline) -> usize {
        let mut closed = 0;
        for conn in self.cluster.registry().all() {
            if conn.tenant == pipeline.tenant && conn.pipeline == pipeline.name {
                conn.outbox.close(CloseRequest {
                    code: REMOVED.0,
                    reason: REMOVED.1.into(),
                });
                closed += 1;
            }
        }
        closed
    }
}

/// Stops a consumer (in a group it commits what it handled), off the async
/// workers; returns a broadcast-mode consumer's positions.
pub(super) async fn stop_feed(pipeline: &Pipeline, feed: Option<Feed>) -> Positions {
    let Some(feed) = feed else {
        return Positions::new();
    };
    crate::metrics::global()
        .lag()
        .remove(&pipeline.tenant, &pipeline.name);
    let name = pipeline.name.clone();
    tokio::task::spawn_blocking(move || {
        let watch = feed.handle.watch();
        let exit = feed.handle.shutdown();
        tracing::info!(pipeline = %name, %exit, "Consumer ended.");
        watch.positions()
    })
    .await
    .unwrap_or_default()
}

/// A consumer this commit started, and what it was built from.
struct Started {
    pipeline: String,
    watch: crate::kafka::ConsumerWatch,
    settings: crate::kafka::ClientSettings,
}

/// Waits until every consumer owns partitions and has fixed where it starts
/// reading them, so that "started" means a record produced from now on
/// reaches its subscribers. A consumer Kafka refuses (credentials,
/// certificates, a TLS/plaintext mismatch found by asking the broker when
/// its client still fails after [`MISMATCH_AFTER`]) is not waited for:
/// retrying does not fix it.
async fn wait_for_assignments(consumers: &[Started]) {
    let deadline = tokio::time::Instant::now() + ASSIGNMENT_TIMEOUT;
    let ask_broker_at = tokio::time::Instant::now() + MISMATCH_AFTER;
    let mut asked = false;
    loop {
        let positioned = |c: &Started| c.watch.progress().positioned.load(Ordering::Acquire);
        if !asked && tokio::time::Instant::now() >= ask_broker_at {
            asked = true;
            // Consumers of one tenant share their brokers: ask each once.
            let mut answers: Vec<((String, bool), Option<String>)> = Vec::new();
            for c in consumers {
                // A TLS hello to a TLS broker is an ordinary handshake; to a
                // plaintext broker it is noise in its log, sent only when
                // the client is failing (a slow group join is no reason).
                let progress = c.watch.progress();
                let failing = c.settings.expects_tls() || progress.client_problem().is_some();
                if positioned(c) || progress.misconfigured() || !failing {
                    continue;
                }
                let key = (
                    c.settings.bootstrap_servers().to_owned(),
                    c.settings.expects_tls(),
                );
                let mismatch = match answers.iter().find(|(k, _)| *k == key) {
                    Some((_, answer)) => answer.clone(),
                    None => {
                        let settings = c.settings.clone();
                        let answer =
                            tokio::task::spawn_blocking(move || settings.protocol_mismatch())
                                .await
                                .ok()
                                .flatten();
                        answers.push((key, answer.clone()));
                        answer
                    }
                };
                if let Some(reason) = mismatch {
                    tracing::error!(pipeline = %c.pipeline, %reason, "Kafka cannot be used: the admin API's GET /health says why.");
                    progress.protocol_mismatch(&reason);
                }
            }
        }
        let waiting: Vec<_> = consumers.iter().filter(|c| !positioned(c)).collect();
        if waiting.is_empty() {
            return;
        }
        if waiting.iter().all(|c| c.watch.progress().misconfigured()) {
            tracing::warn!(
                consumers = waiting.len(),
                "Kafka refuses the consumers' configuration; serving without their partitions."
            );
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                consumers = waiting.len(),
                "No partitions assigned yet; serving anyway (records produced before the assignment are not delivered)."
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
