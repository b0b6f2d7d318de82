//! The main endpoint (`/ws` in the seed): no welcome; `{"type":"ping"}`
//! gets a pong, anything else an echo with the server's processing time.

use std::time::Instant;

use sluice_sdk::Message;

use crate::json_text::{Object, compact, quote, round, seconds};
use crate::session::Session;
use crate::{text_of, type_of};

/// The answer to one message; `received` is when on-message started.
pub fn reply(session: &Session, msg: Message, now_ms: u64, received: Instant) -> Message {
    let Some(text) = text_of(&msg) else {
        // As on the echo endpoint: bytes go back as they came.
        return Message::binary(msg.payload);
    };
    let parsed: Option<serde_json::Value> = serde_json::from_str(text).ok();
    if type_of(parsed.as_ref()) == Some("ping") {
        return Object::new()
            .str("type", "pong")
            .float("timestamp", seconds(now_ms))
            .str("client_id", &session.client_id)
            .message();
    }
    // Same result as `embed`, without parsing the text a second time.
    let data = match parsed {
        Some(_) => compact(text),
        None => quote(text),
    };
    // Measured last, so it covers parsing and copying the message.
    let processing_ms = round(received.elapsed().as_secs_f64() * 1000.0, 3);
    Object::new()
        .str("type", "echo")
        .raw("data", &data)
        .float("timestamp", seconds(now_ms))
        .str("client_id", &session.client_id)
        .float("server_processing_ms", processing_ms)
        .message()
}
