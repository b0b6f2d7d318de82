//! permessage-deflate (RFC 7692) on top of fastwebsockets, which has none:
//! [`negotiate`] answers the client's offer, the shim under the read half
//! of the stream moves RSV1 from the wire to a queue (fastwebsockets
//! refuses the bit on read), [`MessageDecoder`] decompresses whole messages and
//! [`FrameEncoder`] encodes whole frames, compressed, RSV1 set, for the
//! connection's own writer (fastwebsockets' write half is not used).
//!
//! Wiring, per connection (a [`Session::off`] one when nothing was agreed,
//! so the types never change):
//!
//! ```text
//! ws::handle, once upgrade() has made `response`:
//!     let (extension, session) = match deflate::negotiate(request.headers(), &policy) {
//!         Some((value, session)) => (Some(value), session),
//!         None => (None, Session::off()),
//!     };
//!     // Some(value): insert `Sec-WebSocket-Extensions: value` into `response`;
//!     // hand `session` to connection::serve.
//! connection::serve:
//!     let (read, _) = ws.split(|stream| {
//!         let (read, write) = tokio::io::split(stream);
//!         // keep `write` for the writer
//!         (session.read_shim(read), tokio::io::sink())
//!     });
//!     let (inbound, outbound) = session.into_codecs(max_message_size);
//! reader, once a message is whole (`text` from its first frame's opcode):
//!     let (text, data) = inbound.message(text, data)?; // Err(e): close with e.close()
//! writer (ws::writer): every hub frame via outbound.encode(frame, &mut buf),
//!     replies via outbound.encode_message; control frames uncompressed.
//! ```

pub mod codec;
pub mod negotiate;

use fastwebsockets::OpCode;
use http::HeaderMap;

use crate::frame_shim::{FrameShim, Mark, Queue};
use crate::wire::{SharedFrame, frame_bytes, put_frame};
use codec::{Compressor, Decompressor};
use negotiate::Params;
pub use negotiate::Policy;

/// Why a compressed message could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum DeflateError {
    /// The message inflates past the connection's limit.
    #[error("decompressed message exceeds {limit} bytes")]
    TooLarge {
        /// The largest message accepted.
        limit: usize,
    },
    /// The payload is not valid DEFLATE data.
    #[error("invalid compressed data: {0}")]
    Corrupt(#[from] flate2::DecompressError),
    /// The inflater took no input and gave no output.
    #[error("compressed data made no progress")]
    Stalled,
    /// A compressed text message is not UTF-8 once inflated.
    #[error("compressed text message is not valid UTF-8")]
    InvalidUtf8,
    /// The compressor failed.
    #[error("compressing failed: {0}")]
    Compress(#[from] flate2::CompressError),
    /// The compressor's output lacked the sync-flush block.
    #[error("compressed data does not end with a sync flush")]
    Unflushed,
    /// A message came up without a mark: the read shim is not under the
    /// read half.
    #[error("no compression mark for a message")]
    Unmarked,
}

impl DeflateError {
    /// The close code and reason to fail the connection with (RFC 6455
    /// §7.4.1).
    pub fn close(&self) -> (u16, &'static str) {
        match self {
            Self::TooLarge { .. } => (1009, "message too big"),
            Self::Corrupt(_) | Self::Stalled => (1007, "invalid compressed data"),
            Self::InvalidUtf8 => (1007, "text message is not valid UTF-8"),
            Self::Compress(_) | Self::Unflushed | Self::Unmarked => (1011, "compression failed"),
        }
    }
}

/// Answers the client's `Sec-WebSocket-Extensions` offers: the response
/// header value and the connection's session, or `None` (no compression).
pub fn negotiate(headers: &HeaderMap, policy: &Policy) -> Option<(String, Session)> {
    let (response, params) = negotiate::choose(headers, policy)?;
    let session = Session {
        agreed: Some((params, policy.min_size)),
        read: Queue::default(),
    };
    Some((response, session))
}

/// One connection's compression: the shim for its read half, then the
/// codecs for its reader and writer.
pub struct Session {
    /// The agreed parameters and the smallest message worth compressing;
    /// `None`: nothing agreed, everything passes through.
    agreed: Option<(Params, usize)>,
    read: Queue<Mark>,
}

impl Session {
    /// No compression: the shims and codecs pass everything through.
    pub fn off() -> Self {
        Self {
            agreed: None,
            read: Queue::default(),
        }
    }

    /// The agreed parameters (`None` when off).
    pub fn params(&self) -> Option<&Params> {
        self.agreed.as_ref().map(|(params, _)| params)
    }

    /// Wraps the read half of the upgraded stream, under fastwebsockets.
    pub fn read_shim<R>(&self, read: R) -> FrameShim<R> {
        FrameShim::new(read, self.agreed.map(|_| self.read.clone()))
    }

    /// The reader's and the writer's codecs; `max_message` bounds a
    /// decompressed message.
    pub fn into_codecs(self, max_message: usize) -> (MessageDecoder, FrameEncoder) {
        let Some((params, min_size)) = self.agreed else {
            return (
                MessageDecoder { deflate: None },
                FrameEncoder { deflate: None },
            );
        };
        let inbound = Decompressor::new(!params.client_no_context_takeover, max_message);
        let outbound = Compressor::new(!params.server_no_context_takeover);
        (
            MessageDecoder {
                deflate: Some((self.read, inbound)),
            },
            FrameEncoder {
                deflate: Some((outbound, min_size)),
            },
        )
    }
}

/// The reader's side: turns each message fastwebsockets returns back into
/// what the client sent.
pub struct MessageDecoder {
    deflate: Option<(Queue<Mark>, Decompressor)>,
}

impl MessageDecoder {
    /// A whole message as the client sent it: (text, data), from the
    /// opcode of its first frame and all its payloads joined, as
    /// fastwebsockets delivered them. Call it exactly once per message, in
    /// order; data that was not compressed comes back as is.
    pub fn message(&mut self, text: bool, data: Vec<u8>) -> Result<(bool, Vec<u8>), DeflateError> {
        let Some((marks, decompressor)) = &mut self.deflate else {
            return Ok((text, data));
        };
        let mark = marks.pop().ok_or(DeflateError::Unmarked)?;
        if !mark.compressed {
            return Ok((text, data));
        }
        let message = decompressor.decompress(&data)?;
        // fastwebsockets saw binary and checked nothing.
        if mark.text && std::str::from_utf8(&message).is_err() {
            return Err(DeflateError::InvalidUtf8);
        }
        Ok((mark.text, message))
    }
}

/// The writer's side: encodes whole frames, compressing the messages worth
/// it (RSV1 set on their frames).
pub struct FrameEncoder {
    /// The compressor and the smallest message worth compressing.
    deflate: Option<(Compressor, usize)>,
}

impl FrameEncoder {
    /// Appends `frame` to `out` as one whole frame, compressed when agreed
    /// and at least the policy's `min_size` long. Its encoding is shared by
    /// every receiver: made once per record, and compressed once per record
    /// too when no context is taken over (the output then depends on the
    /// message alone). With context takeover it is compressed here, for
    /// this connection.
    pub fn encode(
        &mut self,
        frame: &impl SharedFrame,
        out: &mut Vec<u8>,
    ) -> Result<(), DeflateError> {
        let (opcode, payload) = (frame.opcode(), frame.payload());
        let encoded = match &mut self.deflate {
            Some((compressor, min_size)) if payload.len() >= *min_size => {
                if compressor.takes_over() {
                    let packed = compressor.compress(payload)?;
                    put_frame(out, true, opcode, &packed);
                    return Ok(());
                }
                frame.encoded(true, |payload| {
                    let packed = compressor.compress(payload)?;
                    Ok::<_, DeflateError>(frame_bytes(true, opcode, &packed))
                })?
            }
            _ => frame.encoded(false, |payload| {
                Ok::<_, DeflateError>(frame_bytes(false, opcode, payload))
            })?,
        };
        out.extend_from_slice(encoded);
        Ok(())
    }

    /// Appends a message only this connection sends (a reply), compressed
    /// under the same rule as [`FrameEncoder::encode`].
    pub fn encode_message(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), DeflateError> {
        match &mut self.deflate {
            Some((compressor, min_size)) if payload.len() >= *min_size => {
                let packed = compressor.compress(payload)?;
                put_frame(out, true, opcode, &packed);
            }
            _ => put_frame(out, false, opcode, payload),
        }
        Ok(())
    }
}
