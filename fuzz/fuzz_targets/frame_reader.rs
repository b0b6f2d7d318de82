//! The read side as the server runs it: client bytes through the frame
//! shim into fastwebsockets (server role, no automatic replies).
//!
//! Input: a flags byte (bit 0: permessage-deflate agreed), a chunk size
//! byte, then the byte stream. Checks, besides "no panic, no hang":
//! - the frames, and the close code the server answers the stream's end
//!   with, are the same whether the bytes arrive in chunks of 1..=256 or
//!   all at once (which check fires first may differ; the answer may not);
//! - a stream whose first frame is unmasked yields no frame at all;
//! - every uncompressed text message that completes is valid UTF-8.
#![no_main]

use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, Waker};

use fastwebsockets::{OpCode, Role, WebSocket};
use libfuzzer_sys::fuzz_target;
use sluice_protocol::frame_shim::{FrameShim, Mark, Queue};
use sluice_protocol::violation;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Hands out the input at most `chunk` bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.chunk.min(self.data.len()).min(buf.remaining());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Poll::Ready(Ok(()))
    }
}

/// The shim for reading; writes go nowhere (nothing is answered here).
struct Io<'a>(FrameShim<Chunked<'a>>);

impl AsyncRead for Io<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Io<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// What the reader saw: each frame, then the close code the server
/// answers the end with (`None`: the stream just ended).
#[derive(Debug, PartialEq)]
enum Event {
    Frame {
        opcode: u8,
        fin: bool,
        payload: Vec<u8>,
        compressed: Option<bool>,
    },
    End(Option<u16>),
}

fn read_all(data: &[u8], chunk: usize, deflate: bool) -> Vec<Event> {
    let marks = deflate.then(Queue::<Mark>::default);
    // As the server sets them: the shim refuses frames over the limit,
    // fastwebsockets those of the limit plus one.
    let shim = FrameShim::new(Chunked { data, chunk }, marks.clone()).max_frame(64 * 1024);
    let mut ws = WebSocket::after_handshake(Io(shim), Role::Server);
    ws.set_auto_close(false);
    ws.set_auto_pong(false);
    ws.set_max_message_size(64 * 1024 + 1);
    let mut events = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        let result = match pin!(ws.read_frame()).poll(&mut cx) {
            Poll::Ready(result) => result,
            Poll::Pending => panic!("the reader waits on bytes it already has"),
        };
        match result {
            Ok(frame) => {
                let first = matches!(frame.opcode, OpCode::Text | OpCode::Binary);
                let compressed = match (&marks, first) {
                    (Some(marks), true) => {
                        Some(marks.pop().expect("a mark per message").compressed)
                    }
                    _ => None,
                };
                events.push(Event::Frame {
                    opcode: frame.opcode as u8,
                    fin: frame.fin,
                    payload: frame.payload.to_vec(),
                    compressed,
                });
            }
            Err(error) => {
                events.push(Event::End(violation::of(&error).map(|(code, _)| code)));
                return events;
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let [flags, chunk, stream @ ..] = input else {
        return;
    };
    let deflate = flags & 1 == 1;
    let chunked = read_all(stream, usize::from(*chunk) + 1, deflate);
    let whole = read_all(stream, usize::MAX, deflate);
    assert_eq!(chunked, whole, "the result depends on how the bytes arrive");

    if stream.len() >= 2 && stream[1] & 0x80 == 0 {
        assert!(
            !whole.iter().any(|e| matches!(e, Event::Frame { .. })),
            "an unmasked first frame was read: {whole:?}"
        );
    }

    // Text reassembled from its fragments (uncompressed only: compressed
    // text is checked once inflated, by the decoder).
    let mut text: Option<Vec<u8>> = None;
    for event in &whole {
        let Event::Frame {
            opcode,
            fin,
            payload,
            compressed,
        } = event
        else {
            continue;
        };
        match opcode {
            1 if *compressed != Some(true) => text = Some(payload.clone()),
            1 | 2 => text = None,
            0 => {
                if let Some(t) = text.as_mut() {
                    t.extend_from_slice(payload);
                }
            }
            _ => continue,
        }
        if *fin {
            if let Some(t) = text.take() {
                assert!(
                    std::str::from_utf8(&t).is_ok(),
                    "invalid UTF-8 text passed: {t:?}"
                );
            }
        }
    }
});
