//! One upgraded WebSocket: a reader task (see [`super::reader`]) and a
//! writer that drains the connection's outbox (everything queued at once,
//! one flush), then the handler's `on-close` and the cleanup.

use std::sync::Arc;

use bytes::Bytes;
use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Payload, WebSocket, WebSocketError};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncWrite, BufWriter};
use tokio::sync::{mpsc, watch};

use super::handshake::Admitted;
use super::reader::{Dispatch, read_loop, spawn_sink};
use crate::hub::{Kind, Outbox, Taken};
use crate::pipeline::Sender;
use crate::plugin::Connection;

/// Largest message a client may send (records flow the other way; this
/// bounds what a misbehaving client can make us buffer).
const MAX_INBOUND: usize = 64 * 1024;

/// Bytes gathered before a write reaches the socket (a batch is flushed as
/// soon as it is written, whatever its size).
const WRITE_BUFFER: usize = 16 * 1024;

/// Subscribes a connection before its upgrade response is sent, so a record
/// published once the client sees `101` is never missed.
pub fn subscribe(admitted: &Admitted, id: u64) -> Arc<Outbox> {
    let outbox = Arc::new(Outbox::new(
        id,
        admitted.endpoint.outbox.capacity,
        admitted.endpoint.outbox.when_full,
    ));
    if admitted.endpoint.welcome {
        outbox.push(welcome(id));
    }
    admitted.endpoint.hub.subscribe(&admitted.channel, &outbox);
    outbox
}

/// Seed 002's greeting, with an id unique across processes: this process's
/// start nonce and the connection's number.
fn welcome(id: u64) -> crate::hub::Frame {
    static NONCE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let nonce = NONCE.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        (now.as_nanos() as u64) ^ (u64::from(std::process::id()) << 32)
    });
    let body = serde_json::json!({
        "messageType": "SYSTEM",
        "content": "welcome",
        "clientId": format!("{nonce:016x}-{id}"),
        "timestamp": crate::pipeline::now_rfc3339(),
    });
    crate::hub::Frame {
        kind: Kind::Text,
        payload: Bytes::from(body.to_string()),
    }
}

/// Replies to client messages (ACK/ERROR) waiting for the writer.
const REPLY_QUEUE: usize = 1024;

/// Serves one connection until either side closes or the server shuts down.
pub async fn serve(
    ws: WebSocket<TokioIo<Upgraded>>,
    admitted: Admitted,
    outbox: Arc<Outbox>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Admitted {
        endpoint,
        channel,
        principal,
        path,
        params,
        peer,
    } = admitted;
    let id = outbox.id();
    tracing::debug!(conn = id, pipeline = %endpoint.pipeline, %channel, principal = ?principal.as_ref().map(|p| &p.id), "Client subscribed.");

    let mut ws = ws;
    ws.set_max_message_size(MAX_INBOUND);
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    // Frames are written into a buffer and flushed once per drained batch:
    // one syscall for everything queued, not one per message.
    let (read, write) = ws.split(|stream| {
        let (read, write) = tokio::io::split(stream);
        (read, BufWriter::with_capacity(WRITE_BUFFER, write))
    });
    let (control, mut control_rx) = mpsc::channel::<Frame<'static>>(8);
    // Replies to client messages (ACK/ERROR) are never dropped: the reader
    // waits when they back up, which slows a client that sends too fast.
    let (replies, mut replies_rx) = mpsc::channel::<Bytes>(REPLY_QUEUE);
    let mut sink_task = None;
    let dispatch = if let Some(sessions) = &endpoint.sessions {
        // `on-open` runs before the first message is read, so the handler
        // always sees a connection open before anything else of it.
        let conn = Connection {
            id,
            path,
            params,
            principal: principal.clone(),
            remote_addr: peer.to_string(),
            subprotocol: None,
        };
        sessions.open(conn, outbox.clone()).await;
        Dispatch::Handler(sessions.clone(), id)
    } else if let Some(inbound) = endpoint.inbound.clone() {
        let sender = Sender {
            channel: channel.clone(),
            principal: principal.as_ref().map(|p| p.id.clone()),
        };
        let (messages, task) = spawn_sink(inbound, sender, replies);
        sink_task = Some(task);
        Dispatch::Sink(messages)
    } else {
        Dispatch::Drop
    };
    let mut reader = tokio::spawn(read_loop(
        FragmentCollectorRead::new(read),
        control,
        dispatch,
    ));

    let mut write = write;
    write.set_writev(false);
    // How the connection ended, for a handler's `on-close` (1006: no close
    // frame was exchanged).
    let mut ended = (1006, String::from("connection lost"));
    let outcome: Result<(), WebSocketError> = async {
        loop {
            match outbox.take() {
                Taken::Frames(frames) => {
                    write_frames(&mut write, &frames).await?;
                    continue;
                }
                Taken::Close(request) => {
                    ended = (request.code, request.reason.to_string());
                    write
                        .write_frame(Frame::close(request.code, request.reason.as_bytes()))
                        .await?;
                    write.flush().await?;
                    return Ok(());
                }
                Taken::Empty => {}
            }
            tokio::select! {
                () = outbox.wait() => {}
                Some(reply) = replies_rx.recv() => {
                    write.write_frame(Frame::text(Payload::Borrowed(&reply))).await?;
                    write.flush().await?;
                }
                frame = control_rx.recv() => match frame {
                    Some(frame) => {
                        let closing = frame.opcode == OpCode::Close;
                        if closing {
                            // What `on-close` queued goes out before the echo.
                            if let Taken::Frames(frames) = outbox.take() {
                                write_frames(&mut write, &frames).await?;
                            }
                        }
                        write.write_frame(frame).await?;
                        write.flush().await?;
                        if closing {
                            return Ok(());
                        }
                    }
                    // The reader ended: the peer is gone.
                    None => return Ok(()),
                },
                _ = shutdown.changed() => {
                    ended = (1001, "server shutting down".into());
                    write.write_frame(Frame::close(1001, b"server shutting down")).await?;
                    write.flush().await?;
                    return Ok(());
                }
            }
        }
    }
    .await;
    endpoint.hub.unsubscribe(&channel, id);
    reader.abort();
    let _ = (&mut reader).await;
    if let Some(task) = sink_task {
        task.abort();
    }
    // Runs only if the reader did not already (a close from the peer).
    if let Some(sessions) = &endpoint.sessions {
        sessions.close(id, ended.0, &ended.1).await;
    }
    match outcome {
        Ok(()) => tracing::debug!(conn = id, "Connection closed."),
        Err(error) => tracing::debug!(conn = id, %error, "Connection ended with an error."),
    }
}

/// Writes frames into the buffer and flushes once.
async fn write_frames<S: AsyncWrite + Unpin>(
    write: &mut fastwebsockets::WebSocketWrite<S>,
    frames: &[crate::hub::Frame],
) -> Result<(), WebSocketError> {
    for frame in frames {
        let opcode = match frame.kind {
            Kind::Text => OpCode::Text,
            Kind::Binary => OpCode::Binary,
        };
        write
            .write_frame(Frame::new(
                true,
                opcode,
                None,
                Payload::Borrowed(&frame.payload),
            ))
            .await?;
    }
    write.flush().await
}
