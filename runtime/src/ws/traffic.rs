//! What passes on one connection: each message counted (its registry entry
//! and its pipeline's metrics) and, when the pipeline records sessions,
//! recorded on its tape. Pings and pongs are recorded, not counted.

use std::sync::Arc;

use crate::connections::ConnInfo;
use crate::recording::{Direction, EntryKind, Tape};

/// One connection's traffic.
pub struct Traffic {
    /// Its registry entry (counts, metrics).
    pub info: Arc<ConnInfo>,
    tape: Option<Tape>,
}

impl Traffic {
    /// Counts in `info`; records on `tape` if there is one.
    pub fn new(info: Arc<ConnInfo>, tape: Option<Tape>) -> Self {
        Self { info, tape }
    }

    /// A data message written to the client.
    pub fn sent(&self, text: bool, payload: &[u8]) {
        self.info.sent(payload.len());
        self.record(Direction::Outgoing, data_kind(text), payload);
    }

    /// A data message from the client.
    pub fn received(&self, text: bool, payload: &[u8]) {
        self.info.received(payload.len());
        self.record(Direction::Incoming, data_kind(text), payload);
    }

    /// A ping (`true`) or pong written to the client.
    pub fn control_sent(&self, ping: bool, payload: &[u8]) {
        self.record(Direction::Outgoing, control_kind(ping), payload);
    }

    /// A ping (`true`) or pong from the client.
    pub fn control_received(&self, ping: bool, payload: &[u8]) {
        self.record(Direction::Incoming, control_kind(ping), payload);
    }

    fn record(&self, direction: Direction, kind: EntryKind, payload: &[u8]) {
        if let Some(tape) = &self.tape {
            tape.record(direction, kind, payload);
        }
    }
}

fn data_kind(text: bool) -> EntryKind {
    if text {
        EntryKind::Text
    } else {
        EntryKind::Binary
    }
}

fn control_kind(ping: bool) -> EntryKind {
    if ping {
        EntryKind::Ping
    } else {
        EntryKind::Pong
    }
}
