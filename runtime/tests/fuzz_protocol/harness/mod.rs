//! The in-tree fuzzing harness of `tests/fuzz_protocol/`, compiled into
//! that test binary only (cargo-fuzz
//! needs a nightly compiler; this runs under plain `cargo test`):
//!
//! - [`Rng`]: a small seeded generator, one per case, so any case can be
//!   replayed alone;
//! - [`Settings`]: seed, case count, time budget and replay list from the
//!   environment (`SLUICE_FUZZ_*`);
//! - [`drive`]: runs cases in concurrent batches, each under a hang guard,
//!   checks the server after every batch ([`alive`]), and fails ([`fail`])
//!   with the seed, the case's bytes in hex and the command that replays
//!   it; [`run_cases`] does the same in-process;
//! - the wire: client frames as bytes ([`frame`]), the server's frames
//!   checked against RFC 6455 ([`hear`]) and against the model of the
//!   contract ([`predict`], [`judge_frames`]), conversations on sockets
//!   ([`converse`], [`exchange`]), HTTP responses (`support::http_response`),
//!   `Sec-WebSocket-Accept` ([`accept_key`]) and raw DEFLATE (flate2, as
//!   the server uses it).

mod deflate;
mod driver;
mod frames;
mod http;
mod judge;
mod predict;
mod report;
mod rng;
mod settings;
mod socket;

use std::time::Duration;

// Flat, so callers write `fuzz::frame`.
pub use {
    deflate::{deflate, inflate},
    driver::{Prepared, alive, drive, run_cases},
    frames::{Heard, Len, frame, hear, parse_header, sendable_close_code, unmask},
    http::accept_key,
    judge::judge_frames,
    predict::{Deflated, End, Expect, predict},
    report::{Failure, fail, hex_block, show},
    rng::Rng,
    settings::Settings,
    socket::{Wire, converse, exchange, upgrade, write_plan},
};

/// A hang guard for one read or one step of a case (the server answers
/// in milliseconds; only a broken server waits this long).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// The hang guard of a whole case.
pub const CASE_PATIENCE: Duration = Duration::from_secs(30);

/// Close codes the server may send of its own accord (README, "Connection
/// lifecycle and close codes"; 1001 is for shutdown and 1013 for a full
/// handler queue, neither of which a fuzz case can cause).
pub const SERVER_CLOSE_CODES: [u16; 7] = [1000, 1002, 1003, 1007, 1008, 1009, 1011];
