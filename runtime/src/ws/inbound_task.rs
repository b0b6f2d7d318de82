//! A connection's task on a pipeline with a sink (and no handler): feeds
//! its messages through the pipeline's [`InboundPath`] to Kafka and
//! sends the replies (ACK/ERROR) back, in order.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use crate::pipeline::{InboundPath, Sender};

/// Client messages in flight per connection: produced concurrently, ACKed
/// in the order they were sent.
const IN_FLIGHT: usize = 256;

/// A running sink task.
pub struct SinkTask {
    /// Where the reader sends `(is_text, payload)`.
    pub messages: mpsc::Sender<(bool, Bytes)>,
    /// Sent (or dropped) to stop taking messages: those already queued are
    /// still produced and answered, later sends fail.
    pub stop: oneshot::Sender<()>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Starts the task; replies come out of `replies`, which closes once every
/// message taken is answered.
pub fn spawn(inbound: Arc<InboundPath>, sender: Sender, replies: mpsc::Sender<Bytes>) -> SinkTask {
    let (messages, mut rx) = mpsc::channel::<(bool, Bytes)>(IN_FLIGHT);
    let (stop, mut stopped) = oneshot::channel::<()>();
    let mut taking = true;
    let task = tokio::spawn(async move {
        let incoming = futures_util::stream::poll_fn(move |cx| {
            if taking && std::pin::Pin::new(&mut stopped).poll(cx).is_ready() {
                taking = false;
                rx.close();
            }
            rx.poll_recv(cx)
        });
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
    SinkTask {
        messages,
        stop,
        task,
    }
}
