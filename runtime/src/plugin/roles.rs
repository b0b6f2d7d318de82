//! Typed calls for each role, with the host's checks on what comes back:
//! a value that breaks the contract is an `InvalidReturn` error, never
//! passed on.

use std::sync::Arc;

use super::bindings::{auth, session, transform, types};
use super::instance::{Guest, PluginInstance};
use super::state::RecordBatch;
use super::{PluginError, Role};
use crate::channel;
use crate::record::Record;

/// Longest reason or principal id a plugin may return, in bytes.
const MAX_TEXT: usize = 4096;

impl PluginInstance {
    /// Routes a batch of records: one route per record, in order.
    pub fn route_batch(
        &mut self,
        records: Arc<[Record]>,
    ) -> Result<Vec<super::Route>, PluginError> {
        self.expect_role(Role::Router)?;
        let count = records.len();
        let native = |n: &super::native::NativeInstance| n.route_batch(&records);
        if let Some(result) = self.call_native(native, |routes| {
            check_routes(routes.as_deref().expect("role checked"), count)
        }) {
            return result.map(|routes| routes.expect("role checked"));
        }
        self.call(
            |store, guest| {
                let Guest::Routing(guest) = guest else {
                    unreachable!("role checked")
                };
                let batch = store.data_mut().table.push(RecordBatch(records))?;
                let borrowed =
                    wasmtime::component::Resource::<RecordBatch>::new_borrow(batch.rep());
                let result = guest.call_route_batch(&mut *store, borrowed);
                store.data_mut().table.delete(batch)?;
                result
            },
            |routes| check_routes(routes, count),
        )
    }

    /// Judges a handshake. Callers must treat an error as a denial.
    pub fn authenticate(
        &mut self,
        request: &auth::Handshake,
    ) -> Result<auth::Decision, PluginError> {
        self.expect_role(Role::Authenticator)?;
        let native = |n: &super::native::NativeInstance| n.authenticate(request);
        if let Some(result) = self.call_native(native, |decision| {
            check_decision(decision.as_ref().expect("role checked"))
        }) {
            return result.map(|decision| decision.expect("role checked"));
        }
        self.call(
            |store, guest| {
                let Guest::Auth(guest) = guest else {
                    unreachable!("role checked")
                };
                guest.call_authenticate(store, request)
            },
            check_decision,
        )
    }

    /// Transforms one message.
    pub fn transform(
        &mut self,
        msg: &types::Message,
        ctx: &transform::Context,
    ) -> Result<transform::Outcome, PluginError> {
        self.expect_role(Role::Transformer)?;
        self.call(
            |store, guest| {
                let Guest::Transform(guest) = guest else {
                    unreachable!("role checked")
                };
                guest.call_transform(store, msg, ctx)
            },
            |outcome| match outcome {
                transform::Outcome::Keep => None,
                transform::Outcome::Replace(messages) => messages.iter().find_map(check_message),
                transform::Outcome::Reject(reason) => check_text("rejection reason", reason),
            },
        )
    }

    /// A connection opened.
    pub fn on_open(
        &mut self,
        conn: &types::Connection,
    ) -> Result<Vec<session::Action>, PluginError> {
        self.session_call(false, |store, guest| guest.call_on_open(store, conn))
    }

    /// A connection sent a message.
    pub fn on_message(
        &mut self,
        conn_id: u64,
        msg: &types::Message,
    ) -> Result<Vec<session::Action>, PluginError> {
        self.session_call(false, |store, guest| {
            guest.call_on_message(store, conn_id, msg)
        })
    }

    /// A connection closed.
    pub fn on_close(
        &mut self,
        conn_id: u64,
        code: u16,
        reason: &str,
    ) -> Result<Vec<session::Action>, PluginError> {
        self.session_call(false, |store, guest| {
            guest.call_on_close(store, conn_id, code, reason)
        })
    }

    /// The pipeline's timer fired.
    pub fn on_tick(
        &mut self,
        now_ms: u64,
        connections: &[u64],
    ) -> Result<Vec<session::Action>, PluginError> {
        self.session_call(true, |store, guest| {
            guest.call_on_tick(store, now_ms, connections)
        })
    }

    fn session_call(
        &mut self,
        tick: bool,
        f: impl FnOnce(
            &mut wasmtime::Store<super::state::PluginState>,
            &session::Guest,
        ) -> wasmtime::Result<Vec<session::Action>>,
    ) -> Result<Vec<session::Action>, PluginError> {
        self.expect_role(Role::Handler)?;
        self.call(
            |store, guest| {
                let Guest::Session(guest) = guest else {
                    unreachable!("role checked")
                };
                f(store, guest)
            },
            |actions| actions.iter().find_map(|a| check_action(a, tick)),
        )
    }
}

/// One route per record, and channel names the host accepts.
fn check_routes(routes: &[super::Route], count: usize) -> Option<String> {
    if routes.len() != count {
        return Some(format!(
            "{} routes for a batch of {count} records",
            routes.len()
        ));
    }
    routes.iter().find_map(|route| {
        if route.channels.len() > channel::MAX_CHANNELS_PER_RECORD {
            return Some(format!(
                "{} channels for one record (at most {})",
                route.channels.len(),
                channel::MAX_CHANNELS_PER_RECORD
            ));
        }
        route
            .channels
            .iter()
            .find_map(|c| channel::validate(c).err())
    })
}

fn check_decision(decision: &auth::Decision) -> Option<String> {
    match decision {
        auth::Decision::Allow(principal) => check_principal(principal),
        auth::Decision::Deny(denial) => check_denial(denial),
    }
}

fn check_text(what: &str, text: &str) -> Option<String> {
    (text.len() > MAX_TEXT).then(|| format!("{what} is {} bytes (at most {MAX_TEXT})", text.len()))
}

fn check_principal(principal: &types::Principal) -> Option<String> {
    if principal.id.is_empty() {
        return Some("principal id is empty".into());
    }
    if let Some(reason) = check_text("principal id", &principal.id) {
        return Some(reason);
    }
    match serde_json::from_str::<serde_json::Value>(&principal.claims) {
        Ok(serde_json::Value::Object(_)) => {}
        _ => {
            return Some(format!(
                "principal claims are not a JSON object: {:?}",
                principal.claims
            ));
        }
    }
    principal
        .channels
        .iter()
        .flatten()
        .find_map(|c| channel::validate(c).err())
}

fn check_denial(denial: &auth::Denial) -> Option<String> {
    if !(400..=499).contains(&denial.status) {
        return Some(format!(
            "denial status {} is not a 4xx status",
            denial.status
        ));
    }
    if let Some(reason) = check_text("denial reason", &denial.reason) {
        return Some(reason);
    }
    denial.headers.iter().find_map(check_http_header)
}

fn check_http_header(header: &types::Header) -> Option<String> {
    let token = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
    if header.name.is_empty() || !header.name.bytes().all(token) {
        return Some(format!(
            "header name {:?} is not an HTTP token",
            header.name
        ));
    }
    if header
        .value
        .iter()
        .any(|&b| b == b'\r' || b == b'\n' || b == 0)
    {
        return Some(format!(
            "header {:?} has a value with CR, LF or NUL",
            header.name
        ));
    }
    None
}

fn check_message(msg: &types::Message) -> Option<String> {
    (msg.kind == types::FrameKind::Text && std::str::from_utf8(&msg.payload).is_err())
        .then(|| "a text message whose payload is not UTF-8".to_owned())
}

fn check_action(action: &session::Action, tick: bool) -> Option<String> {
    use session::Action as A;
    let needs_connection =
        |name: &str| tick.then(|| format!("`{name}` in on-tick has no connection to act on"));
    match action {
        A::Reply(msg) => needs_connection("reply").or_else(|| check_message(msg)),
        A::ReplyLater((_, msg)) => needs_connection("reply-later").or_else(|| check_message(msg)),
        A::Send((_, msg)) => check_message(msg),
        A::Publish(_) => None,
        A::Join(c) | A::Leave(c) => {
            needs_connection("join/leave").or_else(|| channel::validate(c).err())
        }
        A::Broadcast((c, msg)) => channel::validate(c).err().or_else(|| check_message(msg)),
        A::Close((code, reason)) => needs_connection("close")
            .or_else(|| {
                let sendable = matches!(code, 1000 | 1001 | 1003 | 1007..=1014 | 3000..=4999);
                (!sendable).then(|| format!("close code {code} may not be sent"))
            })
            .or_else(|| {
                (reason.len() > 123).then(|| "close reason longer than 123 bytes".to_owned())
            }),
    }
}
