//! The bits of a frame's first header byte (RFC 6455 §5.2), shared by the
//! shim that reads client frames, the UTF-8 check beside it, and the
//! writer's encoding.

/// The final fragment of a message.
pub const FIN: u8 = 0x80;
/// Reserved; permessage-deflate's "compressed" bit on a message's first frame.
pub const RSV1: u8 = 0x40;
/// Reserved, never agreed here.
pub const RSV2: u8 = 0x20;
/// Reserved, never agreed here.
pub const RSV3: u8 = 0x10;
/// The opcode's four bits.
pub const OPCODE: u8 = 0x0f;
/// The opcode of a message's later fragments.
pub const CONTINUATION: u8 = 0x0;
/// The opcode of a text message's first frame.
pub const TEXT: u8 = 0x1;
/// The opcode of a binary message's first frame.
pub const BINARY: u8 = 0x2;
