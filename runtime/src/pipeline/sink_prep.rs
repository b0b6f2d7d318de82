//! What a client message becomes before a sink's producer: the pipeline's
//! transforms (inbound direction), then the record key by the sink's rule.
//! [`super::InboundPath`] produces the result; `sluice test` shows it.

use bytes::Bytes;
use serde_json::Value;

use crate::config::SinkKey;
use crate::plugin::{Direction, FrameKind, Message, Outcome, PluginPool, TransformContext};

/// Who sent a message.
#[derive(Debug, Clone)]
pub struct Sender {
    /// The channel the connection is subscribed to.
    pub channel: String,
    /// Its principal's id, when the pipeline authenticates.
    pub principal: Option<String>,
}

/// A sink's transforms and key rule.
pub struct SinkPrep {
    key: Option<SinkKey>,
    transforms: Vec<PluginPool>,
}

impl SinkPrep {
    /// Keys records by `key` (`None`: no key) after `transforms`.
    pub fn new(key: Option<SinkKey>, transforms: Vec<PluginPool>) -> Self {
        Self { key, transforms }
    }

    /// The key of a record produced from `msg`: its own (a transform may
    /// set one), else the sink's rule.
    pub fn key_of(&self, msg: &Message, sender: &Sender) -> Option<Vec<u8>> {
        msg.key
            .clone()
            .or_else(|| self.key_for(&msg.payload, sender))
    }

    /// Transforms, in order; an empty result is an error (nothing to
    /// produce). `Err` is the reason the client is told.
    pub async fn transform(
        &self,
        text: bool,
        payload: Bytes,
        sender: &Sender,
    ) -> Result<Vec<Message>, String> {
        let kind = if text {
            FrameKind::Text
        } else {
            FrameKind::Binary
        };
        let mut messages = vec![Message {
            kind,
            payload: payload.to_vec(),
            key: None,
            headers: Vec::new(),
        }];
        for pool in &self.transforms {
            let mut next = Vec::new();
            for msg in messages {
                let ctx = TransformContext {
                    direction: Direction::Inbound,
                    channel: sender.channel.clone(),
                    principal_id: sender.principal.clone(),
                };
                let input = msg.clone();
                let outcome = pool
                    .run(move |t| t.transform(&input, &ctx))
                    .await
                    .map_err(|e| format!("transform failed: {e}"))?;
                match outcome {
                    Outcome::Keep => next.push(msg),
                    Outcome::Replace(list) => next.extend(list),
                    Outcome::Reject(reason) => return Err(reason),
                }
            }
            messages = next;
        }
        if messages.is_empty() {
            return Err("filtered out by a transform; nothing was produced".into());
        }
        Ok(messages)
    }

    fn key_for(&self, payload: &[u8], sender: &Sender) -> Option<Vec<u8>> {
        match self.key.as_ref()? {
            SinkKey::Channel => Some(sender.channel.clone().into_bytes()),
            SinkKey::Principal => sender.principal.clone().map(String::into_bytes),
            SinkKey::Json(pointer) => {
                let value: Value = serde_json::from_slice(payload).ok()?;
                match value.pointer(pointer)? {
                    Value::String(s) => Some(s.clone().into_bytes()),
                    Value::Number(n) => Some(n.to_string().into_bytes()),
                    Value::Bool(b) => Some(b.to_string().into_bytes()),
                    _ => None,
                }
            }
        }
    }
}
