//! Bindings generated from `wit/` by wit-bindgen, one module per world.
//!
//! Plugin authors rarely need these directly: the role traits and the
//! `export_*!` macros wrap them. `common` holds the types and host imports
//! that every world shares, so a `Message` is the same type in every role.

#![allow(missing_docs, unsafe_code, clippy::all)]

/// Shared types and host imports.
pub mod common {
    wit_bindgen::generate!({
        inline: "
            package sluice:sdk;
            world common {
                import sluice:plugin/types@0.1.0;
                import sluice:plugin/host@0.1.0;
            }
        ",
        path: "../wit",
        world: "sluice:sdk/common",
        generate_all,
    });
}

/// The `router` world: exports `lifecycle` and `router`.
pub mod router {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sluice:plugin/router",
        with: {
            "sluice:plugin/types@0.1.0": crate::bindings::common::sluice::plugin::types,
            "sluice:plugin/host@0.1.0": crate::bindings::common::sluice::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "__export_router_world",
        default_bindings_module: "sluice_sdk::bindings::router",
    });
}

/// The `authenticator` world: exports `lifecycle` and `authenticator`.
pub mod authenticator {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sluice:plugin/authenticator",
        with: {
            "sluice:plugin/types@0.1.0": crate::bindings::common::sluice::plugin::types,
            "sluice:plugin/host@0.1.0": crate::bindings::common::sluice::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "__export_authenticator_world",
        default_bindings_module: "sluice_sdk::bindings::authenticator",
    });
}

/// The `transformer` world: exports `lifecycle` and `transformer`.
pub mod transformer {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sluice:plugin/transformer",
        with: {
            "sluice:plugin/types@0.1.0": crate::bindings::common::sluice::plugin::types,
            "sluice:plugin/host@0.1.0": crate::bindings::common::sluice::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "__export_transformer_world",
        default_bindings_module: "sluice_sdk::bindings::transformer",
    });
}

/// The `handler` world: exports `lifecycle` and `handler`.
pub mod handler {
    wit_bindgen::generate!({
        path: "../wit",
        world: "sluice:plugin/handler",
        with: {
            "sluice:plugin/types@0.1.0": crate::bindings::common::sluice::plugin::types,
            "sluice:plugin/host@0.1.0": crate::bindings::common::sluice::plugin::host,
        },
        pub_export_macro: true,
        export_macro_name: "__export_handler_world",
        default_bindings_module: "sluice_sdk::bindings::handler",
    });
}
