//! Running one case on one plugin (`sluice plugin test`), through the code
//! a running pipeline uses: the record path's [`Stages`] for routers and
//! transformers, the gate's [`handshake_of`] and [`denied`] around an
//! authenticator, and the handler calls with the host's action checks.
//!
//! [`handshake_of`]: crate::ws::handshake_of
//! [`denied`]: crate::ws::denied

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::fixture::{
    Case, CloseInput, ConnectionInput, HandshakeInput, Input, MessageInput, RecordInput,
};
use super::outcome::{self, Collected};
use crate::config::Format;
use crate::pipeline::Stages;
use crate::plugin::{
    Connection, Decision, FrameKind, LoadedPlugin, Message, PluginInstance, Principal, Role,
};
use crate::record::Record;

/// A case that does not fit the plugin it is run on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("case `{case}`: {reason}")]
pub struct Unfit {
    /// The case's name.
    pub case: String,
    /// What does not fit.
    pub reason: String,
}

/// Checks that `case` gives what a plugin of `role` takes.
pub fn check_fits(role: Role, case: &Case) -> Result<(), Unfit> {
    let unfit = |reason: String| {
        Err(Unfit {
            case: case.name.clone(),
            reason,
        })
    };
    if case.pipeline.is_some() {
        return unfit("`pipeline` belongs in a pipeline file's `[[tests]]`".into());
    }
    match (&case.input, role) {
        (Input::Record(_), Role::Router | Role::Transformer) => Ok(()),
        (Input::Record(_), _) => unfit(format!("{} takes no `record`", with_article(role))),
        (Input::Client(client), Role::Authenticator) => {
            let only_handshake = client.handshake.is_some()
                && client.connection.is_none()
                && client.messages.is_empty()
                && client.close.is_none();
            if only_handshake {
                Ok(())
            } else {
                unfit("an authenticator takes a `handshake` only".into())
            }
        }
        (Input::Client(client), Role::Handler) if client.handshake.is_none() => Ok(()),
        (Input::Client(_), Role::Handler) => unfit(
            "a handler takes a `connection`, `message(s)` and a `close` (no `handshake`)".into(),
        ),
        (Input::Client(_), _) => unfit(format!("{} takes a `record`", with_article(role))),
    }
}

fn with_article(role: Role) -> String {
    let article = if role == Role::Authenticator {
        "an"
    } else {
        "a"
    };
    format!("{article} {}", role.name())
}

/// Runs `case` on a fresh instance of `plugin`; the case must fit
/// ([`check_fits`]). A plugin that fails to instantiate fails the case with
/// that error.
pub fn run_case(plugin: &LoadedPlugin, case: &Case) -> Value {
    let mut out = Map::new();
    let mut instance = match plugin.instantiate() {
        Ok(instance) => instance,
        Err(error) => {
            outcome::failure(&mut out, &error);
            return Value::Object(out);
        }
    };
    match &case.input {
        Input::Record(record) => {
            let mut stages = match plugin.role() {
                Role::Transformer => Stages {
                    transforms: vec![instance],
                    router: None,
                    format: Format::Auto,
                },
                _ => Stages {
                    transforms: Vec::new(),
                    router: Some(instance),
                    format: Format::Auto,
                },
            };
            return run_record(&mut stages, record);
        }
        Input::Client(client) => match &client.handshake {
            Some(handshake) => authenticate(&mut instance, handshake, &mut out),
            None => {
                let connection = client.connection.clone().unwrap_or_else(default_connection);
                let input = (client.messages.as_slice(), client.close.as_ref());
                // No pipeline around it: nothing is judged.
                let conn = connection_of(&connection);
                session(&mut instance, conn, input, &|_| None, &mut out);
            }
        },
    }
    Value::Object(out)
}

/// One record through a pipeline's stages.
pub fn run_record(stages: &mut Stages, input: &RecordInput) -> Value {
    let record = Record {
        topic: Arc::from(input.topic.as_str()),
        partition: input.partition,
        offset: input.offset,
        timestamp_ms: input.timestamp_ms,
        key: input.key.as_deref().map(Bytes::copy_from_slice),
        payload: Bytes::copy_from_slice(&input.value),
        headers: input
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), Bytes::copy_from_slice(v)))
            .collect(),
        undecodable: None,
    };
    let mut collected = Collected::default();
    // `Collected` never asks to stop.
    let _ = stages.run(std::slice::from_ref(&record), &mut collected);
    collected.outcome()
}

/// The upgrade request a handshake case describes.
pub fn request_of(input: &HandshakeInput) -> Result<hyper::Request<()>, String> {
    let uri = if input.query.is_empty() {
        input.path.clone()
    } else {
        format!("{}?{}", input.path, input.query)
    };
    let mut request = hyper::Request::get(uri)
        .header("host", "sluice.test")
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(())
        .map_err(|e| format!("not a valid request: {e}"))?;
    // The case's headers replace the defaults of the same name.
    for (name, value) in &input.headers {
        let name = hyper::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name {name:?} is not valid HTTP"))?;
        let value = hyper::header::HeaderValue::from_str(value)
            .map_err(|_| format!("header `{name}` has a value that is not valid HTTP"))?;
        request.headers_mut().insert(name, value);
    }
    Ok(request)
}

fn authenticate(
    instance: &mut PluginInstance,
    input: &HandshakeInput,
    out: &mut Map<String, Value>,
) {
    let request = match request_of(input) {
        Ok(request) => request,
        Err(reason) => {
            out.insert("error".into(), "bad_request".into());
            out.insert("message".into(), reason.into());
            return;
        }
    };
    let handshake = crate::ws::handshake_of(&request, input.remote_addr, &input.params);
    match instance.authenticate(&handshake) {
        Ok(Decision::Allow(principal)) => outcome::allowed(out, &principal),
        Ok(Decision::Deny(denial)) => {
            let response = crate::ws::denied(&denial);
            outcome::refused(
                out,
                response.status().as_u16(),
                &denial.reason,
                response.headers(),
            );
        }
        Err(error) => {
            // The gate fails closed: a 500 "authentication failed".
            outcome::refused(out, 500, "authentication failed", &hyper::HeaderMap::new());
            outcome::failure(out, &error);
        }
    }
}

fn default_connection() -> ConnectionInput {
    serde_json::from_value(Value::Object(Map::new())).expect("every field has a default")
}

fn connection_of(input: &ConnectionInput) -> Connection {
    Connection {
        id: input.id,
        path: input.path.clone(),
        params: input.params.clone().into_iter().collect(),
        principal: input.principal.as_ref().map(|id| Principal {
            id: id.clone(),
            claims: "{}".into(),
            channels: input.channels.clone(),
        }),
        remote_addr: input.remote_addr.clone(),
        subprotocol: input.subprotocol.clone(),
    }
}

/// A connection's life in a handler: `on_open`, then `actions` (of every
/// message, in order) and `on_close`, each a list of the actions returned.
/// A failed call ends it there with `error` (the host would close with
/// 1011). `judge` marks the actions the host would refuse.
pub fn session(
    instance: &mut PluginInstance,
    conn: Connection,
    (messages, close): (&[MessageInput], Option<&CloseInput>),
    judge: outcome::Judge<'_>,
    out: &mut Map<String, Value>,
) {
    let id = conn.id;
    let opened = match instance.on_open(&conn) {
        Ok(actions) => actions,
        Err(error) => return outcome::failure(out, &error),
    };
    out.insert("on_open".into(), outcome::actions(&opened, judge));
    let mut actions = Vec::new();
    let mut failed = None;
    for input in messages {
        let msg = Message {
            kind: if input.binary {
                FrameKind::Binary
            } else {
                FrameKind::Text
            },
            payload: input.payload.clone(),
            key: None,
            headers: Vec::new(),
        };
        match instance.on_message(id, &msg) {
            Ok(more) => actions.extend(more),
            Err(error) => {
                failed = Some(error);
                break;
            }
        }
    }
    if !messages.is_empty() {
        out.insert("actions".into(), outcome::actions(&actions, judge));
    }
    if let Some(error) = failed {
        return outcome::failure(out, &error);
    }
    if let Some(close) = close {
        match instance.on_close(id, close.code, &close.reason) {
            Ok(actions) => {
                out.insert("on_close".into(), outcome::actions(&actions, judge));
            }
            Err(error) => outcome::failure(out, &error),
        }
    }
}
