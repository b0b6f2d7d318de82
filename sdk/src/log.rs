//! Logging through the host: lines land in the host's log tagged with the
//! plugin, pipeline and tenant. Guest stdout/stderr go there too, but these
//! keep the level.

use crate::bindings::common::sluice::plugin::host::{self, Level};

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) {
    host::log(level, message);
}

/// Logs at debug level (not shown at the host's default level).
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Wall-clock time from the host, in milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    host::now_ms()
}
