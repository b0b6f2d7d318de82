//! A byte-stream adapter under fastwebsockets' read half that follows the
//! frame boundaries as bytes arrive, for rules fastwebsockets does not
//! keep (or keeps too late):
//!
//! - RFC 6455 §5.1: a server MUST close on an unmasked client frame.
//!   fastwebsockets reads such frames (and hides whether they were
//!   masked), so the shim ends the stream at the first unmasked frame's
//!   header with [`Refused::Unmasked`]: none of its bytes reach
//!   fastwebsockets, and the reader answers 1002.
//! - RFC 6455 §8.1: text that is not UTF-8 fails the connection as soon
//!   as it is known to be invalid. fastwebsockets checks whole final
//!   frames only; the shim checks uncompressed text byte by byte
//!   ([`TextCheck`]) and ends the stream with [`Refused::InvalidUtf8`]
//!   at the frame that breaks it (the reader answers 1007).
//! - permessage-deflate's RSV1, which fastwebsockets refuses on read: the
//!   bit moves from the wire to a queue of [`Mark`]s (when compression was
//!   agreed), and everything else is left untouched. Writes need no shim:
//!   the connection's writer sets RSV1 itself.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, ReadBuf};

use crate::header::{BINARY, FIN, OPCODE, RSV1, RSV2, RSV3, TEXT};
use crate::text_check::TextCheck;

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

/// Why the shim ended the stream (the inner error of its `io::Error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A client frame without the mask bit.
    #[error("a client frame is not masked (RFC 6455 §5.1)")]
    Unmasked,
    /// Text that cannot be UTF-8 whatever follows.
    #[error("a text message is not valid UTF-8")]
    InvalidUtf8,
    /// A frame longer than the largest message taken (refused from its
    /// header, before any of its payload is read).
    #[error("a frame is longer than the largest message taken")]
    TooLarge,
    /// A header §5.2 forbids: a reserved bit not agreed, an unknown opcode,
    /// a fragmented control frame or one over 125 bytes, a length not in
    /// its shortest form (or with the 64-bit form's top bit set).
    #[error("a frame header breaks RFC 6455 §5.2")]
    BadHeader,
}

impl Refused {
    /// The refusal `error` carries, if it is one of the shim's.
    pub fn of(error: &io::Error) -> Option<Refused> {
        error.get_ref()?.downcast_ref::<Refused>().copied()
    }

    fn error(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
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

    /// The current frame's second header byte is in and has no mask bit.
    fn unmasked(&self) -> bool {
        !self.in_payload && self.have >= 2 && self.head[1] & 0x80 == 0
    }

    /// Whether the header last completed is one §5.2 and §5.5 forbid:
    /// reserved bits set (RSV1 was already cleared where compression
    /// allows it), an unknown opcode, a fragmented or long control frame,
    /// a length not in its shortest form. fastwebsockets refuses most of
    /// these too, but only once it has the header, which may be after the
    /// shim has judged the payload: checked here, the close code never
    /// depends on how the bytes arrived (found by `cargo fuzz`).
    fn bad_header(&self, length: u64) -> bool {
        let opcode = self.head[0] & OPCODE;
        let control = opcode >= 8;
        let reserved = self.head[0] & (RSV1 | RSV2 | RSV3) != 0;
        let unknown = !matches!(opcode, 0..=2 | 8..=10);
        let fragmented_control = control && self.head[0] & FIN == 0;
        let not_shortest = match self.head[1] & 0x7f {
            126 => length < 126,
            127 => length <= 0xffff || length >> 63 != 0,
            _ => false,
        };
        reserved || unknown || fragmented_control || not_shortest || (control && length > 125)
    }

    /// The masking key of the frame whose header was last completed.
    fn mask(&self) -> [u8; 4] {
        let at = match self.head[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        };
        self.head[at..at + 4].try_into().unwrap_or_default()
    }

    /// Consumes `bytes` up to the end of the current frame's header or
    /// payload (stopping there, so the caller sees each frame start and
    /// each payload apart, and right after an unmasked header's second
    /// byte); returns how many it took.
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
            if self.unmasked() {
                return used;
            }
            if let Some(length) = self.payload_length() {
                self.have = 0;
                (self.left, self.in_payload) = (length, length > 0);
                return used;
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

/// Under fastwebsockets' read half: fails the stream at an unmasked frame,
/// a header §5.2 forbids or invalid text; with compression, clears RSV1 on
/// the first frame of each data message and queues a [`Mark`] for every
/// such message. RSV1 anywhere else (a continuation or control frame, or
/// any frame without compression) is a bad header.
pub struct FrameShim<R> {
    inner: R,
    /// `None`: compression was not agreed, and RSV1 is never allowed.
    marks: Option<Queue<Mark>>,
    frames: Frames,
    text: TextCheck,
    /// Set once a rule is broken: every read from now on fails.
    refused: Option<Refused>,
    /// The longest frame payload taken.
    max_frame: u64,
}

impl<R> FrameShim<R> {
    /// Wraps `inner`, recording into `marks` (no marks if `None`).
    pub fn new(inner: R, marks: Option<Queue<Mark>>) -> Self {
        Self {
            inner,
            marks,
            frames: Frames::default(),
            text: TextCheck::default(),
            refused: None,
            max_frame: u64::MAX,
        }
    }

    /// Refuses frames whose payload is longer than `bytes` (a message's
    /// limit: no frame of a message may be longer) as soon as their header
    /// is in, with [`Refused::TooLarge`].
    pub fn max_frame(mut self, bytes: u64) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Follows `bytes`, fresh from the socket, through the frames (marking
    /// them when compression is on); on a broken rule, returns it with how
    /// many of the bytes come before the frame that broke it.
    fn follow(&mut self, bytes: &mut [u8]) -> Option<(Refused, usize)> {
        let mut at = 0;
        // Where the frame being parsed began in these bytes (0: earlier).
        let mut frame_start = 0;
        while at < bytes.len() {
            if self.frames.at_start() {
                frame_start = at;
                self.text.frame_start(bytes[at]);
                if let Some(marks) = &self.marks {
                    mark_incoming(&mut bytes[at], marks);
                }
            }
            let in_payload = self.frames.in_payload;
            let used = self.frames.advance(&bytes[at..]);
            if in_payload && !self.text.payload(&bytes[at..at + used]) {
                return Some((Refused::InvalidUtf8, frame_start));
            }
            at += used;
            if self.frames.unmasked() {
                return Some((Refused::Unmasked, frame_start));
            }
            let header_done = !in_payload && self.frames.have == 0;
            if header_done {
                if self.frames.bad_header(self.frames.left) {
                    return Some((Refused::BadHeader, frame_start));
                }
                if self.frames.left > self.max_frame {
                    return Some((Refused::TooLarge, frame_start));
                }
                self.text.header(self.frames.mask());
            }
            if (in_payload || header_done) && self.frames.at_start() && !self.text.frame_end() {
                return Some((Refused::InvalidUtf8, frame_start));
            }
        }
        None
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

impl<R: AsyncRead + Unpin> AsyncRead for FrameShim<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(refused) = this.refused {
            return Poll::Ready(Err(refused.error()));
        }
        let start = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Some((refused, before)) = this.follow(&mut buf.filled_mut()[start..]) {
            // Hand over what came before the frame that broke the rule; the
            // next read fails. Nothing new to hand over: fail now (an empty
            // read would look like the end of the stream).
            this.refused = Some(refused);
            buf.set_filled(start + before);
            if before == 0 {
                return Poll::Ready(Err(refused.error()));
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;
    use tungstenite::protocol::frame::FrameHeader;
    use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

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
        FrameShim::new(trickle, marks)
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
    async fn rsv1_off_message_starts_is_a_bad_header() {
        let first = frame(TEXT_OP, false, false, true, 3);
        for bad in [
            frame(CONTINUE, true, true, true, 3),
            frame(PING, true, true, true, 1),
        ] {
            for step in [1, 64] {
                let marks = Queue::default();
                let input = [first.clone(), bad.clone()].concat();
                let (out, refused) = read_until_error(input, step, Some(marks.clone())).await;
                assert_eq!(refused, Some(Refused::BadHeader), "step {step}");
                // A trickle may have handed over part of the bad header,
                // never all of it.
                assert!(
                    out.starts_with(&first) && out.len() < first.len() + 6,
                    "{out:?}"
                );
                let text = Mark {
                    compressed: false,
                    text: true,
                };
                assert_eq!((marks.pop(), marks.pop()), (Some(text), None));
            }
        }
    }

    /// What a read through the shim gives before it fails, if it fails.
    async fn read_until_error(
        data: Vec<u8>,
        step: usize,
        marks: Option<Queue<Mark>>,
    ) -> (Vec<u8>, Option<Refused>) {
        let trickle = Trickle {
            data,
            at: 0,
            step,
            stall: false,
        };
        let mut shim = FrameShim::new(trickle, marks);
        let mut out = Vec::new();
        let mut chunk = [0; 64];
        loop {
            match shim.read(&mut chunk).await {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&chunk[..n]),
                Err(error) => return (out, Some(Refused::of(&error).expect("a refusal"))),
            }
        }
    }

    #[tokio::test]
    async fn the_stream_ends_at_the_first_unmasked_frame() {
        let good = [
            frame(TEXT_OP, true, false, true, 3),
            frame(BINARY_OP, true, false, true, 130),
        ]
        .concat();
        for unmasked in [
            frame(TEXT_OP, true, false, false, 3),
            frame(PING, true, false, false, 0),
            frame(CLOSE, true, false, false, 2),
        ] {
            let input = [good.clone(), unmasked, frame(TEXT_OP, true, false, true, 1)].concat();
            for step in [1, 2, 3, 7, 64, 1 << 20] {
                let (out, refused) = read_until_error(input.clone(), step, None).await;
                // A read may stop inside the unmasked frame's first byte.
                assert!(
                    out.len() == good.len() || out.len() == good.len() + 1,
                    "step {step}"
                );
                assert_eq!(out[..good.len()], good[..], "step {step}");
                assert_eq!(refused, Some(Refused::Unmasked), "step {step}");
            }
        }
        let (out, refused) = read_until_error(good.clone(), 5, None).await;
        assert_eq!((out, refused), (good, None));
    }

    /// A masked frame with this first byte and payload (mask 1, 2, 3, 4).
    fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut out = vec![first, 0x80 | payload.len() as u8];
        out.extend(mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[tokio::test]
    async fn invalid_text_ends_the_stream_at_the_frame_that_breaks_it() {
        let before = [
            masked_frame(0x81, b"fine"),
            masked_frame(0x01, "κό".as_bytes()),
        ]
        .concat();
        let input = [
            before.clone(),
            masked_frame(0x80, &[0xce, 0xf4, 0x90]),
            masked_frame(0x80, b"never read"),
        ]
        .concat();
        for step in [1, 3, 64] {
            let (out, refused) = read_until_error(input.clone(), step, None).await;
            assert_eq!(refused, Some(Refused::InvalidUtf8), "step {step}");
            // Reads may hand over the bad frame's bytes up to the one
            // that breaks it, never past it.
            assert_eq!(out[..before.len()], before[..], "step {step}");
            assert!(out.len() <= before.len() + 6 + 2, "step {step}");
        }
        let binary = masked_frame(0x82, &[0xff, 0xfe]);
        assert_eq!(
            read_until_error(binary.clone(), 1, None).await,
            (binary, None)
        );
    }

    #[tokio::test]
    async fn headers_that_break_section_5_2_end_the_stream() {
        // 5 bytes in the 16-bit form; a 126-byte ping; a 64-bit length
        // with its top bit set; RSV2, RSV3, RSV1 without compression; an
        // unknown opcode; a ping without FIN.
        let long_form = vec![0x82, 0x80 | 126, 0, 5, 1, 2, 3, 4, 0, 0, 0, 0, 0];
        let mut big_ping = vec![0x89, 0x80 | 126, 0, 126, 1, 2, 3, 4];
        big_ping.extend([0; 126]);
        let mut top_bit = vec![0x82, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 1];
        top_bit.extend([1, 2, 3, 4]);
        let small = |first: u8| masked_frame(first, b"x");
        let others = [0xa2, 0x92, 0xc2, 0x83, 0x8b, 0x09].map(small);
        for bad in [long_form, big_ping, top_bit].into_iter().chain(others) {
            let (out, refused) = read_until_error(bad.clone(), 64, None).await;
            assert_eq!(
                (out.len(), refused),
                (0, Some(Refused::BadHeader)),
                "{bad:?}"
            );
        }
    }

    #[tokio::test]
    async fn frames_over_the_limit_are_refused_at_their_header() {
        // Found by `cargo fuzz`: refused only by fastwebsockets, a huge
        // text frame got 1009 or 1007 depending on how its bytes arrived.
        let fits = masked_frame(0x82, &[0; 10]);
        let over = masked_frame(0x81, &[0xff; 11]);
        let trickle = |data: Vec<u8>| Trickle {
            data,
            at: 0,
            step: 64,
            stall: false,
        };
        let mut out = Vec::new();
        let mut shim = FrameShim::new(trickle([fits.clone(), over].concat()), None).max_frame(10);
        let error = shim.read_to_end(&mut out).await.unwrap_err();
        assert_eq!((Refused::of(&error), out), (Some(Refused::TooLarge), fits));
    }

    #[tokio::test]
    async fn without_marks_reads_pass_through() {
        let input = frame(TEXT_OP, true, false, true, 10);
        assert_eq!(read_through(input.clone(), 3, None).await, input);
    }
}
