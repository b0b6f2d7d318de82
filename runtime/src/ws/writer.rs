//! A connection's outgoing side: frames are encoded into one buffer and
//! sent with one write and one flush per wakeup. Data frames come
//! pre-encoded from the hub (shared by every receiver of a record); this
//! replaces fastwebsockets' write half, which would copy and format each
//! frame again for every connection.

use std::sync::Arc;

use fastwebsockets::{OpCode, WebSocketError};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::hub::{Frame, Kind};
use crate::resume::{Signer, envelope, now_ms};

use super::deflate::{DeflateError, FrameEncoder};
use super::wire::put_frame;

/// Bytes of buffer a writer keeps between wakeups (a burst's larger buffer
/// is given back).
const SPARE_BUFFER: usize = 16 * 1024;

/// Encodes frames and writes them to the socket's write half.
pub struct Writer<W> {
    io: W,
    buf: Vec<u8>,
    outbound: FrameEncoder,
    /// Every message goes in a resume envelope signed by this.
    envelope: Option<Arc<Signer>>,
}

impl<W: AsyncWrite + Unpin> Writer<W> {
    /// A writer over `io`, compressing as `outbound` agreed.
    pub fn new(io: W, outbound: FrameEncoder) -> Self {
        Self {
            io,
            buf: Vec::new(),
            outbound,
            envelope: None,
        }
    }

    /// Puts every message in a resume envelope (`crate::resume::envelope`).
    pub fn enveloped(mut self, signer: Arc<Signer>) -> Self {
        self.envelope = Some(signer);
        self
    }

    /// Queues a message from the outbox. Its envelope, like its encoding,
    /// is made once and shared by every receiver.
    pub fn data(&mut self, frame: &Frame) -> Result<(), WebSocketError> {
        let frame = match &self.envelope {
            Some(signer) => frame.enveloped(|f| envelope::wrap(f, signer, now_ms())),
            None => frame,
        };
        self.outbound.encode(frame, &mut self.buf).map_err(failed)
    }

    /// Queues a message of this connection's own (a reply).
    pub fn message(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), WebSocketError> {
        if let Some(signer) = &self.envelope {
            let kind = if opcode == OpCode::Binary {
                Kind::Binary
            } else {
                Kind::Text
            };
            let frame = envelope::wrap(&Frame::new(kind, payload.to_vec()), signer, now_ms());
            return self.outbound.encode(&frame, &mut self.buf).map_err(failed);
        }
        self.outbound
            .encode_message(opcode, payload, &mut self.buf)
            .map_err(failed)
    }

    /// Queues a control frame (ping, pong, close): never compressed.
    pub fn control(&mut self, opcode: OpCode, payload: &[u8]) {
        put_frame(&mut self.buf, false, opcode, payload);
    }

    /// Sends everything queued with one write, and flushes.
    pub async fn flush(&mut self) -> Result<(), WebSocketError> {
        if !self.buf.is_empty() {
            self.io.write_all(&self.buf).await?;
            self.buf.clear();
            if self.buf.capacity() > SPARE_BUFFER {
                self.buf.shrink_to(SPARE_BUFFER);
            }
        }
        self.io.flush().await?;
        Ok(())
    }

    /// Ends our side of the stream (TCP FIN, or TLS close_notify): nothing
    /// is written after the close frame.
    pub async fn finish(&mut self) {
        let _ = self.io.shutdown().await;
    }
}

fn failed(error: DeflateError) -> WebSocketError {
    WebSocketError::IoError(std::io::Error::other(error))
}
