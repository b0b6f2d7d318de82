//! # sluice-protocol: the WebSocket rules Sluice keeps itself
//!
//! fastwebsockets parses frames and hyper parses HTTP; what they leave to
//! the server (or keep too late for RFC 6455's MUSTs) lives here, apart
//! from the engine, Kafka and the server, so it can be tested and fuzzed
//! alone (`fuzz/`).
//!
//! - [`request_form`]: an upgrade request's form (method, version, Host,
//!   key, version header, Origin count, path segments), checked before any
//!   route or authenticator sees it.
//! - [`frame_shim`]: an `AsyncRead` under fastwebsockets' read half that
//!   follows frame boundaries as bytes arrive: unmasked frames, bad
//!   headers and invalid UTF-8 end the stream at once, and RSV1 moves to a
//!   queue for [`deflate`].
//! - [`header`]: the bits of a frame's first byte.
//! - [`text_check`]: UTF-8 checked byte by byte across fragments.
//! - [`violation`]: the close code a broken frame earns.
//! - [`wire`]: server frames as bytes, encoded once for many receivers.
//! - [`deflate`]: permessage-deflate (RFC 7692): negotiation and the
//!   per-message codecs.

pub mod deflate;
pub mod frame_shim;
pub mod header;
pub mod request_form;
pub mod text_check;
pub mod violation;
pub mod wire;
