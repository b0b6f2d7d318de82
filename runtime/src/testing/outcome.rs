//! What a case produced, as a JSON table that expectations are compared
//! with: the record path's channels and records, a handshake's answer, a
//! handler's actions, or a plugin failure.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::hub::{Frame, Kind};
use crate::pipeline::{Outlet, Poison};
use crate::plugin::{Action, FrameKind, Header, Message, PluginError, Principal};
use crate::record::Record;

/// Collects what the record path's stages did with one input record.
#[derive(Default)]
pub struct Collected {
    channels: Vec<String>,
    records: Vec<Value>,
    filtered: bool,
    poison: Option<Map<String, Value>>,
}

impl Outlet for Collected {
    fn deliver(&mut self, record: &Record, frame: &Frame, channels: &[&str]) {
        for channel in channels {
            if !self.channels.iter().any(|c| c == channel) {
                self.channels.push((*channel).to_owned());
            }
        }
        let mut out = Map::new();
        out.insert("channels".into(), json!(channels));
        bytes_field(&mut out, "key", record.key.as_deref());
        bytes_field(&mut out, "value", Some(&record.payload));
        out.insert("headers".into(), headers(&record.headers));
        let frame = match frame.kind {
            Kind::Text => "text",
            Kind::Binary => "binary",
        };
        out.insert("frame".into(), frame.into());
        self.records.push(Value::Object(out));
    }

    fn filtered(&mut self, _record: &Record) {
        self.filtered = true;
    }

    fn poisoned(&mut self, _record: &Record, why: Poison<'_>) -> Result<(), String> {
        let mut out = Map::new();
        out.insert("poison".into(), why.to_string().into());
        match why {
            Poison::Failed(error) => {
                out.insert("error".into(), error.label().into());
            }
            Poison::Rejected(reason) => {
                out.insert("rejected".into(), reason.into());
            }
            Poison::KeyNotUtf8
            | Poison::KeyNotAChannel(_)
            | Poison::NotUtf8Text
            | Poison::Undecodable(_) => {}
        }
        self.poison = Some(out);
        Ok(())
    }
}

impl Collected {
    /// The outcome: `channels` (every channel the record reached), the
    /// record as delivered (`key`, `value`, `headers`, `frame`) when there
    /// is one, `records` when the transforms made several, `dropped` when
    /// it went nowhere, and `poison` (with `error` or `rejected`).
    pub fn outcome(self) -> Value {
        let mut out = self.poison.unwrap_or_default();
        out.insert("channels".into(), json!(self.channels));
        if self.filtered {
            out.insert("dropped".into(), "filtered".into());
        } else if self.channels.is_empty() && !out.contains_key("poison") {
            out.insert("dropped".into(), "no channel".into());
        }
        match <[Value; 1]>::try_from(self.records) {
            Ok([Value::Object(single)]) => {
                for (k, v) in single {
                    if k != "channels" {
                        out.insert(k, v);
                    }
                }
            }
            Ok([_]) => {}
            Err(records) if records.is_empty() => {}
            Err(records) => {
                out.insert("records".into(), Value::Array(records));
            }
        }
        Value::Object(out)
    }
}

/// `name` as text when it is UTF-8, else `name_base64`.
fn bytes_field(out: &mut Map<String, Value>, name: &str, bytes: Option<&[u8]>) {
    let Some(bytes) = bytes else { return };
    match std::str::from_utf8(bytes) {
        Ok(text) => out.insert(name.into(), text.into()),
        Err(_) => out.insert(format!("{name}_base64"), BASE64.encode(bytes).into()),
    };
}

fn headers(headers: &[(String, bytes::Bytes)]) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned().into()))
            .collect(),
    )
}

fn wit_headers(headers: &[Header]) -> Value {
    Value::Object(
        headers
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    String::from_utf8_lossy(&h.value).into_owned().into(),
                )
            })
            .collect(),
    )
}

/// A plugin failure: `error` (`trap`, `timeout`, `memory`,
/// `invalid_return`, ...) and `message`.
pub fn failure(out: &mut Map<String, Value>, error: &PluginError) {
    out.insert("error".into(), error.label().into());
    out.insert("message".into(), error.to_string().into());
}

/// An allowed client: `status` 101, `principal`, `claims` and, when the
/// principal is limited to some, `channels`.
pub fn allowed(out: &mut Map<String, Value>, principal: &Principal) {
    out.insert("decision".into(), "allow".into());
    out.insert("status".into(), 101.into());
    out.insert("principal".into(), principal.id.clone().into());
    let claims = serde_json::from_str(&principal.claims).unwrap_or(Value::Null);
    out.insert("claims".into(), claims);
    if let Some(channels) = &principal.channels {
        out.insert("channels".into(), json!(channels));
    }
}

/// A refused client: `status`, `reason` (the body) and `headers` (the
/// response's, but `content-type`).
pub fn refused(
    out: &mut Map<String, Value>,
    status: u16,
    reason: &str,
    headers: &hyper::HeaderMap,
) {
    out.insert("decision".into(), "deny".into());
    out.insert("status".into(), status.into());
    out.insert("reason".into(), reason.trim_end().into());
    let headers = headers
        .iter()
        .filter(|(name, _)| *name != hyper::header::CONTENT_TYPE)
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes())
                    .into_owned()
                    .into(),
            )
        })
        .collect();
    out.insert("headers".into(), Value::Object(headers));
}

/// A record a sink would produce: `topic`, `key`, `value`, `headers`.
pub fn produced(topic: &str, key: Option<&[u8]>, msg: &Message) -> Value {
    let mut out = Map::new();
    out.insert("topic".into(), topic.into());
    bytes_field(&mut out, "key", key);
    bytes_field(&mut out, "value", Some(&msg.payload));
    out.insert("headers".into(), wit_headers(&msg.headers));
    Value::Object(out)
}

/// A message: `{ text }` or `{ binary }` (base64).
pub fn message(msg: &Message) -> Value {
    match (msg.kind, std::str::from_utf8(&msg.payload)) {
        (FrameKind::Text, Ok(text)) => json!({ "text": text }),
        _ => json!({ "binary": BASE64.encode(&msg.payload) }),
    }
}

/// Why the host would refuse an action (`None`: it would carry it out).
pub type Judge<'a> = &'a dyn Fn(&Action) -> Option<&'static str>;

/// A handler's actions, one table each, named by the action; one the host
/// would refuse also has `refused` with the reason.
pub fn actions(actions: &[Action], judge: Judge<'_>) -> Value {
    Value::Array(
        actions
            .iter()
            .map(|a| {
                let mut value = action(a);
                if let (Some(reason), Value::Object(fields)) = (judge(a), &mut value) {
                    fields.insert("refused".into(), reason.into());
                }
                value
            })
            .collect(),
    )
}

fn action(action: &Action) -> Value {
    match action {
        Action::Reply(msg) => json!({ "reply": message(msg) }),
        Action::ReplyLater((delay_ms, msg)) => {
            json!({ "reply_later": { "delay_ms": delay_ms, "message": message(msg) } })
        }
        Action::Send((to, msg)) => json!({ "send": { "to": to, "message": message(msg) } }),
        Action::Publish(publish) => {
            let mut out = Map::new();
            if let Some(topic) = &publish.topic {
                out.insert("topic".into(), topic.clone().into());
            }
            bytes_field(&mut out, "key", publish.key.as_deref());
            bytes_field(&mut out, "value", Some(&publish.payload));
            out.insert("headers".into(), wit_headers(&publish.headers));
            json!({ "publish": out })
        }
        Action::Join(channel) => json!({ "join": channel }),
        Action::Leave(channel) => json!({ "leave": channel }),
        Action::Broadcast((channel, msg)) => {
            json!({ "broadcast": { "channel": channel, "message": message(msg) } })
        }
        Action::Close((code, reason)) => json!({ "close": { "code": code, "reason": reason } }),
    }
}
