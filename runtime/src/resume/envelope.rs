//! The messages of the resume subprotocol (`docs/resume.md`): every frame a
//! client that negotiated it receives is one JSON text message.
//!
//! - `{"type":"record","topic":…,"partition":…,"offset":…,"position":"…",
//!   "data":"…"}` a record (its payload as text, or `data_base64` for a
//!   binary one), with its position;
//! - `{"type":"message","data":"…"}` anything else the server sends (a
//!   handler's reply, an admin message);
//! - `{"type":"position","position":"…"}` where the client stands, at
//!   connect and every checkpoint;
//! - `{"type":"recovered","complete":…}` the outcome of a reconnect with a
//!   position.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::position::{Position, Signer};
use crate::hub::{Frame, Kind};
use crate::kafka::Positions;

/// A frame as the resume subprotocol carries it: built once per frame
/// (see [`Frame::enveloped`]) and shared by every enveloped receiver.
pub fn wrap(frame: &Frame, signer: &Signer, now_ms: u64) -> Frame {
    let mut body = match frame.origin() {
        Some(origin) => {
            let mut next = Positions::new();
            next.insert((origin.topic.to_string(), origin.partition), origin.next());
            let position = signer.sign(&Position {
                issued_ms: now_ms,
                next,
            });
            json!({
                "type": "record",
                "topic": &*origin.topic,
                "partition": origin.partition,
                "offset": origin.offset,
                "position": position,
            })
        }
        None => json!({ "type": "message" }),
    };
    match (frame.kind, std::str::from_utf8(&frame.payload)) {
        (Kind::Text, Ok(text)) => body["data"] = Value::from(text),
        _ => body["data_base64"] = Value::from(STANDARD.encode(&frame.payload)),
    }
    text(&body)
}

/// Where the client stands now.
pub fn position(signer: &Signer, next: Positions, now_ms: u64) -> Frame {
    let position = signer.sign(&Position {
        issued_ms: now_ms,
        next,
    });
    text(&json!({ "type": "position", "position": position }))
}

/// A reconnect with a position got everything it missed: `records` of them.
pub fn recovered(records: u64) -> Frame {
    text(&json!({ "type": "recovered", "complete": true, "records": records }))
}

/// A reconnect with a position could not get what it missed, and why; live
/// records follow.
pub fn not_recovered(reason: &str) -> Frame {
    text(&json!({ "type": "recovered", "complete": false, "reason": reason }))
}

fn text(body: &Value) -> Frame {
    Frame::envelope(body.to_string())
}
