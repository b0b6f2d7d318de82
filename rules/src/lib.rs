//! # sluice-rules: one copy of the first-party plugins' logic
//!
//! The rules that both sides of the plugin boundary must apply the same
//! way. The WebAssembly plugins in `plugins/` compile this crate to
//! `wasm32-wasip2`, and the host links it for its checks and for its
//! built-in `native:` plugins, so a `native:` built-in and its Wasm twin
//! run the same code rather than two copies kept equal by a test.
//!
//! - [`channel`]: what a channel name may be, and how many one record may
//!   go to.
//! - [`http`]: the header names and status of a challenge, and HTTP Basic
//!   credentials.
//! - [`basic_auth`]: the `basic-auth` plugin's account table and decisions.
//! - [`key_router`]: the `key-router` plugin's key templates.
//!
//! Nothing here knows about WIT, wasmtime or the SDK: each side converts
//! the results into its own types (a few lines each).

pub mod basic_auth;
pub mod channel;
pub mod http;
pub mod key_router;
