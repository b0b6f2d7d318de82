//! Running plugins and pipelines on fixture inputs and comparing what they
//! do with what a test expects: `sluice plugin test` and `sluice test`.
//!
//! A case gives one input and the outcome it expects:
//!
//! ```toml
//! [[cases]]
//! name = "a keyed record goes to its channel"
//! record = { key = "channel1", value = "hello" }
//! expect = { channels = ["channel1"] }
//! ```
//!
//! - [`fixture`] (config's): the cases as written (records, handshakes, handler
//!   connections and messages).
//! - [`run_case`]: one case on one plugin; [`PipelineTests`]: a pipeline
//!   file's `[[tests]]` through its real plugins. Both go through the host
//!   code a running pipeline uses (the record path's stages, the
//!   handshake gate, the handler calls and their checks).
//! - [`compare`]: expected against actual, field by field.
//!
//! docs/testing-pipelines.md describes the format and every outcome field.

mod diff;
mod outcome;
mod pipeline;
mod report;
mod run;

pub use diff::{Mismatch, compare};
// The cases are part of the pipeline file's schema (`[[tests]]`).
pub use crate::config::fixture::{self, Case, Fixtures, Input};
pub use pipeline::PipelineTests;
pub use report::{Verdict, parse_fixtures, verdict};
pub use run::{Unfit, check_fits, run_case};
