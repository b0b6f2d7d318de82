//! Running pipelines: the record path (transforms, router, fanout), the
//! wiring of consumers, plugins, hubs and listeners, and live reload.

mod inbound;
mod live;
mod parts;
mod record_path;
mod reload;
mod runner;
mod sink_prep;
mod stages;
mod watch;

pub use inbound::{Inbound, Sender};
pub use parts::{load_plugin, stages};
pub use record_path::{DeadLetter, PathStats, RecordPath, StageSender};
pub use reload::{ReloadOutcome, Reloads, Trigger};
pub use runner::{Running, start};
pub use sink_prep::SinkPrep;
pub use stages::{Outlet, Poison, Stages};
pub use watch::FileWatch;
