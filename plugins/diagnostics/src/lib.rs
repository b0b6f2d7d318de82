//! `diagnostics`: the three connection-diagnostics endpoints of seed 001's
//! smoke-test service, message for message. A pipeline serves one of them,
//! chosen by `endpoint`; run three pipelines for all three paths.
//!
//! Every message is a JSON text frame. Times are seconds since the epoch as
//! a float with millisecond precision (`1699564800.123`). Each connection
//! gets a client id `<prefix>_<open time in ms>_<5 random digits>`, e.g.
//! `echo_client_1699564800123_12345`.
//!
//! ## `endpoint = "echo"` (client ids `echo_client_...`)
//!
//! On open:
//! `{"type":"welcome","endpoint":"/ws/echo","client_id":"...","server_time":1699564800.123,"config":{"ping_interval":30,"ping_timeout":10}}`
//! (`endpoint` is the path the client connected to).
//!
//! Every text message, whatever it holds (`{"type":"ping"}` included):
//! `{"type":"echo","original":{"type":"test","data":"hello"},"server_timestamp":1699564801.234,"client_id":"...","latency_info":{"received_at":1699564801.234,"connection_age_ms":1111.5}}`.
//! `original` is the message itself when it is JSON (whitespace removed,
//! keys in the client's order), otherwise its text as a JSON string.
//! `connection_age_ms` is measured on the monotonic clock, to 0.1 ms.
//! A binary frame is sent back unchanged, as a binary frame.
//!
//! ## `endpoint = "health"` (client ids `health_client_...`)
//!
//! On open:
//! `{"type":"health_status","status":"connected","client_id":"...","server_time":...,"config":{"ping_interval":30,"ping_timeout":10,"expected_min_connection_duration":30},"environment":{...}}`.
//!
//! Heartbeats, numbered from 1 per connection:
//! `{"type":"heartbeat","ping_number":1,"timestamp":...,"connection_age_seconds":30.0,"client_id":"..."}`.
//! They are sent from the pipeline's timer (`tick_ms`): heartbeat n of a
//! connection opened at t0 is due at t0 + n * `ping_interval`, and goes out
//! on the first tick at or after that. A connection gets at most one per
//! tick and no number is skipped, so after a late tick the backlog goes out
//! one per tick. Keep `tick_ms` well under `ping_interval` (the default
//! 1000 ms is fine) or heartbeats drift late.
//!
//! Client messages (text frames holding a JSON object with a `type`):
//! - `{"type":"get_status"}` ->
//!   `{"type":"health_status","status":"healthy","connection_age_seconds":65.2,"ping_count":2,"pong_count":0,"timestamp":...,"client_id":"..."}`
//!   (`ping_count`: heartbeats sent; `pong_count`: pongs received);
//! - `{"type":"pong"}` -> no reply; counted in `pong_count`;
//! - any other type, JSON that is not an object with a string `type`, text
//!   that is not JSON, or a binary frame ->
//!   `{"type":"error","message":"unknown message type \"foo\": ...","timestamp":...,"client_id":"..."}`;
//!   the connection stays open.
//!
//! Pongs are only counted: a client that never answers is not closed
//! (`ping_timeout` is reported, as in the seed; WebSocket-level ping/pong is
//! the host's business).
//!
//! ## `endpoint = "main"` (client ids `ws_client_...`)
//!
//! No welcome. `{"type":"ping"}` (any JSON object whose `type` is `"ping"`)
//! -> `{"type":"pong","timestamp":...,"client_id":"..."}`; any other text
//! -> `{"type":"echo","data":<as echo's original>,"timestamp":...,"client_id":"...","server_processing_ms":0.234}`
//! (time spent in the plugin, monotonic clock, to the microsecond). A
//! binary frame is sent back unchanged, as a binary frame.
//!
//! ## Config
//!
//! - `endpoint`: `"echo"`, `"health"` or `"main"` (required).
//! - `ping_interval`: seconds between heartbeats, at least 0.001 (default 30).
//! - `ping_timeout`: seconds, reported only (default 10).
//! - `expected_min_connection_duration`: seconds, reported only (default 30).
//! - `environment`: a table shown as is in health's first message (default
//!   `{}`); its keys come out in alphabetical order (the host hands config
//!   over that way).
//!
//! Numbers are reported as written (`30` stays `30`). Unknown keys, a
//! missing or unknown endpoint and negative durations are refused at load
//! time with a message naming the key.
//!
//! ```toml
//! [[pipelines]]
//! name = "ws-health"
//! path = "/ws/health"
//! tick_ms = 500
//!
//! [pipelines.handler]
//! plugin = "diagnostics"
//! config = { endpoint = "health", ping_interval = 30, environment = { public_base_url = "http://localhost:9000", ws_public_url = "ws://localhost:9000/ws" } }
//! ```
//!
//! State is per connection, removed on close. If the plugin traps, the host
//! rebuilds it empty: a connection it hears from again gets a new client id
//! and its age starts over.

mod echo;
mod health;
mod json_text;
mod main_ws;
mod session;
mod settings;

use std::collections::HashMap;
use std::time::Instant;

use serde_json::Value;
use sluice_sdk::{Action, Config, Connection, FrameKind, Handler, Message, log};

use session::Session;
use settings::{Endpoint, Settings};

struct Diagnostics {
    settings: Settings,
    sessions: HashMap<u64, Session>,
}

impl Handler for Diagnostics {
    fn new(config: &Config) -> Result<Self, String> {
        Ok(Diagnostics {
            settings: Settings::from_config(config)?,
            sessions: HashMap::new(),
        })
    }

    fn on_open(&mut self, conn: Connection) -> Vec<Action> {
        let session = Session::new(self.settings.endpoint, log::now_ms());
        let welcome = match self.settings.endpoint {
            Endpoint::Echo => Some(echo::welcome(&self.settings, &conn.path, &session)),
            Endpoint::Health => Some(health::welcome(&self.settings, &session)),
            Endpoint::Main => None,
        };
        self.sessions.insert(conn.id, session);
        welcome.map(Action::Reply).into_iter().collect()
    }

    fn on_message(&mut self, conn_id: u64, msg: Message) -> Vec<Action> {
        let received = Instant::now();
        let now_ms = log::now_ms();
        let endpoint = self.settings.endpoint;
        // A connection unknown here was opened before a trap emptied the
        // state: adopt it rather than leave it unanswered.
        let session = self
            .sessions
            .entry(conn_id)
            .or_insert_with(|| Session::new(endpoint, now_ms));
        let reply = match endpoint {
            Endpoint::Echo => Some(echo::reply(session, msg, now_ms)),
            Endpoint::Health => health::reply(session, &msg, now_ms),
            Endpoint::Main => Some(main_ws::reply(session, msg, now_ms, received)),
        };
        reply.map(Action::Reply).into_iter().collect()
    }

    fn on_close(&mut self, conn_id: u64, _code: u16, _reason: String) -> Vec<Action> {
        self.sessions.remove(&conn_id);
        Vec::new()
    }

    fn on_tick(&mut self, now_ms: u64, connections: Vec<u64>) -> Vec<Action> {
        match self.settings.endpoint {
            Endpoint::Health => health::heartbeats(
                &mut self.sessions,
                self.settings.interval_ms,
                now_ms,
                connections,
            ),
            Endpoint::Echo | Endpoint::Main => Vec::new(),
        }
    }
}

/// The text of a text frame; `None` for a binary frame.
fn text_of(msg: &Message) -> Option<&str> {
    match msg.kind {
        FrameKind::Text => msg.as_str(),
        FrameKind::Binary => None,
    }
}

/// The `type` of a JSON object message, when it has a string one.
fn type_of(parsed: Option<&Value>) -> Option<&str> {
    parsed?.get("type")?.as_str()
}

sluice_sdk::export_handler!(Diagnostics);
