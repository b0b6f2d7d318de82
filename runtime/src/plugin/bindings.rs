//! The one place the host generates bindings from `wit/`.
//!
//! A host-side view world imports what every plugin may import and exports
//! all four role interfaces; each loaded plugin then looks up only the
//! interface of its own role (`GuestIndices`), so one set of generated types
//! serves every world.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    inline: "
        package sluice:host-view;
        world host-view {
            import sluice:plugin/host@0.1.0;
            import sluice:plugin/presence@0.1.0;
            export sluice:plugin/auth@0.1.0;
            export sluice:plugin/routing@0.1.0;
            export sluice:plugin/transform@0.1.0;
            export sluice:plugin/session@0.1.0;
        }
    ",
    path: "../wit",
    world: "sluice:host-view/host-view",
    imports: { default: trappable },
    with: {
        "sluice:plugin/types.record-batch": crate::plugin::state::RecordBatch,
    },
});

pub use exports::sluice::plugin::{auth, routing, session, transform};
pub use sluice::plugin::{host, presence, types};
