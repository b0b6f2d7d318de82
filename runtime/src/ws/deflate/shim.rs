//! RSV1 under fastwebsockets, which rejects it on read: a byte-stream
//! adapter under the read half that follows the frame boundaries, moves the
//! bit from the wire to a queue, and leaves everything else untouched.
//! (Writes need no shim: the connection's writer sets RSV1 itself.)

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

const RSV1: u8 = 0x40;
const OPCODE: u8 = 0x0f;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
/// The longest frame header: 2 bytes, a 64-bit length, a mask key.
const MAX_HEADER: usize = 14;

/// A FIFO shared by the shim and the reader beside it (both run
/// in the same task, so the lock is never contended).
pub struct Queue<T>(Arc<Mutex<VecDeque<T>>>);

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T> Default for Queue<T> {
    fn default() -> Self {
        Self(Arc::default())
    }
}

impl<T> Queue<T> {
    /// Adds an entry at the back.
    pub fn push(&self, item: T) {
        self.lock().push_back(item);
    }

    /// Takes the oldest entry.
    pub fn pop(&self) -> Option<T> {
        self.lock().pop_front()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How a message arrived, recorded from its first frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    /// RSV1 was set: the payload is compressed.
    pub compressed: bool,
    /// The opcode was text (a compressed text message is handed upward as
    /// binary, since fastwebsockets checks text for UTF-8).
    pub text: bool,
}

/// Where a byte stream is relative to its frames.
#[derive(Clone, Copy, Default)]
struct Frames {
    head: [u8; MAX_HEADER],
    /// Header bytes of the current frame seen so far.
    have: usize,
    /// Payload bytes of the current frame still to come.
    left: u64,
    in_payload: bool,
}

impl Frames {
    /// The next byte is the first of a frame.
    fn at_start(&self) -> bool {
        self.have == 0 && !self.in_payload
    }

    /// Consumes `bytes` up to the end of the current frame (stopping there,
    /// so the caller sees each frame start); returns how many it took.
    fn advance(&mut self, bytes: &[u8]) -> usize {
        let mut used = 0;
        while used < bytes.len() {
            if self.in_payload {
                let take = self.left.min((bytes.len() - used) as u64);
                used += take as usize;
                self.left -= take;
                if self.left == 0 {
                    self.in_payload = false;
                    return used;
                }
                continue;
            }
            self.head[self.have] = bytes[used];
            self.have += 1;
            used += 1;
            if let Some(length) = self.payload_length() {
                self.have = 0;
                if length == 0 {
                    return used;
                }
                (self.left, self.in_payload) = (length, true);
            }
        }
        used
    }

    /// The payload length once the whole header is in.
    fn payload_length(&self) -> Option<u64> {
        if self.have < 2 {
            return None;
        }
        let (masked, code) = (self.head[1] & 0x80 != 0, self.head[1] & 0x7f);
        let extra = match code {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        if self.have < 2 + extra + if masked { 4 } else { 0 } {
            return None;
        }
        Some(match code {
            126 => u64::from(u16::from_be_bytes([self.head[2], self.head[3]])),
            127 => u64::from_be_bytes(self.head[2..10].try_into().unwrap_or_default()),
            code => u64::from(code),
        })
    }
}

/// Under fastwebsockets' read half: clears RSV1 on the first frame of each
/// data message and queues a [`Mark`] for every such message. RSV1 on a
/// continuation or control frame is left set, so fastwebsockets fails with
/// `ReservedBitsNotZero` (the reader answers 1002).
pub struct InflateMarkRead<R> {
    inner: R,
    /// `None`: compression was not agreed and bytes pass untouched.
    marks: Option<Queue<Mark>>,
    frames: Frames,
}

impl<R> InflateMarkRead<R> {
    /// Wraps `inner`, recording into `marks` (passing through if `None`).
    pub fn new(inner: R, marks: Option<Queue<Mark>>) -> Self {
        Self {
            inner,
            marks,
            frames: Frames::default(),
        }
    }
}

/// Rewrites the first header byte of an incoming frame.
fn mark_incoming(byte: &mut u8, marks: &Queue<Mark>) {
    let opcode = *byte & OPCODE;
    if opcode != TEXT && opcode != BINARY {
        return;
    }
    let compressed = *byte & RSV1 != 0;
    marks.push(Mark {
        compressed,
        text: opcode == TEXT,
    });
    if compressed {
        *byte = (*byte & !(RSV1 | OPCODE)) | BINARY;
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for InflateMarkRead<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let start = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Some(marks) = &this.marks {
            let fresh = &mut buf.filled_mut()[start..];
            let mut at = 0;
            while at < fresh.len() {
                if this.frames.at_start() {
                    mark_incoming(&mut fresh[at], marks);
                }
                at += this.frames.advance(&fresh[at..]);
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};

    use super::*;

    /// A frame as tungstenite formats it (payload bytes unmasked: the
    /// shims never look at them).
    fn frame(opcode: OpCode, fin: bool, rsv1: bool, masked: bool, len: usize) -> Vec<u8> {
        let header = FrameHeader {
            is_final: fin,
            rsv1,
            opcode,
            mask: masked.then_some([1, 2, 3, 4]),
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        header.format(len as u64, &mut out).unwrap();
        out.extend((0..len).map(|i| (i * 7) as u8 | RSV1));
        out
    }

    /// Hands out at most `step` bytes per read, and is not ready every
    /// other poll.
    struct Trickle {
        data: Vec<u8>,
        at: usize,
        step: usize,
        stall: bool,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            self.stall = !self.stall;
            if self.stall {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = self
                .step
                .min(self.data.len() - self.at)
                .min(buf.remaining());
            let at = self.at;
            buf.put_slice(&self.data[at..at + n]);
            self.at += n;
            Poll::Ready(Ok(()))
        }
    }

    const TEXT_OP: OpCode = OpCode::Data(Data::Text);
    const BINARY_OP: OpCode = OpCode::Data(Data::Binary);
    const CONTINUE: OpCode = OpCode::Data(Data::Continue);
    const PING: OpCode = OpCode::Control(Control::Ping);
    const CLOSE: OpCode = OpCode::Control(Control::Close);

    async fn read_through(data: Vec<u8>, step: usize, marks: Option<Queue<Mark>>) -> Vec<u8> {
        let trickle = Trickle {
            data,
            at: 0,
            step,
            stall: false,
        };
        let mut out = Vec::new();
        InflateMarkRead::new(trickle, marks)
            .read_to_end(&mut out)
            .await
            .unwrap();
        out
    }

    #[tokio::test]
    async fn reads_clear_rsv1_and_queue_marks_over_any_split() {
        // Client frames: masked; 7-, 16- and 64-bit lengths; a ping between
        // fragments.
        let frames = [
            frame(TEXT_OP, false, true, true, 3),
            frame(PING, true, false, true, 4),
            frame(CONTINUE, true, false, true, 200),
            frame(BINARY_OP, true, false, true, 0),
            frame(BINARY_OP, true, true, true, 70_000),
            frame(TEXT_OP, true, false, true, 5),
            frame(CLOSE, true, false, true, 2),
        ];
        let input = frames.concat();
        let mut expected = frames.clone();
        expected[0][0] = 0x02; // text with RSV1 -> binary, bit cleared
        expected[4][0] = 0x82;
        let expected = expected.concat();
        for step in [1, 2, 3, 5, 14, 64, 1 << 20] {
            let marks = Queue::default();
            let out = read_through(input.clone(), step, Some(marks.clone())).await;
            assert!(out == expected, "step {step}");
            let queued: Vec<_> = std::iter::from_fn(|| marks.pop()).collect();
            let mark = |compressed, text| Mark { compressed, text };
            assert_eq!(
                queued,
                [
                    mark(true, true),
                    mark(false, false),
                    mark(true, false),
                    mark(false, true)
                ],
                "step {step}"
            );
        }
    }

    #[tokio::test]
    async fn rsv1_off_message_starts_is_left_for_fastwebsockets_to_refuse() {
        let input = [
            frame(TEXT_OP, false, false, true, 3),
            frame(CONTINUE, true, true, true, 3),
            frame(PING, true, true, true, 1),
        ]
        .concat();
        let marks = Queue::default();
        assert_eq!(
            read_through(input.clone(), 1, Some(marks.clone())).await,
            input
        );
        assert_eq!(
            marks.pop(),
            Some(Mark {
                compressed: false,
                text: true
            })
        );
        assert_eq!(marks.pop(), None);
    }

    #[tokio::test]
    async fn without_marks_reads_pass_through() {
        let input = frame(TEXT_OP, true, true, true, 10);
        assert_eq!(read_through(input.clone(), 3, None).await, input);
    }
}
