//! Running pipelines: the record path (transforms, router, fanout) and the
//! wiring of consumers, plugins, hubs and listeners.

mod inbound;
mod parts;
mod record_path;
mod runner;
mod sink_prep;
mod stages;

pub use inbound::{Inbound, Sender};
pub use record_path::{DeadLetter, PathStats, RecordPath};
pub use runner::{Running, start};
pub use sink_prep::SinkPrep;
pub use stages::{Outlet, Poison, Stages};
