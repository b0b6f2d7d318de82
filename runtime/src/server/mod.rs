//! The process: builds everything a checked config describes (the embedded
//! broker, each pipeline's parts, the listeners and the admin API), serves
//! it, and keeps it in step with the pipeline file (live reload on SIGHUP,
//! a file change or `POST /reload`).
//!
//! - [`run`]: start, the listeners, shutdown.
//! - [`live`]: the pipelines running now, and how a config replaces them.
//! - [`parts`]: one pipeline's endpoint, record-path stages and consumer.
//! - [`reload`]: one reload at a time, and what a reload cannot change.
//! - [`watch`]: reloads on changes to the file or its plugins.

mod live;
mod parts;
mod reload;
mod run;
mod watch;

pub use parts::{load_plugin, stages};
pub use run::{Running, start};
pub use watch::FileWatch;
