//! When a connection last showed signs of life, shared by its reader (which
//! hears the peer) and its writer (which pings it and times it out).

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::Instant;

/// Milliseconds since the connection opened at which things last happened.
#[derive(Debug)]
pub struct Activity {
    opened: Instant,
    heard_ms: AtomicU64,
    message_ms: AtomicU64,
}

impl Activity {
    /// A connection opening now.
    pub fn new() -> Self {
        Self {
            opened: Instant::now(),
            heard_ms: AtomicU64::new(0),
            message_ms: AtomicU64::new(0),
        }
    }

    /// Milliseconds since it opened.
    pub fn now_ms(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    /// The instant `ms` after it opened.
    pub fn at(&self, ms: u64) -> Instant {
        self.opened + std::time::Duration::from_millis(ms)
    }

    /// The peer sent a frame (any frame proves it is alive).
    pub fn heard(&self) {
        self.heard_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A message went either way.
    pub fn messaged(&self) {
        self.message_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// When the peer last sent a frame.
    pub fn heard_at_ms(&self) -> u64 {
        self.heard_ms.load(Ordering::Relaxed)
    }

    /// When a message last went either way.
    pub fn messaged_at_ms(&self) -> u64 {
        self.message_ms.load(Ordering::Relaxed)
    }
}
