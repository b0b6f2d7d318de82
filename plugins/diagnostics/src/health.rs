//! The health endpoint (`/ws/health` in the seed): status on open,
//! numbered heartbeats every `ping_interval`, `get_status` on request.

use std::collections::HashMap;

use serde_json::Value;
use sluice_sdk::{Action, Message};

use crate::json_text::{Object, quote, seconds};
use crate::session::Session;
use crate::settings::Settings;
use crate::{text_of, type_of};

/// Longest part of an unknown message type quoted back, in characters.
const QUOTE_LIMIT: usize = 64;

/// `{"type":"health_status","status":"connected",...}` with the config and
/// the `environment` table.
pub fn welcome(settings: &Settings, session: &Session) -> Message {
    Object::new()
        .str("type", "health_status")
        .str("status", "connected")
        .str("client_id", &session.client_id)
        .float("server_time", seconds(session.opened_ms))
        .object(
            "config",
            settings.ping_config().number(
                "expected_min_connection_duration",
                &settings.expected_min_connection_duration,
            ),
        )
        .raw("environment", &settings.environment)
        .message()
}

/// `get_status` gets the counters, `pong` is counted silently, anything
/// else gets an error naming what was wrong (the connection stays open).
pub fn reply(session: &mut Session, msg: &Message, now_ms: u64) -> Option<Message> {
    let Some(text) = text_of(msg) else {
        return Some(error(
            session,
            now_ms,
            "binary frames are not understood here: send JSON text such as {\"type\":\"get_status\"}",
        ));
    };
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    match type_of(parsed.as_ref()) {
        Some("get_status") => Some(status(session, now_ms)),
        Some("pong") => {
            session.pongs += 1;
            None
        }
        Some(other) => Some(error(
            session,
            now_ms,
            &format!(
                "unknown message type {}: this endpoint understands get_status and pong",
                quote(&cut(other))
            ),
        )),
        None => Some(error(
            session,
            now_ms,
            "expected a JSON object with a string \"type\", such as {\"type\":\"get_status\"}",
        )),
    }
}

fn status(session: &Session, now_ms: u64) -> Message {
    Object::new()
        .str("type", "health_status")
        .str("status", "healthy")
        .float("connection_age_seconds", session.age_seconds(now_ms))
        .int("ping_count", session.heartbeats)
        .int("pong_count", session.pongs)
        .float("timestamp", seconds(now_ms))
        .str("client_id", &session.client_id)
        .message()
}

/// `{"type":"error","message","timestamp","client_id"}`.
fn error(session: &Session, now_ms: u64, message: &str) -> Message {
    Object::new()
        .str("type", "error")
        .str("message", message)
        .float("timestamp", seconds(now_ms))
        .str("client_id", &session.client_id)
        .message()
}

/// The heartbeats due at `now_ms`. Heartbeat n of a connection opened at t0
/// is due at t0 + n * interval; a connection gets at most one per tick and
/// numbers are never skipped, so after a late tick the backlog is worked
/// off one tick at a time (each heartbeat stamped with its real send time).
pub fn heartbeats(
    sessions: &mut HashMap<u64, Session>,
    interval_ms: u64,
    now_ms: u64,
    mut connections: Vec<u64>,
) -> Vec<Action> {
    // Sorted and deduplicated: a stable order, and one heartbeat per
    // connection even if the host listed it twice.
    connections.sort_unstable();
    connections.dedup();
    let mut actions = Vec::new();
    for id in connections {
        // Connections of other instances, or not opened here, are skipped.
        let Some(session) = sessions.get_mut(&id) else {
            continue;
        };
        let next = session.heartbeats.saturating_add(1);
        let due = session
            .opened_ms
            .saturating_add(next.saturating_mul(interval_ms));
        if now_ms < due {
            continue;
        }
        session.heartbeats = next;
        let beat = Object::new()
            .str("type", "heartbeat")
            .int("ping_number", next)
            .float("timestamp", seconds(now_ms))
            .float("connection_age_seconds", session.age_seconds(now_ms))
            .str("client_id", &session.client_id)
            .message();
        actions.push(Action::Send((id, beat)));
    }
    actions
}

/// `text` cut to [`QUOTE_LIMIT`] characters so an error stays short.
fn cut(text: &str) -> String {
    match text.char_indices().nth(QUOTE_LIMIT) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}
