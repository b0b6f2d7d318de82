//! Test cases as written: one input (a record, a handshake, or a handler
//! connection with a message) and the expected outcome. Inputs are checked
//! while they are deserialized, so a bad one is reported where it is.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;
use serde_json::Value;

/// One test case.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawCase")]
pub struct Case {
    /// What it checks, in words.
    pub name: String,
    /// The pipeline it runs in (`[[tests]]` of a pipeline file only).
    pub pipeline: Option<String>,
    /// What goes in.
    pub input: Input,
    /// The fields of the outcome it expects (a table; fields it leaves out
    /// are not checked).
    pub expect: Value,
}

/// What a case feeds in.
#[derive(Debug, Clone)]
pub enum Input {
    /// A Kafka record, through transforms and the router.
    Record(RecordInput),
    /// A WebSocket client: its upgrade request (for an authenticator or a
    /// pipeline's gate) and, for a handler, its connection, messages and
    /// how it closes.
    Client(Box<ClientInput>),
}

/// A WebSocket client's part of a case.
#[derive(Debug, Clone)]
pub struct ClientInput {
    /// The upgrade request.
    pub handshake: Option<HandshakeInput>,
    /// The connection a handler sees (plugin tests; a pipeline test takes
    /// it from the handshake).
    pub connection: Option<ConnectionInput>,
    /// The messages the client sends after it connects, in order
    /// (`message = {...}` or `messages = [...]`).
    pub messages: Vec<MessageInput>,
    /// How the client closes, after its messages.
    pub close: Option<CloseInput>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCase {
    name: String,
    pipeline: Option<String>,
    record: Option<RecordInput>,
    handshake: Option<HandshakeInput>,
    connection: Option<ConnectionInput>,
    message: Option<MessageInput>,
    messages: Option<Vec<MessageInput>>,
    close: Option<CloseInput>,
    expect: Option<Value>,
}

impl TryFrom<RawCase> for Case {
    type Error = String;

    fn try_from(raw: RawCase) -> Result<Self, String> {
        let name = raw.name;
        if name.trim().is_empty() {
            return Err("a case needs a `name`".into());
        }
        let client = raw.handshake.is_some()
            || raw.connection.is_some()
            || raw.message.is_some()
            || raw.messages.is_some()
            || raw.close.is_some();
        let input = match (raw.record, client) {
            (Some(_), true) => {
                return Err(format!(
                    "case `{name}`: a `record` case has no `handshake`, `connection`, `message(s)` or `close`"
                ));
            }
            (Some(record), false) => Input::Record(record),
            (None, true) => Input::Client(Box::new(ClientInput {
                handshake: raw.handshake,
                connection: raw.connection,
                messages: match (raw.message, raw.messages) {
                    (Some(_), Some(_)) => {
                        return Err(format!(
                            "case `{name}`: give `message` or `messages`, not both"
                        ));
                    }
                    (Some(one), None) => vec![one],
                    (None, many) => many.unwrap_or_default(),
                },
                close: raw.close,
            })),
            (None, false) => {
                return Err(format!(
                    "case `{name}` has no input: give a `record`, a `handshake`, or a `message`"
                ));
            }
        };
        // A case that expects nothing would pass whatever the plugin did.
        let expect = match raw.expect {
            Some(Value::Object(fields)) if !fields.is_empty() => Value::Object(fields),
            Some(Value::Object(_)) | None => {
                return Err(format!(
                    "case `{name}` expects nothing: add `expect = {{ ... }}` with the fields to check"
                ));
            }
            Some(_) => return Err(format!("case `{name}`: `expect` must be a table")),
        };
        Ok(Case {
            name,
            pipeline: raw.pipeline,
            input,
            expect,
        })
    }
}

/// A Kafka record.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawRecord")]
pub struct RecordInput {
    /// Topic (default `test`).
    pub topic: String,
    /// Partition (default 0).
    pub partition: i32,
    /// Offset (default 0).
    pub offset: i64,
    /// Timestamp, milliseconds since the Unix epoch.
    pub timestamp_ms: Option<i64>,
    /// The key, if any.
    pub key: Option<Vec<u8>>,
    /// The value (empty by default).
    pub value: Vec<u8>,
    /// Headers: (name, value).
    pub headers: Vec<(String, Vec<u8>)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    topic: Option<String>,
    #[serde(default)]
    partition: i32,
    #[serde(default)]
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<String>,
    key_base64: Option<String>,
    value: Option<String>,
    value_base64: Option<String>,
    value_json: Option<Value>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

impl TryFrom<RawRecord> for RecordInput {
    type Error = String;

    fn try_from(raw: RawRecord) -> Result<Self, String> {
        let key = bytes("key", raw.key, raw.key_base64, None)?;
        let value = bytes("value", raw.value, raw.value_base64, raw.value_json)?;
        Ok(RecordInput {
            topic: raw.topic.unwrap_or_else(|| "test".into()),
            partition: raw.partition,
            offset: raw.offset,
            timestamp_ms: raw.timestamp_ms,
            key,
            value: value.unwrap_or_default(),
            headers: raw
                .headers
                .into_iter()
                .map(|(n, v)| (n, v.into_bytes()))
                .collect(),
        })
    }
}

/// Bytes written as text, base64 or JSON: at most one of the three.
fn bytes(
    field: &str,
    text: Option<String>,
    base64: Option<String>,
    json: Option<Value>,
) -> Result<Option<Vec<u8>>, String> {
    match (text, base64, json) {
        (None, None, None) => Ok(None),
        (Some(text), None, None) => Ok(Some(text.into_bytes())),
        (None, Some(encoded), None) => BASE64
            .decode(encoded.trim())
            .map(Some)
            .map_err(|e| format!("`{field}_base64` is not base64: {e}")),
        (None, None, Some(json)) => Ok(Some(json.to_string().into_bytes())),
        _ if field == "value" => Err("give one of `value`, `value_base64` or `value_json`".into()),
        _ => Err(format!("give `{field}` or `{field}_base64`, not both")),
    }
}

/// A WebSocket upgrade request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawHandshake")]
pub struct HandshakeInput {
    /// The request path, e.g. `/channel1`.
    pub path: String,
    /// The query string, without `?`.
    pub query: String,
    /// Request headers (names lower-case), `authorization` included.
    pub headers: Vec<(String, String)>,
    /// The client's address, `ip:port`.
    pub remote_addr: std::net::SocketAddr,
    /// Route parameters an authenticator sees (plugin tests; a pipeline
    /// test gets them from its path template).
    pub params: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHandshake {
    path: String,
    #[serde(default)]
    query: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    basic: Option<String>,
    bearer: Option<String>,
    remote_addr: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
}

/// The client address of a case that names none.
const DEFAULT_REMOTE: &str = "127.0.0.1:40000";

impl TryFrom<RawHandshake> for HandshakeInput {
    type Error = String;

    fn try_from(raw: RawHandshake) -> Result<Self, String> {
        if !raw.path.starts_with('/') {
            return Err(format!(
                "handshake `path` {:?} must start with `/`",
                raw.path
            ));
        }
        let mut headers: Vec<(String, String)> = raw
            .headers
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect();
        let authorization = match (raw.basic, raw.bearer) {
            (Some(_), Some(_)) => return Err("give `basic` or `bearer`, not both".into()),
            (Some(credentials), None) => {
                if !credentials.contains(':') {
                    return Err("`basic` is `user:password`".into());
                }
                Some(format!("Basic {}", BASE64.encode(credentials)))
            }
            (None, Some(token)) => Some(format!("Bearer {token}")),
            (None, None) => None,
        };
        if let Some(value) = authorization {
            if headers.iter().any(|(n, _)| n == "authorization") {
                return Err("give `basic`/`bearer` or an `authorization` header, not both".into());
            }
            headers.push(("authorization".into(), value));
        }
        for (name, value) in &headers {
            if http::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(format!("header name {name:?} is not valid HTTP"));
            }
            if http::header::HeaderValue::from_str(value).is_err() {
                return Err(format!(
                    "header `{name}` has a value that is not valid HTTP"
                ));
            }
        }
        let remote = raw.remote_addr.as_deref().unwrap_or(DEFAULT_REMOTE);
        let remote_addr = remote
            .parse()
            .map_err(|_| format!("`remote_addr` {remote:?} is not `ip:port`"))?;
        Ok(HandshakeInput {
            path: raw.path,
            query: raw.query,
            headers,
            remote_addr,
            params: raw.params.into_iter().collect(),
        })
    }
}

/// A connection as a handler sees it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionInput {
    /// Its id (default 1).
    #[serde(default = "one")]
    pub id: u64,
    /// The path it was opened on (default `/`).
    #[serde(default = "root")]
    pub path: String,
    /// Route parameters.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// The principal's id, when the pipeline authenticates.
    pub principal: Option<String>,
    /// The channels the principal may use (absent: any).
    pub channels: Option<Vec<String>>,
    /// The client's address (default `127.0.0.1:40000`).
    #[serde(default = "default_remote")]
    pub remote_addr: String,
    /// The negotiated subprotocol.
    pub subprotocol: Option<String>,
}

fn one() -> u64 {
    1
}

fn root() -> String {
    "/".into()
}

fn default_remote() -> String {
    DEFAULT_REMOTE.into()
}

/// A client message: text, binary (base64) or JSON (sent as text).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawMessage")]
pub struct MessageInput {
    /// Whether it is a binary frame.
    pub binary: bool,
    /// Its bytes.
    pub payload: Vec<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMessage {
    text: Option<String>,
    binary: Option<String>,
    json: Option<Value>,
}

impl TryFrom<RawMessage> for MessageInput {
    type Error = String;

    fn try_from(raw: RawMessage) -> Result<Self, String> {
        match (raw.text, raw.binary, raw.json) {
            (Some(text), None, None) => Ok(MessageInput {
                binary: false,
                payload: text.into_bytes(),
            }),
            (None, Some(encoded), None) => Ok(MessageInput {
                binary: true,
                payload: BASE64
                    .decode(encoded.trim())
                    .map_err(|e| format!("message `binary` is not base64: {e}"))?,
            }),
            (None, None, Some(json)) => Ok(MessageInput {
                binary: false,
                payload: json.to_string().into_bytes(),
            }),
            _ => Err("a message is one of `text`, `binary` (base64) or `json`".into()),
        }
    }
}

/// How a client closes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloseInput {
    /// The close code (default 1000).
    #[serde(default = "normal_closure")]
    pub code: u16,
    /// The reason (default empty).
    #[serde(default)]
    pub reason: String,
}

fn normal_closure() -> u16 {
    1000
}

/// A fixture file of `sluice plugin test`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// The plugin's config (`--config` replaces it).
    pub config: Option<Value>,
    /// The cases, in order.
    pub cases: Vec<Case>,
}
