//! Carrying out what a handler asked for. Every action is checked against
//! what the pipeline allows; one the host refuses is counted and skipped,
//! never fatal to the connection.

use std::sync::Arc;

use bytes::Bytes;

use super::{Live, Sessions, may_join};
use crate::hub::{CloseRequest, Frame, Kind};
use crate::kafka::Producer;
use crate::plugin::{Action, FrameKind, Message, Publish};

/// Where a handler's `publish` actions go: the pipeline's sink.
pub struct Publisher {
    producer: Producer,
    topic: String,
    extra_topics: Vec<String>,
    metrics: Arc<crate::metrics::PipelineMetrics>,
}

impl Publisher {
    /// Produces to `topic` by default, and to `extra_topics` when asked;
    /// counts failures in `metrics`.
    pub fn new(
        producer: Producer,
        (topic, extra_topics): (String, Vec<String>),
        metrics: Arc<crate::metrics::PipelineMetrics>,
    ) -> Self {
        Self {
            producer,
            topic,
            extra_topics,
            metrics,
        }
    }

    /// The topic a publish goes to, if the pipeline allows it.
    fn topic<'a>(&'a self, wanted: Option<&'a str>) -> Option<&'a str> {
        publish_topic(wanted, &self.topic, &self.extra_topics)
    }
}

/// The topic a handler's publish goes to, if the sink allows it: `wanted`
/// (`None`: the sink's `topic`) must be `topic` or one of `extra_topics`.
pub fn publish_topic<'a>(
    wanted: Option<&'a str>,
    topic: &'a str,
    extra_topics: &'a [String],
) -> Option<&'a str> {
    match wanted {
        None => Some(topic),
        Some(t) if t == topic || extra_topics.iter().any(|e| e == t) => Some(t),
        Some(_) => None,
    }
}

fn frame(msg: Message) -> Frame {
    let kind = match msg.kind {
        FrameKind::Text => Kind::Text,
        FrameKind::Binary => Kind::Binary,
    };
    Frame::new(kind, msg.payload)
}

impl Sessions {
    fn tenant(&self) -> &str {
        &self.metrics.labels().tenant
    }

    /// Carries out `actions` in order; `origin` is the connection the event
    /// came from (`None` for a tick, where the host has already refused the
    /// actions that need one).
    pub(super) fn apply(&self, actions: Vec<Action>, origin: Option<&Arc<Live>>) {
        for action in actions {
            let done = match (action, origin) {
                (Action::Reply(msg), Some(live)) => {
                    live.outbox.push(frame(msg));
                    true
                }
                (Action::ReplyLater((delay_ms, msg)), Some(live)) => {
                    // A weak handle: a connection that closes meanwhile is
                    // not kept alive for its late reply.
                    let outbox = Arc::downgrade(&live.outbox);
                    let frame = frame(msg);
                    tokio::spawn(async move {
                        tokio::time::sleep(std::time::Duration::from_millis(delay_ms.into())).await;
                        if let Some(outbox) = outbox.upgrade() {
                            outbox.push(frame);
                        }
                    });
                    true
                }
                (Action::Send((id, msg)), _) => match self.get(id) {
                    Some(target) => {
                        target.outbox.push(frame(msg));
                        true
                    }
                    // On another node of the cluster, if presence has it.
                    None => self
                        .cluster
                        .send(self.tenant(), Some(&self.pipeline), id, &frame(msg))
                        .is_some(),
                },
                (Action::Publish(publish), _) => self.publish(publish),
                (Action::Join(channel), Some(live)) => {
                    let allowed = may_join(live.allowed.as_deref(), &channel);
                    if allowed {
                        self.hub.subscribe(&channel, &live.outbox);
                        live.info.joined(&channel);
                        live.joined
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(channel);
                    }
                    allowed
                }
                (Action::Leave(channel), Some(live)) => {
                    self.hub.unsubscribe(&channel, live.outbox.id());
                    live.info.left(&channel);
                    live.joined
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&channel);
                    true
                }
                (Action::Broadcast((channel, msg)), _) => {
                    let frame = frame(msg);
                    self.hub.publish(&channel, &frame);
                    self.cluster
                        .broadcast(self.tenant(), &self.pipeline, &channel, &frame);
                    true
                }
                (Action::Close((code, reason)), Some(live)) => {
                    live.outbox.close(CloseRequest {
                        code,
                        reason: reason.into(),
                    });
                    true
                }
                // Checked by the host before we get here; kept total.
                (_, None) => false,
            };
            if !done {
                self.metrics.refused_actions(1);
            }
        }
    }

    /// Enqueues a record now (so a handler's records keep their order) and
    /// counts its delivery report in the background.
    fn publish(&self, publish: Publish) -> bool {
        let Some(publisher) = &self.publisher else {
            tracing::debug!(pipeline = %self.pipeline, "Handler published, but the pipeline has no sink.");
            return false;
        };
        let Some(topic) = publisher.topic(publish.topic.as_deref()) else {
            tracing::debug!(pipeline = %self.pipeline, topic = ?publish.topic, "Handler published to a topic the pipeline does not allow.");
            return false;
        };
        let headers: Vec<(String, Bytes)> = publish
            .headers
            .into_iter()
            .map(|h| (h.name, Bytes::from(h.value)))
            .collect();
        match publisher
            .producer
            .enqueue(topic, publish.key.as_deref(), &publish.payload, &headers)
        {
            Ok(delivery) => {
                let metrics = publisher.metrics.clone();
                tokio::spawn(async move {
                    if delivery.await.is_err() {
                        metrics.refused_actions(1);
                        metrics.produce_error();
                    }
                });
                true
            }
            Err(error) => {
                tracing::debug!(pipeline = %self.pipeline, %error, "Handler publish not enqueued.");
                publisher.metrics.produce_error();
                false
            }
        }
    }
}
