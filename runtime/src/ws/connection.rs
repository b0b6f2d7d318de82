//! One upgraded WebSocket: a reader task answering control frames, and a
//! writer that drains the connection's outbox (everything queued at once,
//! one flush).

use std::sync::Arc;

use fastwebsockets::{FragmentCollectorRead, Frame, OpCode, Payload, WebSocket, WebSocketError};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::BufWriter;
use tokio::sync::{mpsc, watch};

use super::handshake::Admitted;
use crate::hub::{Kind, Outbox, Taken};
use crate::pipeline::{Inbound, Sender};
use bytes::Bytes;
use futures_util::StreamExt;

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
    let inbound = endpoint.inbound.clone().map(|inbound| {
        let sender = Sender {
            channel: channel.clone(),
            principal: principal.as_ref().map(|p| p.id.clone()),
        };
        spawn_inbound(inbound, sender, replies)
    });
    let mut reader = tokio::spawn(read_loop(
        FragmentCollectorRead::new(read),
        control,
        inbound.as_ref().map(|(messages, _)| messages.clone()),
    ));

    let mut write = write;
    write.set_writev(false);
    let outcome: Result<(), WebSocketError> = async {
        loop {
            match outbox.take() {
                Taken::Frames(frames) => {
                    for frame in &frames {
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
                    write.flush().await?;
                    continue;
                }
                Taken::Close(request) => {
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
    if let Some((_, task)) = inbound {
        task.abort();
    }
    match outcome {
        Ok(()) => tracing::debug!(conn = id, "Connection closed."),
        Err(error) => tracing::debug!(conn = id, %error, "Connection ended with an error."),
    }
}

/// Reads until the peer closes; control frames the protocol obliges us to
/// answer (pong, the close echo) go to the writer.
/// Client messages in flight per connection: produced concurrently, ACKed
/// in the order they were sent.
const IN_FLIGHT: usize = 256;

/// Replies waiting for the writer.
const REPLY_QUEUE: usize = 1024;

/// Starts the task that turns a connection's messages into replies.
fn spawn_inbound(
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
            if replies.send(reply).await.is_err() {
                return;
            }
        }
    });
    (messages, task)
}

async fn read_loop(
    mut read: FragmentCollectorRead<tokio::io::ReadHalf<TokioIo<Upgraded>>>,
    control: mpsc::Sender<Frame<'static>>,
    inbound: Option<mpsc::Sender<(bool, Bytes)>>,
) {
    loop {
        let sender = control.clone();
        let mut send = move |frame: Frame<'_>| {
            let owned = Frame::new(
                frame.fin,
                frame.opcode,
                None,
                Payload::Owned(frame.payload.to_vec()),
            );
            let sender = sender.clone();
            async move {
                sender
                    .send(owned)
                    .await
                    .map_err(|_| WebSocketError::ConnectionClosed)
            }
        };
        match read.read_frame(&mut send).await {
            Ok(frame) if frame.opcode == OpCode::Close => return,
            Ok(frame) if matches!(frame.opcode, OpCode::Text | OpCode::Binary) => {
                // Without a sink, client messages have nowhere to go.
                if let Some(inbound) = &inbound {
                    let text = frame.opcode == OpCode::Text;
                    let payload = Bytes::copy_from_slice(&frame.payload);
                    if inbound.send((text, payload)).await.is_err() {
                        return;
                    }
                }
            }
            Ok(_) => {}
            Err(error) => {
                tracing::debug!(%error, "Reading from a client failed.");
                return;
            }
        }
    }
}
