//! The flows of a pipeline's data: the record path (transforms, router,
//! fanout to the hub, poison policy) and the inbound path (client
//! messages through transforms to the sink topic, with replies). Built and
//! swapped by [`crate::server`].

mod inbound_path;
mod record_path;
mod sink_prep;
mod stages;

pub use inbound_path::InboundPath;
pub use record_path::{DeadLetter, Forward, RecordPath, StageSender};
pub use sink_prep::{Sender, SinkPrep};
pub use stages::{Outlet, Poison, Stages};
