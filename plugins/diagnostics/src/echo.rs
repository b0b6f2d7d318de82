//! The echo endpoint (`/ws/echo` in the seed): a welcome on open, then every
//! message echoed with latency info.

use sluice_sdk::Message;

use crate::json_text::{Object, embed, round, seconds};
use crate::session::Session;
use crate::settings::Settings;
use crate::text_of;

/// `{"type":"welcome","endpoint","client_id","server_time","config"}`.
pub fn welcome(settings: &Settings, path: &str, session: &Session) -> Message {
    Object::new()
        .str("type", "welcome")
        .str("endpoint", path)
        .str("client_id", &session.client_id)
        .float("server_time", seconds(session.opened_ms))
        .object("config", settings.ping_config())
        .message()
}

/// The echo of one message. A binary frame comes back as the same binary
/// frame: a JSON envelope has no faithful place for arbitrary bytes.
pub fn reply(session: &Session, msg: Message, now_ms: u64) -> Message {
    let Some(text) = text_of(&msg) else {
        return Message::binary(msg.payload);
    };
    // Tenths of a millisecond, as the seed shows (`1111.5`).
    let age_ms = round(session.opened_at.elapsed().as_secs_f64() * 1000.0, 1);
    let now = seconds(now_ms);
    Object::new()
        .str("type", "echo")
        .raw("original", &embed(text))
        .float("server_timestamp", now)
        .str("client_id", &session.client_id)
        .object(
            "latency_info",
            Object::new()
                .float("received_at", now)
                .float("connection_age_ms", age_ms),
        )
        .message()
}
