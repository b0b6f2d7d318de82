//! permessage-deflate (RFC 7692) on top of fastwebsockets, which has none:
//! [`negotiate`] answers the client's offer, the shims under each half of
//! the stream move RSV1 between the wire and two queues (fastwebsockets
//! refuses the bit on read and cannot set it on write), and [`Inbound`] /
//! [`Outbound`] decompress and compress whole messages.
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
//!     let (read, write) = ws.split(|stream| {
//!         let (read, write) = tokio::io::split(stream);
//!         (session.read_shim(read),
//!          session.write_shim(BufWriter::with_capacity(WRITE_BUFFER, write)))
//!     });
//!     let (inbound, outbound) = session.into_codecs(max_message_size);
//! reader, once a message is whole (`text` from its first frame's opcode):
//!     let (text, data) = inbound.message(text, data)?; // Err(e): close with e.close()
//! writer: every text/binary message via outbound.write(&mut write, opcode, payload);
//!     control frames are written directly, as before.
//! ```

mod codec;
mod negotiate;
mod shim;
#[cfg(test)]
mod tests;

use fastwebsockets::{Frame, OpCode, Payload, WebSocketError, WebSocketWrite};
use hyper::HeaderMap;
use tokio::io::AsyncWrite;

use codec::{Compressor, Decompressor};
use negotiate::Params;
pub use negotiate::Policy;
pub use shim::{DeflateMarkWrite, InflateMarkRead};
use shim::{Mark, Queue};

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
        write: Queue::default(),
    };
    Some((response, session))
}

/// One connection's compression: the shims for its stream halves, then
/// the codecs for its reader and writer.
pub struct Session {
    /// The agreed parameters and the smallest message worth compressing;
    /// `None`: nothing agreed, everything passes through.
    agreed: Option<(Params, usize)>,
    read: Queue<Mark>,
    write: Queue<bool>,
}

impl Session {
    /// No compression: the shims and codecs pass everything through.
    pub fn off() -> Self {
        Self {
            agreed: None,
            read: Queue::default(),
            write: Queue::default(),
        }
    }

    /// The agreed parameters (`None` when off).
    #[cfg(test)]
    pub fn params(&self) -> Option<&Params> {
        self.agreed.as_ref().map(|(params, _)| params)
    }

    /// Wraps the read half of the upgraded stream, under fastwebsockets.
    pub fn read_shim<R>(&self, read: R) -> InflateMarkRead<R> {
        InflateMarkRead::new(read, self.agreed.map(|_| self.read.clone()))
    }

    /// Wraps the write half, under fastwebsockets and above any buffer.
    pub fn write_shim<W>(&self, write: W) -> DeflateMarkWrite<W> {
        DeflateMarkWrite::new(write, self.agreed.map(|_| self.write.clone()))
    }

    /// The reader's and the writer's codecs; `max_message` bounds a
    /// decompressed message.
    pub fn into_codecs(self, max_message: usize) -> (Inbound, Outbound) {
        let Some((params, min_size)) = self.agreed else {
            return (Inbound { deflate: None }, Outbound { deflate: None });
        };
        let inbound = Decompressor::new(!params.client_no_context_takeover, max_message);
        let outbound = Compressor::new(!params.server_no_context_takeover);
        (
            Inbound {
                deflate: Some((self.read, inbound)),
            },
            Outbound {
                deflate: Some((self.write, outbound, min_size)),
            },
        )
    }
}

/// The reader's side: turns each message fastwebsockets returns back into
/// what the client sent.
pub struct Inbound {
    deflate: Option<(Queue<Mark>, Decompressor)>,
}

impl Inbound {
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

/// The writer's side: compresses messages worth it and tells the write
/// shim which frames carry RSV1.
pub struct Outbound {
    deflate: Option<(Queue<bool>, Compressor, usize)>,
}

impl Outbound {
    /// Writes one text or binary message as a single frame, compressed when
    /// agreed and at least the policy's `min_size` long. Every data frame
    /// written through a shimmed half should go through here (a frame
    /// written directly goes uncompressed, which is fine, as long as the
    /// shim sits above any buffer).
    pub async fn write<S: AsyncWrite + Unpin>(
        &mut self,
        write: &mut WebSocketWrite<S>,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), WebSocketError> {
        let frame = match &mut self.deflate {
            Some((marks, compressor, min_size)) if payload.len() >= *min_size => {
                let packed = compressor
                    .compress(payload)
                    .map_err(|error| WebSocketError::IoError(std::io::Error::other(error)))?;
                marks.push(true);
                Frame::new(true, opcode, None, Payload::Owned(packed))
            }
            Some((marks, ..)) => {
                marks.push(false);
                Frame::new(true, opcode, None, Payload::Borrowed(payload))
            }
            None => Frame::new(true, opcode, None, Payload::Borrowed(payload)),
        };
        write.write_frame(frame).await
    }
}
