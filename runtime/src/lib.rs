//! Sluice: Kafka streams to WebSocket clients, with routing, authentication
//! and transforms as sandboxed WebAssembly plugins.
//!
//! The host owns every socket, consumer and thread; plugins decide. See the
//! README for the architecture and `wit/` for the plugin contract.

pub mod admin;
pub mod builtin;
pub mod channel;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod hub;
pub mod kafka;
pub mod listen;
pub mod metrics;
pub mod pipeline;
pub mod plugin;
pub mod record;
pub mod recording;
pub mod resume;
pub mod server;
pub mod session;
pub mod tenant;
pub mod testing;
pub mod time;
pub mod ws;
