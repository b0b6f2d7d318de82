//! The process's open connections: the registry an operator lists and
//! acts on (the admin API, handler sessions), and the slots that cap how
//! many a listener, pipeline or tenant may have open.

mod registry;
mod slots;

pub use registry::{ConnInfo, Listed, Registry, node_of};
pub use slots::{Slot, Slots};
