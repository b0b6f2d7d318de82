//! `kind = "rooms"`: chat rooms on top of the host's channels. A room `A`
//! is the channel `room:A`, so rooms cannot collide with channels named by
//! routers or paths.

use serde_json::{Value, json};
use sluice_sdk::{Action, Message};

/// Put before a room's name to make its channel name.
pub const PREFIX: &str = "room:";

/// Most rooms one connection may be in: bounds the state a client can make
/// the plugin keep.
pub const MAX_ROOMS: usize = 100;

/// Handles one client message; `joined` is the sender's rooms, in the
/// order joined.
pub fn on_message(
    conn_id: u64,
    joined: &mut Vec<String>,
    message: Option<&Value>,
    now_ms: u64,
) -> Vec<Action> {
    match handle(conn_id, joined, message, now_ms) {
        Ok(actions) => actions,
        Err(reason) => vec![Action::Reply(Message::json(
            &json!({ "type": "error", "error": reason }),
        ))],
    }
}

/// Tells every room the connection was in that it left.
pub fn on_close(conn_id: u64, joined: &[String]) -> Vec<Action> {
    joined
        .iter()
        .map(|room| {
            broadcast(
                room,
                json!({ "type": "user_left", "user": conn_id, "room": room }),
            )
        })
        .collect()
}

enum Verb {
    Join,
    Leave,
    Message,
}

fn handle(
    conn_id: u64,
    joined: &mut Vec<String>,
    message: Option<&Value>,
    now_ms: u64,
) -> Result<Vec<Action>, String> {
    let Some(Value::Object(fields)) = message else {
        return Err(
            "expected a JSON object such as {\"action\":\"join\",\"room\":\"lobby\"}".into(),
        );
    };
    let verb = match fields.get("action") {
        Some(Value::String(action)) => match action.as_str() {
            "join" => Verb::Join,
            "leave" => Verb::Leave,
            "message" => Verb::Message,
            _ => {
                return Err(format!(
                    "unknown action {action:?} (expected \"join\", \"leave\" or \"message\")"
                ));
            }
        },
        _ => return Err("`action` must be \"join\", \"leave\" or \"message\"".into()),
    };
    let room = room_name(fields.get("room"))?;
    let position = joined.iter().position(|r| r == room);
    match (verb, position) {
        (Verb::Join, Some(_)) => Err(format!("already in room {room:?}")),
        (Verb::Join, None) if joined.len() >= MAX_ROOMS => {
            Err(format!("already in {MAX_ROOMS} rooms, the most allowed"))
        }
        (Verb::Join, None) => {
            joined.push(room.to_owned());
            Ok(vec![
                Action::Join(channel(room)),
                broadcast(
                    room,
                    json!({ "type": "user_joined", "user": conn_id, "room": room }),
                ),
            ])
        }
        (Verb::Leave, Some(at)) => {
            joined.remove(at);
            // Told before leaving, so the leaver sees it too.
            Ok(vec![
                broadcast(
                    room,
                    json!({ "type": "user_left", "user": conn_id, "room": room }),
                ),
                Action::Leave(channel(room)),
            ])
        }
        (Verb::Message, Some(_)) => {
            let text = match fields.get("text") {
                Some(Value::String(text)) => text,
                _ => return Err("`text` must be a string".into()),
            };
            Ok(vec![broadcast(
                room,
                json!({
                    "type": "chat",
                    "from": conn_id,
                    "room": room,
                    "text": text,
                    "timestamp": now_ms,
                }),
            )])
        }
        (_, None) => Err(format!("not in room {room:?}: join it first")),
    }
}

/// The `room` field: a non-empty string that makes a valid channel name.
fn room_name(value: Option<&Value>) -> Result<&str, String> {
    let Some(Value::String(room)) = value else {
        return Err("`room` must be a string naming the room".into());
    };
    if room.is_empty() {
        return Err("`room` is empty".into());
    }
    sluice_sdk::channel::validate(&channel(room)).map_err(|e| format!("invalid room name: {e}"))?;
    Ok(room)
}

fn channel(room: &str) -> String {
    format!("{PREFIX}{room}")
}

fn broadcast(room: &str, message: Value) -> Action {
    Action::Broadcast((channel(room), Message::json(&message)))
}
