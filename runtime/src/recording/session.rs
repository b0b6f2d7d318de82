//! Seed 003's session format ("Recording and Replay"): a `metadata`
//! object (`recorded_at`, `duration_ms`, `message_count`) and the
//! `messages`, each with its time since the session began, its direction
//! (`incoming`: from the client; `outgoing`: to it), its type and its
//! data. Text is written as it is; binary frames, pings and pongs as
//! base64, so every byte comes back on replay. Fields beyond the seed's
//! (`pipeline`, `path`, `connection`, `dropped`) are optional on read.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A recorded session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// About the whole session.
    pub metadata: Metadata,
    /// Every message, in the order it passed.
    pub messages: Vec<Entry>,
}

/// A session's `metadata`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// When it began, RFC 3339 UTC.
    pub recorded_at: String,
    /// From its beginning to its last message (or its end).
    pub duration_ms: u64,
    /// How many messages it holds.
    pub message_count: u64,
    /// The pipeline it was recorded on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// The request path of its connection (one file per connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Its connection's id (one file per connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<u64>,
    /// Messages not written because the disk did not keep up.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One recorded message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Milliseconds since the session began.
    pub timestamp_ms: u64,
    /// Which way it went.
    pub direction: Direction,
    /// Its frame type.
    #[serde(rename = "type")]
    pub kind: EntryKind,
    /// Text as it is; anything else base64.
    pub data: String,
    /// Its connection, in a file that records a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<u64>,
}

/// From the client, or to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The client sent it.
    Incoming,
    /// The server sent it.
    Outgoing,
}

/// What kind of frame a message was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A text message.
    Text,
    /// A binary message (data in base64).
    Binary,
    /// A ping (payload in base64).
    Ping,
    /// A pong (payload in base64).
    Pong,
}

/// A session file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Not the session format.
    #[error("not a session file: {0}")]
    Format(#[from] serde_json::Error),
    /// A message whose data does not decode.
    #[error("message {index}: {kind:?} data is not valid base64")]
    Data {
        /// Its place in `messages`.
        index: usize,
        /// Its type.
        kind: EntryKind,
    },
}

impl Entry {
    /// An entry for `payload` of `kind`.
    pub fn new(timestamp_ms: u64, direction: Direction, kind: EntryKind, payload: &[u8]) -> Self {
        let data = match (kind, std::str::from_utf8(payload)) {
            (EntryKind::Text, Ok(text)) => text.to_owned(),
            // Text frames are UTF-8 by the time they are recorded; were one
            // not, it would still round-trip as binary.
            (EntryKind::Text, Err(_)) => {
                return Self::new(timestamp_ms, direction, EntryKind::Binary, payload);
            }
            _ => base64::engine::general_purpose::STANDARD.encode(payload),
        };
        Self {
            timestamp_ms,
            direction,
            kind,
            data,
            connection: None,
        }
    }

    /// The message's bytes.
    pub fn payload(&self) -> Option<Vec<u8>> {
        match self.kind {
            EntryKind::Text => Some(self.data.clone().into_bytes()),
            _ => base64::engine::general_purpose::STANDARD
                .decode(&self.data)
                .ok(),
        }
    }
}

impl Session {
    /// Reads a session from its JSON text; every message's data must decode.
    pub fn parse(text: &str) -> Result<Self, SessionError> {
        let session: Session = serde_json::from_str(text)?;
        for (index, entry) in session.messages.iter().enumerate() {
            if entry.payload().is_none() {
                return Err(SessionError::Data {
                    index,
                    kind: entry.kind,
                });
            }
        }
        Ok(session)
    }

    /// Its messages on one connection: those of `connection` in a file of
    /// a whole run (`None`: the first connection it holds), or all of them.
    pub fn of_connection(&self, connection: Option<u64>) -> Vec<&Entry> {
        let wanted = connection.or_else(|| self.messages.iter().find_map(|e| e.connection));
        self.messages
            .iter()
            .filter(|e| wanted.is_none() || e.connection == wanted)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_example_parses_and_binary_round_trips() {
        let seed = r#"{
          "metadata": { "recorded_at": "2024-01-15T10:30:00Z", "duration_ms": 5000, "message_count": 2 },
          "messages": [
            { "timestamp_ms": 0, "direction": "incoming", "type": "text",
              "data": "{\"type\": \"subscribe\", \"channel\": \"orders\"}" },
            { "timestamp_ms": 50, "direction": "outgoing", "type": "text",
              "data": "{\"type\": \"subscribed\", \"channel\": \"orders\"}" }
          ]
        }"#;
        let session = Session::parse(seed).unwrap();
        assert_eq!(session.metadata.message_count, 2);
        assert_eq!(session.messages[1].direction, Direction::Outgoing);
        assert_eq!(session.messages[1].timestamp_ms, 50);

        let bytes = [0u8, 255, 1, 254, 0x80];
        let entry = Entry::new(7, Direction::Incoming, EntryKind::Binary, &bytes);
        assert_eq!(entry.payload().unwrap(), bytes);
        let text = serde_json::to_string(&entry).unwrap();
        let back: Entry = serde_json::from_str(&text).unwrap();
        assert_eq!(back.payload().unwrap(), bytes);
    }

    #[test]
    fn bad_data_is_refused_naming_the_message() {
        let bad = r#"{ "metadata": { "recorded_at": "x", "duration_ms": 0, "message_count": 1 },
          "messages": [{ "timestamp_ms": 0, "direction": "incoming", "type": "binary", "data": "%%" }] }"#;
        let error = Session::parse(bad).unwrap_err().to_string();
        assert_eq!(error, "message 0: Binary data is not valid base64");
    }
}
