//! The reading side of a connection: control frames the protocol obliges
//! us to answer, client messages handed to the pipeline's handler or sink,
//! and the closing handshake.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Payload, WebSocketError};
use futures_util::StreamExt;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use crate::pipeline::{Inbound, Sender};
use crate::plugin::{FrameKind, Message};
use crate::session::Sessions;

/// The read half of an upgraded connection.
pub type ReadHalf = FragmentCollectorRead<tokio::io::ReadHalf<TokioIo<Upgraded>>>;

/// Client messages in flight per connection on a sink: produced
/// concurrently, ACKed in the order they were sent.
const IN_FLIGHT: usize = 256;

/// Where a connection's messages go.
pub enum Dispatch {
    /// Nowhere: the pipeline only delivers records.
    Drop,
    /// To the sink's task for this connection.
    Sink(mpsc::Sender<(bool, Bytes)>),
    /// To the pipeline's handler, as connection `id`.
    Handler(Arc<Sessions>, u64),
}

/// Reads until the peer closes or fails. Frames the protocol obliges us to
/// send (pong, the close echo) go to the writer through `control`; on a
/// close from the peer the handler's `on-close` runs first, so its replies
/// are queued before the echo.
pub async fn read_loop(
    mut read: ReadHalf,
    control: mpsc::Sender<Frame<'static>>,
    dispatch: Dispatch,
) {
    // fastwebsockets hands us the close echo inside `read_frame`; it is
    // held here until `on-close` has run.
    let echo: Arc<Mutex<Option<Frame<'static>>>> = Arc::default();
    loop {
        let (sender, held) = (control.clone(), echo.clone());
        let mut send = move |frame: Frame<'_>| {
            let owned = Frame::new(
                frame.fin,
                frame.opcode,
                None,
                Payload::Owned(frame.payload.to_vec()),
            );
            let (sender, held) = (sender.clone(), held.clone());
            async move {
                if owned.opcode == OpCode::Close {
                    *held.lock().unwrap_or_else(|e| e.into_inner()) = Some(owned);
                    return Ok(());
                }
                sender
                    .send(owned)
                    .await
                    .map_err(|_| WebSocketError::ConnectionClosed)
            }
        };
        let result = read.read_frame(&mut send).await;
        let held = echo.lock().unwrap_or_else(|e| e.into_inner()).take();
        match result {
            Ok(frame) if frame.opcode == OpCode::Close => {
                let (code, reason) = close_code(&frame.payload);
                if let Dispatch::Handler(sessions, id) = &dispatch {
                    sessions.close(*id, code, &reason).await;
                }
                if let Some(echo) = held {
                    let _ = control.send(echo).await;
                }
                return;
            }
            Ok(frame) if matches!(frame.opcode, OpCode::Text | OpCode::Binary) => {
                let text = frame.opcode == OpCode::Text;
                match &dispatch {
                    Dispatch::Drop => {}
                    Dispatch::Sink(inbound) => {
                        let payload = Bytes::copy_from_slice(&frame.payload);
                        if inbound.send((text, payload)).await.is_err() {
                            return;
                        }
                    }
                    Dispatch::Handler(sessions, id) => {
                        let kind = if text {
                            FrameKind::Text
                        } else {
                            FrameKind::Binary
                        };
                        let msg = Message {
                            kind,
                            payload: frame.payload.to_vec(),
                            key: None,
                            headers: Vec::new(),
                        };
                        sessions.message(*id, msg).await;
                    }
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "Reading from a client failed.");
                // A close frame with a forbidden code gets 1002 back.
                if let Some(echo) = held {
                    let _ = control.send(echo).await;
                }
                return;
            }
        }
    }
}

/// The code and reason of a close frame (1005 when it carries none).
fn close_code(payload: &[u8]) -> (u16, String) {
    match payload {
        [a, b, reason @ ..] => (
            u16::from_be_bytes([*a, *b]),
            String::from_utf8_lossy(reason).into_owned(),
        ),
        _ => (1005, String::new()),
    }
}

/// Starts the task that turns a connection's messages into sink replies.
pub fn spawn_sink(
    inbound: Arc<Inbound>,
    sender: Sender,
    replies: mpsc::Sender<Bytes>,
) -> (mpsc::Sender<(bool, Bytes)>, tokio::task::JoinHandle<()>) {
    let (messages, mut rx) = mpsc::channel::<(bool, Bytes)>(IN_FLIGHT);
    let task = tokio::spawn(async move {
        let incoming = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        // Transforms run concurrently but come out in order; each message is
        // then enqueued to Kafka in that order (`map` runs as items come out),
        // and the replies wait for the delivery reports, also in order.
        let prepare = {
            let (inbound, sender) = (inbound.clone(), sender.clone());
            move |(text, payload): (bool, Bytes)| {
                let (inbound, sender) = (inbound.clone(), sender.clone());
                async move { inbound.prepare(text, payload, &sender).await }
            }
        };
        let mut answered = incoming
            .map(prepare)
            .buffered(IN_FLIGHT)
            .map(move |prepared| inbound.enqueue(prepared, &sender))
            .buffered(IN_FLIGHT);
        while let Some(reply) = answered.next().await {
            let Some(reply) = reply else { continue };
            if replies.send(reply).await.is_err() {
                return;
            }
        }
    });
    (messages, task)
}

#[cfg(test)]
mod tests {
    use super::close_code;

    #[test]
    fn close_codes_are_read_from_the_payload() {
        assert_eq!(
            close_code(&[0x03, 0xe8, b'b', b'y', b'e']),
            (1000, "bye".into())
        );
        assert_eq!(close_code(&[]), (1005, String::new()));
    }
}
