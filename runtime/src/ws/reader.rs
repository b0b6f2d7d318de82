//! The reading side of a connection: control frames the protocol obliges
//! us to answer, whole client messages (reassembled here, under the
//! pipeline's size cap) checked against its policy and handed to its
//! handler or sink, and the closing handshake. A client that breaks the
//! protocol or the policy gets a close frame with the code that says why.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload, WebSocketError, WebSocketRead};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

use super::activity::Activity;
use super::deflate::MessageDecoder;
use super::frame_shim::FrameShim;
use super::traffic::Traffic;
use crate::config::{Accept, ConnectionPolicy, WhenExceeded};
use crate::plugin::{FrameKind, Message};
use crate::session::Sessions;
use crate::tenant::TenantState;
use sluice_protocol::violation::{self, Violation};

/// The read half of an upgraded connection, under the compression shim.
pub type ReadHalf = WebSocketRead<FrameShim<tokio::io::ReadHalf<TokioIo<Upgraded>>>>;

/// Where a connection's messages go.
pub enum Dispatch {
    /// Nowhere: the pipeline only delivers records.
    Drop,
    /// To the sink's task for this connection.
    Sink(mpsc::Sender<(bool, Bytes)>),
    /// To the pipeline's handler, as connection `id`.
    Handler(Arc<Sessions>, u64),
}

/// What the reader enforces.
pub struct Rules {
    /// Largest message, in bytes, across all its fragments.
    pub max_message_size: usize,
    /// Which kinds of message are taken.
    pub accept: Accept,
    /// Messages per connection, and what happens over the rate.
    pub rate: Option<(governor::DefaultDirectRateLimiter, WhenExceeded)>,
    /// The tenant, whose inbound rate every message also takes from.
    pub tenant: Arc<TenantState>,
}

impl Rules {
    /// The rules of a pipeline's policy, under its tenant's quotas.
    pub fn new(policy: &ConnectionPolicy, tenant: &Arc<TenantState>) -> Self {
        let rate = policy.message_rate.map(|rate| {
            let per_second =
                std::num::NonZeroU32::new(rate.per_second).unwrap_or(std::num::NonZeroU32::MIN);
            let burst = std::num::NonZeroU32::new(rate.burst).unwrap_or(std::num::NonZeroU32::MIN);
            let quota = governor::Quota::per_second(per_second).allow_burst(burst);
            (governor::RateLimiter::direct(quota), rate.when_exceeded)
        });
        Self {
            max_message_size: policy.max_message_size,
            accept: policy.accept,
            rate,
            tenant: tenant.clone(),
        }
    }
}

/// A message being reassembled from its fragments.
struct Partial {
    text: bool,
    data: Vec<u8>,
}

/// Set once this side has sent (or is about to send) a close frame: the
/// reader takes no more messages, answers no more pings, and only waits
/// for the peer's close.
#[derive(Debug, Default)]
pub struct Closing(AtomicBool);

impl Closing {
    /// From now on nothing more is taken.
    pub fn begin(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether a close has begun.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// How taking messages ended.
enum Ended {
    /// The peer closed, or is gone: nothing more will come.
    Done,
    /// Our close frame is on its way: the peer may still be sending.
    Closing,
}

/// Reads until the peer closes, fails or breaks a rule. Frames the
/// protocol obliges us to send (pong, the close echo) and our own close
/// frames go to the writer through `control`; on a close from the peer the
/// handler's `on-close` runs first, so its replies are queued before the
/// echo. Once a close of ours has begun, it reads on (dropping what comes)
/// until the peer's close or EOF: a socket dropped with unread data makes
/// the kernel answer with a reset, and the peer may lose our last replies
/// and the close frame itself.
pub async fn read_loop(
    mut read: ReadHalf,
    control: mpsc::Sender<Frame<'static>>,
    dispatch: Dispatch,
    rules: (Rules, MessageDecoder),
    shared: (Arc<Activity>, Arc<Traffic>, Arc<Closing>),
) {
    // `dispatch` goes with `take_messages`: a sink task sees its intake end
    // and can finish the replies a close waits for.
    if let Ended::Closing = take_messages(&mut read, &control, dispatch, rules, shared).await {
        discard_until_close(&mut read).await;
    }
}

/// Reads and drops frames until the peer's close frame, EOF or an error.
async fn discard_until_close(read: &mut ReadHalf) {
    let mut ignore = |_: Frame<'_>| async { Ok::<(), WebSocketError>(()) };
    while let Ok(frame) = read.read_frame(&mut ignore).await {
        if frame.opcode == OpCode::Close {
            return;
        }
    }
}

async fn take_messages(
    read: &mut ReadHalf,
    control: &mpsc::Sender<Frame<'static>>,
    dispatch: Dispatch,
    (rules, mut inflate): (Rules, MessageDecoder),
    (activity, traffic, closing): (Arc<Activity>, Arc<Traffic>, Arc<Closing>),
) -> Ended {
    // fastwebsockets hands us the close echo inside `read_frame`; it is
    // held here until `on-close` has run.
    let echo: Arc<Mutex<Option<Frame<'static>>>> = Arc::default();
    let mut partial: Option<Partial> = None;
    let close = |(code, reason): Violation| {
        let control = control.clone();
        traffic.info.metrics.error(error_type(code));
        closing.begin();
        async move {
            tracing::debug!(code, reason, "Closing a client that broke a rule.");
            let _ = control.send(Frame::close(code, reason.as_bytes())).await;
            Ended::Closing
        }
    };
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
        let frame = match result {
            Ok(frame) => frame,
            Err(error) => {
                tracing::debug!(%error, "Reading from a client failed.");
                return match (held, violation::of(&error)) {
                    // A close frame with a forbidden code gets 1002 back,
                    // with our own reason: the peer's could be too long for
                    // a control frame.
                    (Some(_), _) => close((1002, "invalid close frame")).await,
                    (None, Some(violation)) => close(violation).await,
                    (None, None) => Ended::Done,
                };
            }
        };
        activity.heard();
        if closing.is_set() {
            // Our close is on its way: this frame answers nothing, and a
            // close from the peer is the answer the writer waits for.
            return match frame.opcode {
                OpCode::Close => Ended::Done,
                _ => Ended::Closing,
            };
        }
        let message = match frame.opcode {
            // A close over 125 bytes (RFC 6455 §5.5) never gets here: the
            // frame shim refuses it with 1002 from its header.
            OpCode::Close => {
                let (code, reason) = close_code(&frame.payload);
                if let Dispatch::Handler(sessions, id) = &dispatch {
                    sessions.close(*id, code, &reason).await;
                }
                if let Some(echo) = held {
                    let _ = control.send(echo).await;
                }
                return Ended::Done;
            }
            OpCode::Ping => {
                traffic.control_received(true, &frame.payload);
                let pong = Frame::pong(Payload::Owned(frame.payload.to_vec()));
                if control.send(pong).await.is_err() {
                    return Ended::Done;
                }
                continue;
            }
            OpCode::Pong => {
                traffic.control_received(false, &frame.payload);
                continue;
            }
            OpCode::Text | OpCode::Binary => {
                if partial.is_some() {
                    return close((1002, "a new message began before the last one ended")).await;
                }
                let started = Partial {
                    text: frame.opcode == OpCode::Text,
                    data: frame.payload.to_vec(),
                };
                if frame.fin {
                    started
                } else {
                    partial = Some(started);
                    continue;
                }
            }
            OpCode::Continuation => {
                let Some(mut started) = partial.take() else {
                    return close((1002, "a continuation frame without a message")).await;
                };
                if started.data.len() + frame.payload.len() > rules.max_message_size {
                    return close((1009, "message too big")).await;
                }
                started.data.extend_from_slice(&frame.payload);
                if !frame.fin {
                    partial = Some(started);
                    continue;
                }
                started
            }
        };
        // Every message passes here, dropped or not: a compressed stream's
        // state depends on each one.
        let message = match inflate.message(message.text, message.data) {
            Ok((text, data)) => Partial { text, data },
            Err(error) => return close(error.close()).await,
        };
        // Text is UTF-8 here: the frame shim checked uncompressed text as
        // it arrived, and the decoder checked inflated text.
        activity.messaged();
        traffic.received(message.text, &message.data);
        let accepted = match rules.accept {
            Accept::Any => true,
            Accept::Text => message.text,
            Accept::Binary => !message.text,
            Accept::None => false,
        };
        if !accepted {
            return close((1003, "this endpoint does not take such messages")).await;
        }
        if let Some((limiter, when_exceeded)) = &rules.rate
            && limiter.check().is_err()
        {
            match when_exceeded {
                WhenExceeded::Drop => {
                    traffic.info.metrics.dropped("rate_limit", 1);
                    continue;
                }
                WhenExceeded::Close => return close((1008, "message rate exceeded")).await,
            }
        }
        // The tenant's rate, over all its connections: dropped, unless the
        // pipeline asked for a close when its own rate is exceeded (its
        // clients would rather know than lose messages silently).
        if !rules.tenant.admit_inbound() {
            match &rules.rate {
                Some((_, WhenExceeded::Close)) => {
                    return close((1008, "tenant message rate exceeded")).await;
                }
                _ => {
                    traffic.info.metrics.dropped("tenant_quota", 1);
                    continue;
                }
            }
        }
        match &dispatch {
            Dispatch::Drop => {}
            Dispatch::Sink(inbound) => {
                // The writer closes the intake when it starts a close:
                // this message was not taken, and gets no reply.
                if inbound
                    .send((message.text, Bytes::from(message.data)))
                    .await
                    .is_err()
                {
                    return Ended::Closing;
                }
            }
            Dispatch::Handler(sessions, id) => {
                let kind = if message.text {
                    FrameKind::Text
                } else {
                    FrameKind::Binary
                };
                let msg = Message {
                    kind,
                    payload: message.data,
                    key: None,
                    headers: Vec::new(),
                };
                sessions.message(*id, msg).await;
            }
        }
    }
}

/// The `ws_errors_total{type}` label of a close code we send.
fn error_type(code: u16) -> &'static str {
    match code {
        1002 => "protocol",
        1003 => "unsupported_data",
        1007 => "invalid_data",
        1008 => "rate_limit",
        1009 => "too_big",
        _ => "internal",
    }
}

/// The code and reason of a close frame (1005 when it carries none).
pub fn close_code(payload: &[u8]) -> (u16, String) {
    match payload {
        [a, b, reason @ ..] => (
            u16::from_be_bytes([*a, *b]),
            String::from_utf8_lossy(reason).into_owned(),
        ),
        _ => (1005, String::new()),
    }
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
