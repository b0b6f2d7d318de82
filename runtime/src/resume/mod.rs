//! Clients that reconnect without losing records (`docs/resume.md`).
//!
//! A pipeline with `[pipelines.source.resume]` offers the subprotocol
//! [`PROTOCOL`]. A client that negotiates it gets every frame as a JSON
//! envelope ([`envelope`]); each record carries its position, a token
//! signed by the server ([`position`]), and the client is told where it
//! stands when it connects and every checkpoint. Coming back (to any
//! process of the deployment), it presents what it holds in the `resume`
//! query parameter; the server subscribes it, holds its live records back,
//! has the pipeline's catch-up reader ([`catch_up`]) queue every record
//! for its channel between its position and the consumer's frontier ahead
//! of them, says `recovered`, and then lets the live records go, without
//! those it already has. Kafka is the history: nothing is stored here.

mod catch_up;
pub mod envelope;
pub mod position;

use std::sync::Arc;

use crate::hub::Outbox;
use crate::kafka::{Frontier, Positions, Reader};
use crate::metrics::ResumeMetrics;
use crate::pipeline::Stages;
use catch_up::{CatchUp, Gap, Outcome, Parts, Request};
pub use position::{Key, Position, Refused, Signer};

/// The subprotocol of enveloped, resumable delivery.
pub const PROTOCOL: &str = "sluice.resume.v1";

/// The query parameter a returning client presents its position in.
pub const QUERY_PARAMETER: &str = "resume";

/// One pipeline's resume: its keys and bounds, the consumer's frontier, and
/// its catch-up reader.
pub struct Resume {
    signer: Arc<Signer>,
    settings: crate::config::Resume,
    frontier: Arc<Frontier>,
    catch_up: CatchUp,
    metrics: ResumeMetrics,
}

impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Resume {
    /// Resume for `tenant`'s `pipeline` with these settings, around the
    /// consumer's `frontier`; `reader` builds the catch-up reader and its
    /// stages on the first reconnect that needs them.
    pub fn new(
        (tenant, pipeline): (&str, &str),
        settings: crate::config::Resume,
        frontier: Arc<Frontier>,
        reader: impl FnOnce() -> anyhow::Result<(Reader, Stages)> + Send + 'static,
    ) -> Option<Self> {
        let keys = settings
            .keys
            .iter()
            .map(|(id, secret)| Key::new(id.clone(), secret.expose().as_bytes()))
            .collect();
        let signer = Arc::new(Signer::new(tenant, pipeline, keys)?);
        let metrics = crate::metrics::global().resume(tenant, pipeline);
        let catch_up = CatchUp::new(Parts {
            reader: Box::new(reader),
            signer: signer.clone(),
            pipeline: pipeline.to_owned(),
            metrics: metrics.clone(),
        });
        Some(Self {
            signer,
            settings,
            frontier,
            catch_up,
            metrics,
        })
    }

    /// Signs record envelopes and positions.
    pub fn signer(&self) -> &Arc<Signer> {
        &self.signer
    }

    /// How often a connected client is told where it stands.
    pub fn checkpoint(&self) -> Option<std::time::Duration> {
        self.settings.checkpoint
    }

    /// The position in a request's `resume` parameter (a comma-separated
    /// list of tokens), if it has one.
    pub fn presented(&self, query: Option<&str>) -> Result<Option<Position>, Refused> {
        let Some(query) = query else {
            return Ok(None);
        };
        let Some(value) = form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == QUERY_PARAMETER)
            .map(|(_, value)| value)
        else {
            return Ok(None);
        };
        self.signer.verify_all(&value).map(Some)
    }

    /// Subscribes a client (with `subscribe`, which puts its outbox on the
    /// hub) and queues its first messages: where it stands, or, coming back
    /// from `from`, the records it missed and the outcome.
    pub fn open(
        &self,
        outbox: &Arc<Outbox>,
        channel: &str,
        from: Option<Position>,
        subscribe: impl FnOnce(),
    ) {
        outbox.hold();
        subscribe();
        // Read after subscribing: everything from here on reaches it live.
        let live = self.frontier.claimed();
        let Some(from) = from else {
            let _ = outbox.push_ahead(envelope::position(&self.signer, live, now_ms()));
            outbox.release(Vec::new());
            return;
        };
        let mut request = Request {
            outbox: outbox.clone(),
            channel: channel.to_owned(),
            gaps: Vec::new(),
            base: Positions::new(),
            live,
        };
        let not = |request: &Request, label, reason: &str| {
            catch_up::finish(
                request,
                Outcome::Not { label, reason },
                &self.signer,
                &self.metrics,
            )
        };
        if request.live.is_empty() {
            return not(
                &request,
                "failed",
                "the pipeline has not started reading yet",
            );
        }
        let age = now_ms().saturating_sub(from.issued_ms);
        if age > self.settings.max_age.as_millis() as u64 {
            let reason = format!(
                "the position is {} s old, more than this pipeline recovers ({} s)",
                age / 1000,
                self.settings.max_age.as_secs()
            );
            return not(&request, "too_old", &reason);
        }
        let mut missed = 0u64;
        for ((topic, partition), &to) in &request.live {
            // A partition it never knew appeared since: all of it is new.
            let had = from
                .next
                .get(&(topic.clone(), *partition))
                .copied()
                .unwrap_or(0);
            if had < to {
                missed += (to - had) as u64;
                request.gaps.push(Gap {
                    topic: Arc::from(topic.as_str()),
                    partition: *partition,
                    from: had,
                    to,
                });
            }
            request
                .base
                .insert((topic.clone(), *partition), had.max(to));
        }
        if missed > self.settings.max_records {
            let reason = format!(
                "{missed} records were published since the position, more than this pipeline recovers ({})",
                self.settings.max_records
            );
            return not(&request, "too_far", &reason);
        }
        if request.gaps.is_empty() {
            return catch_up::finish(&request, Outcome::Complete(0), &self.signer, &self.metrics);
        }
        self.catch_up.submit(request);
    }

    /// Where a connected client stands now, for its checkpoint (pushed
    /// behind its live records: below the delivered mark, every record for
    /// it was queued before this message), never below what it was
    /// recovered to (a process behind the one it came from).
    pub fn checkpoint_message(&self, outbox: &Outbox) -> crate::hub::Frame {
        let mut at = self.frontier.delivered();
        for (topic, partition, next) in outbox.floor() {
            let entry = at.entry((topic.to_string(), partition)).or_insert(next);
            *entry = (*entry).max(next);
        }
        envelope::position(&self.signer, at, now_ms())
    }
}

/// Unix time in milliseconds.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
