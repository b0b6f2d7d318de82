//! The inbound path: a client's message passes the pipeline's transforms,
//! is produced to the sink topic, and the client gets an ACK only after the
//! broker's delivery report (or an ERROR with the reason). The reply format
//! is the sink's `reply`: seed 002's envelope by default,
//! `{"messageType": "ACK" | "ERROR", "content", "timestamp"}`, a flat
//! `{"type": "ack" | "error"}` object, or none. Both carry `id` (the
//! client's own `id` or `messageId`, when it sent one) and, for an ACK,
//! `topic`, `partition` and `offset` of the produced record.

use std::future::Future;

use bytes::Bytes;
use serde_json::{Value, json};

use super::sink_prep::{Sender, SinkPrep};
use crate::config::{ReplyFormat, SinkKey};
use crate::kafka::Producer;
use crate::plugin::{Message, PluginPool};
use crate::time::now_rfc3339;

/// A pipeline's sink.
pub struct InboundPath {
    producer: Producer,
    topic: String,
    reply: ReplyFormat,
    prep: SinkPrep,
    metrics: Option<std::sync::Arc<crate::metrics::PipelineMetrics>>,
}

impl InboundPath {
    /// A sink producing to `topic` through `producer`, answering in `reply`.
    pub fn new(
        producer: Producer,
        topic: String,
        key: Option<SinkKey>,
        reply: ReplyFormat,
        transforms: Vec<PluginPool>,
    ) -> Self {
        Self {
            producer,
            topic,
            reply,
            prep: SinkPrep::new(key, transforms),
            metrics: None,
        }
    }

    /// Counts produce errors in these metrics.
    pub fn with_metrics(
        mut self,
        metrics: std::sync::Arc<crate::metrics::PipelineMetrics>,
    ) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Stage one, run concurrently for a connection's messages: the
    /// transforms. Yields the messages to produce, or the reason not to.
    pub async fn prepare(&self, text: bool, payload: Bytes, sender: &Sender) -> Prepared {
        let id = client_id(&payload);
        let result = self.prep.transform(text, payload, sender).await;
        Prepared { id, result }
    }

    /// Stage two, called in the order the client sent its messages: puts
    /// the records on the producer's queue *now* (so the topic keeps the
    /// client's order) and returns the reply, ready once the broker has
    /// acknowledged every record (ACK) or one failed (ERROR); `None` when
    /// the sink sends no replies.
    pub fn enqueue(
        &self,
        prepared: Prepared,
        sender: &Sender,
    ) -> impl Future<Output = Option<Bytes>> + Send + 'static + use<> {
        let Prepared { id, result } = prepared;
        let deliveries: Result<Vec<_>, String> = result.and_then(|messages| {
            messages
                .iter()
                .map(|msg| {
                    let key = self.prep.key_of(msg, sender);
                    let headers: Vec<(String, Bytes)> = msg
                        .headers
                        .iter()
                        .map(|h| (h.name.clone(), Bytes::from(h.value.clone())))
                        .collect();
                    self.producer
                        .enqueue(&self.topic, key.as_deref(), &msg.payload, &headers)
                        .map_err(|e| {
                            self.count_produce_error();
                            format!("not delivered to Kafka: {e}")
                        })
                })
                .collect()
        });
        let topic = self.topic.clone();
        let format = self.reply;
        let metrics = self.metrics.clone();
        async move {
            let outcome = match deliveries {
                Err(reason) => Err(reason),
                Ok(pending) => {
                    let mut last = Ok((0, 0));
                    for delivery in pending {
                        match delivery.await {
                            Ok(d) => last = Ok((d.partition, d.offset)),
                            Err(e) => {
                                if let Some(metrics) = &metrics {
                                    metrics.produce_error();
                                }
                                last = Err(format!("not delivered to Kafka: {e}"));
                                break;
                            }
                        }
                    }
                    last
                }
            };
            if let (ReplyFormat::None, Err(reason)) = (format, &outcome) {
                tracing::debug!(%topic, %reason, "Client message not produced (no reply configured).");
            }
            reply(format, id, &topic, outcome)
        }
    }

    fn count_produce_error(&self) {
        if let Some(metrics) = &self.metrics {
            metrics.produce_error();
        }
    }
}

/// A client message after the transforms.
pub struct Prepared {
    id: Option<Value>,
    result: Result<Vec<Message>, String>,
}

/// The reply in the sink's format.
fn reply(
    format: ReplyFormat,
    id: Option<Value>,
    topic: &str,
    outcome: Result<(i32, i64), String>,
) -> Option<Bytes> {
    let mut reply = match (format, outcome) {
        (ReplyFormat::None, _) => return None,
        (ReplyFormat::Seed002, Ok((partition, offset))) => json!({
            "messageType": "ACK",
            "content": "delivered",
            "timestamp": now_rfc3339(),
            "topic": topic,
            "partition": partition,
            "offset": offset,
        }),
        (ReplyFormat::Seed002, Err(reason)) => json!({
            "messageType": "ERROR",
            "content": reason,
            "timestamp": now_rfc3339(),
        }),
        (ReplyFormat::Json, Ok((partition, offset))) => json!({
            "type": "ack",
            "topic": topic,
            "partition": partition,
            "offset": offset,
        }),
        (ReplyFormat::Json, Err(reason)) => json!({
            "type": "error",
            "reason": reason,
        }),
    };
    if let Some(id) = id {
        reply["id"] = id;
    }
    Some(Bytes::from(reply.to_string()))
}

/// The client's own message id, echoed in the reply.
fn client_id(payload: &[u8]) -> Option<Value> {
    let value: Value = serde_json::from_slice(payload).ok()?;
    let id = value.get("id").or_else(|| value.get("messageId"))?;
    (id.is_string() || id.is_number()).then(|| id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_echoed_when_present() {
        assert_eq!(client_id(br#"{"id":"m-1"}"#), Some(json!("m-1")));
        assert_eq!(client_id(br#"{"messageId":7}"#), Some(json!(7)));
        assert_eq!(client_id(br#"{"id":{"x":1}}"#), None);
        assert_eq!(client_id(b"not json"), None);
    }

    #[test]
    fn replies_follow_the_sink_format() {
        let text = |b: Option<Bytes>| String::from_utf8(b.unwrap().to_vec()).unwrap();
        let ack = text(reply(ReplyFormat::Json, Some(json!(7)), "t", Ok((1, 42))));
        assert_eq!(
            serde_json::from_str::<Value>(&ack).unwrap(),
            json!({"type": "ack", "id": 7, "topic": "t", "partition": 1, "offset": 42})
        );
        let error = text(reply(ReplyFormat::Json, None, "t", Err("no".into())));
        assert_eq!(
            serde_json::from_str::<Value>(&error).unwrap(),
            json!({"type": "error", "reason": "no"})
        );
        let seed = text(reply(ReplyFormat::Seed002, None, "t", Ok((0, 3))));
        let seed: Value = serde_json::from_str(&seed).unwrap();
        assert_eq!(seed["messageType"], "ACK");
        assert_eq!(seed["offset"], 3);
        assert!(reply(ReplyFormat::None, Some(json!(1)), "t", Ok((0, 1))).is_none());
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 24, "{t}");
        assert!(
            t.ends_with('Z') && &t[4..5] == "-" && &t[10..11] == "T",
            "{t}"
        );
        assert!(t.as_str() > "2025-01-01");
    }
}
