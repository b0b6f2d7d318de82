//! Enforcing a plugin's memory cap (its deadline is the epoch's, see
//! `engine.rs`); the limits themselves are config's ([`crate::config::Limits`]).

/// Enforces the memory cap and remembers that it was hit, so a failed call
/// can be reported as a memory overrun rather than a bare trap.
#[derive(Debug)]
pub(crate) struct MemoryCap {
    pub cap: usize,
    pub exceeded: bool,
}

/// Upper bound on table elements (function references): generous for any
/// real plugin, and keeps a hostile one from growing tables without end.
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.cap {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
