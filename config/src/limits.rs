//! Per-plugin resource limits: a memory cap and a per-call deadline.

use std::time::Duration;

use serde::Deserialize;

/// Limits for one plugin, from its `limits` table in the pipeline file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Linear memory cap in bytes: `memory_bytes = 33554432`. A guest that
    /// tries to grow past it fails the call with a memory error.
    pub memory_bytes: usize,
    /// Wall-clock budget of one call in milliseconds: `deadline_ms = 50`.
    /// A call still running then is interrupted and fails with a timeout.
    pub deadline_ms: u64,
}

impl Limits {
    /// Bounds on `limits`: below 4 MiB a Rust guest cannot even start (its
    /// stack and data take over 1 MiB); above 4 GiB is
    /// past what a 32-bit guest can address.
    pub const MEMORY_BYTES: std::ops::RangeInclusive<u64> = (4 << 20)..=(4 << 30);
    /// Bounds on `deadline_ms`: a call of a minute would stall a pipeline.
    pub const DEADLINE_MS: std::ops::RangeInclusive<u64> = 1..=60_000;

    /// 32 MiB of memory: ample for routers and auth, small enough that a
    /// thousand plugins fit in one host.
    pub const DEFAULT_MEMORY_BYTES: usize = 32 << 20;
    /// 50 ms per call: far above a healthy call (microseconds), far below
    /// what a stalled client would notice.
    pub const DEFAULT_DEADLINE_MS: u64 = 50;

    /// The deadline as a duration.
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    /// The budget of `init`, which may parse keys or large configs: ten
    /// call deadlines, at least one second.
    pub fn init_deadline(&self) -> Duration {
        Duration::from_millis((self.deadline_ms.saturating_mul(10)).max(1000))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            deadline_ms: Self::DEFAULT_DEADLINE_MS,
        }
    }
}
