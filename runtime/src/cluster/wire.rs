//! The bus's records: what one node tells the others, as a Kafka record's
//! key, headers and value. A message's payload is the record value as is
//! (what a client or operator sent is never re-encoded); presence is JSON.
//!
//! Every record names the node and incarnation (one run of a process) that
//! sent it, and the tenant: a node acts only on its own tenant's records,
//! whatever topic they came from.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::hub::Kind;
use crate::record::Record;

/// The format's version; a record of another version is skipped.
const VERSION: &[u8] = b"1";

const H_VERSION: &str = "sluice-cluster";
const H_NODE: &str = "sluice-node";
const H_INCARNATION: &str = "sluice-incarnation";
const H_TENANT: &str = "sluice-tenant";
const H_OP: &str = "sluice-op";
const H_PIPELINE: &str = "sluice-pipeline";
const H_CHANNEL: &str = "sluice-channel";
const H_KIND: &str = "sluice-kind";
const H_CONN: &str = "sluice-conn";
const H_CODE: &str = "sluice-code";

/// Who sent a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sender {
    /// Its node id.
    pub node: u16,
    /// Its run: a process that restarts with the same node id has a new one.
    pub incarnation: u64,
}

/// What a record says.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// A message for every subscriber of a pipeline's channel.
    Broadcast {
        /// The pipeline.
        pipeline: String,
        /// The channel (a room).
        channel: String,
        /// Text or binary.
        kind: Kind,
        /// The message.
        payload: Bytes,
    },
    /// A message for one connection.
    Send {
        /// The connection.
        conn: u64,
        /// The pipeline it must belong to (`None`: any of the tenant's; an
        /// operator's send).
        pipeline: Option<String>,
        /// Text or binary.
        kind: Kind,
        /// The message.
        payload: Bytes,
    },
    /// Close one connection after what is queued for it.
    Close {
        /// The connection.
        conn: u64,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// A change to the sender's connections, or part of a restatement.
    Presence(PresenceUpdate),
    /// The sender just joined: the others restate their connections.
    Hello,
    /// The sender is stopping: forget its connections now.
    Bye,
}

impl Body {
    /// Its operation's name, as the `sluice-op` header and metrics say it.
    pub fn op(&self) -> &'static str {
        match self {
            Body::Broadcast { .. } => "broadcast",
            Body::Send { .. } => "send",
            Body::Close { .. } => "close",
            Body::Presence(_) => "presence",
            Body::Hello => "hello",
            Body::Bye => "bye",
        }
    }
}

/// A node's connections, changed or restated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PresenceUpdate {
    /// The restatement this belongs to (deltas carry the latest one).
    pub round: u64,
    /// Part of a full restatement of round `round`.
    #[serde(default)]
    pub snapshot: bool,
    /// The last part of it: connections not restated in it are gone.
    #[serde(default)]
    pub last: bool,
    /// Connections that opened or changed (or are restated).
    #[serde(default)]
    pub upsert: Vec<Member>,
    /// Connections that closed.
    #[serde(default)]
    pub remove: Vec<u64>,
}

/// One connection as presence shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Its id (the node is in it, see `crate::connections::node_of`).
    pub id: u64,
    /// Its pipeline.
    pub pipeline: String,
    /// Its principal's id, if authenticated.
    #[serde(default)]
    pub principal: Option<String>,
    /// The channels it is subscribed to.
    pub channels: Vec<String>,
}

impl Member {
    /// Whether it is `pipeline`'s and subscribed to `channel`.
    pub fn subscribed(&self, pipeline: &str, channel: &str) -> bool {
        self.pipeline == pipeline && self.channels.iter().any(|c| c == channel)
    }
}

/// A record as it goes to the producer.
#[derive(Debug)]
pub struct Encoded {
    /// The key: records with one key stay in order (one room's messages;
    /// one node's presence).
    pub key: Vec<u8>,
    /// The headers.
    pub headers: Vec<(String, Bytes)>,
    /// The value.
    pub value: Bytes,
}

/// Why a record was not understood.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// Not a cluster record, or another version of the format.
    #[error("not a version 1 cluster record")]
    Version,
    /// A header is missing or unreadable.
    #[error("header `{0}` missing or invalid")]
    Header(&'static str),
    /// The operation is not one this version knows.
    #[error("unknown operation {0:?}")]
    Op(String),
    /// A presence value is not the expected JSON.
    #[error("presence update: {0}")]
    Presence(String),
}

/// Encodes `body` from `sender` for `tenant`.
pub fn encode(sender: Sender, tenant: &str, body: &Body) -> Encoded {
    let mut headers = vec![
        (H_VERSION.to_owned(), Bytes::from_static(VERSION)),
        (H_NODE.to_owned(), number(sender.node)),
        (H_INCARNATION.to_owned(), number(sender.incarnation)),
        (
            H_TENANT.to_owned(),
            Bytes::copy_from_slice(tenant.as_bytes()),
        ),
    ];
    let mut header = |name: &str, value: Bytes| headers.push((name.to_owned(), value));
    let (key, value) = match body {
        Body::Broadcast {
            pipeline,
            channel,
            kind,
            payload,
        } => {
            header(H_PIPELINE, text(pipeline));
            header(H_CHANNEL, text(channel));
            header(H_KIND, kind_name(*kind));
            (format!("room\0{pipeline}\0{channel}"), payload.clone())
        }
        Body::Send {
            conn,
            pipeline,
            kind,
            payload,
        } => {
            header(H_CONN, number(*conn));
            if let Some(pipeline) = pipeline {
                header(H_PIPELINE, text(pipeline));
            }
            header(H_KIND, kind_name(*kind));
            (format!("conn\0{conn}"), payload.clone())
        }
        Body::Close { conn, code, reason } => {
            header(H_CONN, number(*conn));
            header(H_CODE, number(*code));
            (format!("conn\0{conn}"), text(reason))
        }
        Body::Presence(update) => {
            // Serializing plain structs of strings and numbers cannot fail.
            let json = serde_json::to_vec(update).unwrap_or_default();
            (node_key(sender.node), Bytes::from(json))
        }
        Body::Hello | Body::Bye => (node_key(sender.node), Bytes::new()),
    };
    headers.push((H_OP.to_owned(), Bytes::from_static(body.op().as_bytes())));
    Encoded {
        key: key.into_bytes(),
        headers,
        value,
    }
}

/// Reads a record: who sent it, for which tenant, and what it says.
pub fn decode(record: &Record) -> Result<(Sender, String, Body), WireError> {
    if record.header(H_VERSION).map(|v| &v[..]) != Some(VERSION) {
        return Err(WireError::Version);
    }
    let sender = Sender {
        node: parse(record, H_NODE)?,
        incarnation: parse(record, H_INCARNATION)?,
    };
    let tenant = string(record, H_TENANT)?;
    let op = string(record, H_OP)?;
    let payload = record.payload.clone();
    let body = match op.as_str() {
        "broadcast" => Body::Broadcast {
            pipeline: string(record, H_PIPELINE)?,
            channel: string(record, H_CHANNEL)?,
            kind: kind(record)?,
            payload,
        },
        "send" => Body::Send {
            conn: parse(record, H_CONN)?,
            pipeline: record
                .header(H_PIPELINE)
                .map(|_| string(record, H_PIPELINE))
                .transpose()?,
            kind: kind(record)?,
            payload,
        },
        "close" => Body::Close {
            conn: parse(record, H_CONN)?,
            code: parse(record, H_CODE)?,
            reason: String::from_utf8(payload.to_vec()).map_err(|_| WireError::Header("reason"))?,
        },
        "presence" => Body::Presence(
            serde_json::from_slice(&payload).map_err(|e| WireError::Presence(e.to_string()))?,
        ),
        "hello" => Body::Hello,
        "bye" => Body::Bye,
        other => return Err(WireError::Op(other.to_owned())),
    };
    Ok((sender, tenant, body))
}

fn node_key(node: u16) -> String {
    format!("node\0{node}")
}

fn number(n: impl ToString) -> Bytes {
    Bytes::from(n.to_string())
}

fn text(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn kind_name(kind: Kind) -> Bytes {
    Bytes::from_static(match kind {
        Kind::Text => b"text",
        Kind::Binary => b"binary",
    })
}

fn kind(record: &Record) -> Result<Kind, WireError> {
    match record.header(H_KIND).map(|v| &v[..]) {
        Some(b"text") => Ok(Kind::Text),
        Some(b"binary") => Ok(Kind::Binary),
        _ => Err(WireError::Header(H_KIND)),
    }
}

fn string(record: &Record, name: &'static str) -> Result<String, WireError> {
    let value = record.header(name).ok_or(WireError::Header(name))?;
    String::from_utf8(value.to_vec()).map_err(|_| WireError::Header(name))
}

fn parse<T: std::str::FromStr>(record: &Record, name: &'static str) -> Result<T, WireError> {
    string(record, name)?
        .parse()
        .map_err(|_| WireError::Header(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(encoded: Encoded) -> Record {
        Record {
            key: Some(Bytes::from(encoded.key)),
            payload: encoded.value,
            headers: encoded.headers,
            ..Record::new("bus", None, b"")
        }
    }

    #[test]
    fn every_body_survives_the_trip() {
        let sender = Sender {
            node: 7,
            incarnation: u64::MAX,
        };
        let bodies = [
            Body::Broadcast {
                pipeline: "chat".into(),
                channel: "room-1".into(),
                kind: Kind::Binary,
                payload: Bytes::from_static(&[0, 255, 10]),
            },
            Body::Send {
                conn: 7 << 36 | 12,
                pipeline: None,
                kind: Kind::Text,
                payload: Bytes::from_static(b"hi"),
            },
            Body::Send {
                conn: 3,
                pipeline: Some("chat".into()),
                kind: Kind::Text,
                payload: Bytes::new(),
            },
            Body::Close {
                conn: 9,
                code: 4000,
                reason: "bye now".into(),
            },
            Body::Presence(PresenceUpdate {
                round: 4,
                snapshot: true,
                last: false,
                upsert: vec![Member {
                    id: 1,
                    pipeline: "chat".into(),
                    principal: Some("ann".into()),
                    channels: vec!["a".into(), "b".into()],
                }],
                remove: vec![2, 3],
            }),
            Body::Hello,
            Body::Bye,
        ];
        for body in bodies {
            let decoded = decode(&record(encode(sender, "acme", &body))).unwrap();
            assert_eq!(decoded, (sender, "acme".to_owned(), body));
        }
    }

    #[test]
    fn a_room_keeps_one_key_and_foreign_records_are_refused() {
        let sender = Sender {
            node: 1,
            incarnation: 1,
        };
        let body = |channel: &str| Body::Broadcast {
            pipeline: "p".into(),
            channel: channel.into(),
            kind: Kind::Text,
            payload: Bytes::new(),
        };
        let a = encode(sender, "t", &body("a"));
        assert_eq!(a.key, encode(sender, "t", &body("a")).key);
        assert_ne!(a.key, encode(sender, "t", &body("b")).key);
        assert_eq!(
            decode(&Record::new("bus", None, b"x")),
            Err(WireError::Version)
        );
        let mut unknown = record(encode(sender, "t", &Body::Hello));
        unknown.headers.retain(|(n, _)| n != H_OP);
        unknown
            .headers
            .push((H_OP.into(), Bytes::from_static(b"gossip")));
        assert_eq!(decode(&unknown), Err(WireError::Op("gossip".into())));
    }
}
