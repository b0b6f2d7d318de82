//! Server frames as bytes (RFC 6455 §5.2: never masked), so the writer can
//! send a record's frame encoded once for all its receivers instead of
//! formatting it again for every connection.

use bytes::Bytes;
use fastwebsockets::OpCode;

use crate::header::{FIN, RSV1};

/// Appends one whole (FIN) frame: its header, then `payload`; `rsv1` marks
/// a compressed message.
pub fn put_frame(out: &mut Vec<u8>, rsv1: bool, opcode: OpCode, payload: &[u8]) {
    let first = FIN | if rsv1 { RSV1 } else { 0 } | opcode as u8;
    let len = payload.len();
    out.reserve(len + 10);
    out.push(first);
    if len < 126 {
        out.push(len as u8);
    } else if len < 65536 {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

/// A message sent to many connections, whose wire encodings are made once
/// and shared by all of them (see [`crate::deflate::FrameEncoder::encode`]).
pub trait SharedFrame {
    /// Text or binary.
    fn opcode(&self) -> OpCode;
    /// The message as sent.
    fn payload(&self) -> &[u8];
    /// Its whole frame, plain or `deflated` (RSV1, compressed without
    /// context takeover: the same bytes for every connection), made by
    /// `encode` from the payload the first time any connection asks.
    fn encoded<E>(
        &self,
        deflated: bool,
        encode: impl FnOnce(&[u8]) -> Result<Bytes, E>,
    ) -> Result<&Bytes, E>;
}

/// One whole frame as shareable bytes.
pub fn frame_bytes(rsv1: bool, opcode: OpCode, payload: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(payload.len() + 10);
    put_frame(&mut out, rsv1, opcode, payload);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_use_the_shortest_length_form() {
        assert_eq!(&frame_bytes(false, OpCode::Text, b"hi")[..], b"\x81\x02hi");
        assert_eq!(&frame_bytes(true, OpCode::Binary, b"")[..], b"\xc2\x00");
        let mid = frame_bytes(false, OpCode::Binary, &[7; 126]);
        assert_eq!(&mid[..4], b"\x82\x7e\x00\x7e");
        assert_eq!(mid.len(), 4 + 126);
        let big = frame_bytes(false, OpCode::Text, &[b'a'; 65536]);
        assert_eq!(&big[..10], b"\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00");
        assert_eq!(big.len(), 10 + 65536);
        let mut close = Vec::new();
        put_frame(&mut close, false, OpCode::Close, b"\x03\xe8bye");
        assert_eq!(close, b"\x88\x05\x03\xe8bye");
    }
}
