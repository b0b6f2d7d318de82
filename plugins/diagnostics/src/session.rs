//! What the plugin remembers about one connection.

use std::time::Instant;

use sluice_sdk::random;

use crate::settings::Endpoint;

pub struct Session {
    /// `<prefix>_<open time ms>_<5 random digits>`, as the seed's ids.
    pub client_id: String,
    /// Host wall clock at open, ms since the epoch: the base of every age
    /// and of the heartbeat schedule.
    pub opened_ms: u64,
    /// Monotonic clock at open, for the echo's `connection_age_ms` (which
    /// must not jump when the wall clock is adjusted).
    pub opened_at: Instant,
    /// Heartbeats sent so far (the last `ping_number`).
    pub heartbeats: u64,
    /// `{"type":"pong"}` messages received.
    pub pongs: u64,
}

impl Session {
    pub fn new(endpoint: Endpoint, now_ms: u64) -> Self {
        let digits = random::int_between(10_000, 99_999);
        Session {
            client_id: format!("{}_{now_ms}_{digits}", endpoint.client_prefix()),
            opened_ms: now_ms,
            opened_at: Instant::now(),
            heartbeats: 0,
            pongs: 0,
        }
    }

    /// Seconds since open on the wall clock, to the millisecond.
    pub fn age_seconds(&self, now_ms: u64) -> f64 {
        now_ms.saturating_sub(self.opened_ms) as f64 / 1000.0
    }
}
