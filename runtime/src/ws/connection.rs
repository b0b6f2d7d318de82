//! One upgraded WebSocket: a reader task (see [`super::reader`]) and a
//! writer that drains the connection's outbox (everything queued at once,
//! one write, one flush: see [`super::writer`]), pings the peer and times
//! it out, then the handler's `on-close` and the cleanup.

use std::sync::Arc;

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, WebSocket, WebSocketError};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::activity::Activity;
use super::chaos::{Lane, Outgoing, Released};
use super::deflate;
use super::handshake::{Admitted, Gate};
use super::reader::{Closing, Dispatch, Rules, close_code, read_loop};
use super::traffic::Traffic;
use super::writer::Writer;
use crate::config::ListenerLimits;
use crate::connections::ConnInfo;
use crate::hub::{Kind, Outbox, Taken};
use crate::pipeline::Sender;
use crate::plugin::Connection;

/// Subscribes a connection before its upgrade response is sent, so a record
/// published once the client sees `101` is never missed.
/// A client of the resume subprotocol gets where it stands first, or
/// what it missed (see [`crate::resume`]).
pub fn subscribe(admitted: &mut Admitted, id: u64) -> Arc<Outbox> {
    let from = admitted.resume.take();
    let endpoint = &admitted.endpoint;
    let outbox = Arc::new(Outbox::new(
        id,
        endpoint.outbox.capacity,
        endpoint.outbox.when_full,
    ));
    if endpoint.welcome {
        outbox.push(welcome(id));
    }
    let subscribe = || endpoint.hub.subscribe(&admitted.channel, &outbox);
    match endpoint.resume_for(admitted.subprotocol.as_deref()) {
        Some(resume) => resume.open(&outbox, &admitted.channel, from, subscribe),
        None => subscribe(),
    }
    outbox
}

/// Tells a resume client where it stands every `every`, until its
/// connection is gone: it then needs to read less when it comes back.
async fn checkpoints(
    outbox: std::sync::Weak<Outbox>,
    resume: Arc<crate::resume::Resume>,
    every: std::time::Duration,
) {
    let mut ticks = tokio::time::interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(outbox) = outbox.upgrade() else {
            return;
        };
        // Still recovering: where it stands comes with `recovered`.
        if outbox.is_held() {
            continue;
        }
        if outbox.push(resume.checkpoint_message(&outbox)) == crate::hub::Pushed::Closed {
            return;
        }
    }
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
        "timestamp": crate::time::now_rfc3339(),
    });
    crate::hub::Frame::new(Kind::Text, body.to_string())
}

/// Frame slots a writer keeps between batches (a burst's larger buffer is
/// given back).
const SPARE_FRAMES: usize = 64;

/// Replies to client messages (ACK/ERROR) waiting for the writer.
const REPLY_QUEUE: usize = 1024;
/// How long a close waits for the replies to messages already taken, and
/// then for the peer's answer to the close frame: together under the 5 s a
/// shutdown waits for connections to finish.
const REPLY_DRAIN: std::time::Duration = std::time::Duration::from_millis(3500);
const CLOSE_LINGER: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves one connection until either side closes, the peer stops
/// answering, or the server shuts down.
pub async fn serve(
    ws: WebSocket<TokioIo<Upgraded>>,
    (admitted, compression): (Admitted, deflate::Session),
    outbox: Arc<Outbox>,
    gate: &Gate,
    mut shutdown: watch::Receiver<bool>,
) {
    let Admitted {
        endpoint,
        channel,
        principal,
        path,
        params,
        peer,
        subprotocol,
        resume: _,
        slots: _slots,
    } = admitted;
    let id = outbox.id();
    let enveloped = endpoint.resume_for(subprotocol.as_deref()).cloned();
    if let Some(resume) = &enveloped
        && let Some(every) = resume.checkpoint()
    {
        tokio::spawn(checkpoints(Arc::downgrade(&outbox), resume.clone(), every));
    }
    tracing::debug!(conn = id, pipeline = %endpoint.pipeline, %channel, principal = ?principal.as_ref().map(|p| &p.id), "Client subscribed.");
    let _open = endpoint.metrics.opened();
    let info = Arc::new(ConnInfo::new(
        id,
        endpoint.metrics.clone(),
        path.clone(),
        principal.as_ref().map(|p| p.id.clone()),
        peer,
        outbox.clone(),
        &channel,
    ));
    let _listed = gate.registry.register(info.clone());
    let tape = endpoint.recorder.as_ref().map(|r| r.tape(id, &path));
    let traffic = Arc::new(Traffic::new(info.clone(), tape));

    let mut ws = ws;
    // One more than the cap: fastwebsockets refuses frames of exactly its
    // limit; the reader enforces the cap on whole messages.
    ws.set_max_message_size(endpoint.policy.max_message_size + 1);
    let max_frame = endpoint.policy.max_message_size as u64;
    ws.set_auto_close(true);
    // The reader answers pings itself, after checking the frame is masked
    // (fastwebsockets would answer an unmasked ping before we saw it).
    ws.set_auto_pong(false);
    // fastwebsockets reads; our writer writes (frames encoded once per
    // record, one write per drained batch), so fastwebsockets' own write
    // half gets a sink. The read shim sits right under fastwebsockets,
    // where frame boundaries are still visible; the writer sets RSV1 itself.
    let socket = std::cell::Cell::new(None);
    let (read, _unused_write) = ws.split(|stream| {
        let (read, write) = tokio::io::split(stream);
        socket.set(Some(write));
        let shim = compression.read_shim(read);
        (shim.max_frame(max_frame), tokio::io::sink())
    });
    let socket = socket.take().expect("split hands over the write half");
    let (inflate, outbound) = compression.into_codecs(endpoint.policy.max_message_size);
    let (control, mut control_rx) = mpsc::channel::<Frame<'static>>(8);
    // Replies to client messages (ACK/ERROR) are never dropped: the reader
    // waits when they back up, which slows a client that sends too fast.
    let (replies, mut replies_rx) = mpsc::channel::<Bytes>(REPLY_QUEUE);
    let (mut sink_task, mut stop_intake) = (None, None);
    let dispatch = if let Some(sessions) = &endpoint.sessions {
        // `on-open` runs before the first message is read, so the handler
        // always sees a connection open before anything else of it.
        let conn = Connection {
            id,
            path,
            params,
            principal: principal.clone(),
            remote_addr: peer.to_string(),
            subprotocol,
        };
        sessions.open(conn, info.clone()).await;
        Dispatch::Handler(sessions.clone(), id)
    } else if let Some(inbound) = endpoint.inbound.clone() {
        let sender = Sender {
            channel: channel.clone(),
            principal: principal.as_ref().map(|p| p.id.clone()),
        };
        let sink = super::inbound_task::spawn(inbound, sender, replies.clone());
        (sink_task, stop_intake) = (Some(sink.task), Some(sink.stop));
        Dispatch::Sink(sink.messages)
    } else {
        Dispatch::Drop
    };
    // Only the sink task sends replies: once it has ended (its messages
    // all answered), `replies_rx` says so, which closes wait for.
    drop(replies);
    let activity = Arc::new(Activity::new());
    let closing = Arc::new(Closing::default());
    // A close of ours: the reader takes nothing more and the sink task
    // nothing new, but answers what it took.
    let mut begin_close = || {
        closing.begin();
        drop(stop_intake.take());
    };
    let rules = Rules::new(&endpoint.policy, &endpoint.tenant_state);
    let mut reader = tokio::spawn(read_loop(
        read,
        control,
        dispatch,
        (rules, inflate),
        (activity.clone(), traffic.clone(), closing.clone()),
    ));

    let mut write = Writer::new(socket, outbound);
    if let Some(resume) = enveloped {
        write = write.enveloped(resume.signer().clone());
    }
    let mut timers = Timers::new(&gate.limits, &activity);
    timers.expiry = principal
        .as_ref()
        .zip(endpoint.policy.token_expiry_grace)
        .and_then(|(principal, grace)| expiry_ms(&principal.claims, grace, &activity));
    // How the connection ended, for a handler's `on-close` (1006: no close
    // frame was exchanged).
    let mut ended = (1006, String::from("connection lost"));
    // Swapped with the outbox's queue at each wakeup: no copy, no allocation.
    let mut frames = std::collections::VecDeque::new();
    // Between the outbox and the writer when the pipeline has chaos.
    let mut chaos = endpoint
        .chaos
        .clone()
        .map(|plan| Lane::new(plan, id, endpoint.metrics.chaos()));
    let outcome: Result<(), WebSocketError> = async {
        loop {
            // Frames the protocol obliges first: a pong answers a ping
            // that arrived before any message still in the outbox was
            // complete (Autobahn 5.20: pings between fragments).
            while let Ok(frame) = control_rx.try_recv() {
                if frame.opcode == OpCode::Close {
                    flush_lane(&mut write, &mut chaos, &traffic).await?;
                }
                if write_control(&mut write, frame, (&outbox, &mut replies_rx), &traffic, &mut ended).await? {
                    return Ok(());
                }
            }
            let taking = chaos.as_ref().is_none_or(Lane::has_room);
            match if taking { outbox.take_into(&mut frames) } else { Taken::Empty } {
                Taken::Frames(_) => {
                    if let Some(lane) = &mut chaos {
                        let now = Instant::now();
                        for frame in frames.drain(..) {
                            lane.admit(Outgoing::Frame(frame), now);
                        }
                    } else {
                        write_frames(&mut write, frames.iter(), &traffic).await?;
                        frames.clear();
                        activity.messaged();
                    }
                    if frames.capacity() > SPARE_FRAMES {
                        frames.shrink_to(SPARE_FRAMES);
                    }
                    continue;
                }
                Taken::Close(request) => {
                    begin_close();
                    flush_lane(&mut write, &mut chaos, &traffic).await?;
                    drain_replies(&mut write, &mut replies_rx, &traffic).await?;
                    ended = (request.code, request.reason.to_string());
                    write_close(&mut write, request.code, &request.reason).await?;
                    return Ok(());
                }
                Taken::Empty => {}
            }
            let mut lane_due = None;
            if let Some(lane) = &mut chaos {
                match lane.release(Instant::now()) {
                    Released::Messages(messages) => {
                        write_outgoing(&mut write, messages, &traffic).await?;
                        activity.messaged();
                        continue;
                    }
                    Released::Disconnect => {
                        // As a network failure would: no close frame.
                        ended = (1006, "chaos: connection dropped".into());
                        tracing::debug!(conn = id, "Chaos dropped the connection.");
                        return Ok(());
                    }
                    Released::Nothing => lane_due = lane.due(Instant::now()),
                }
            }
            let wake = [timers.next_wake(), lane_due].into_iter().flatten().min();
            tokio::select! {
                () = outbox.wait(), if taking => {}
                Some(reply) = replies_rx.recv() => {
                    if let Some(lane) = &mut chaos {
                        lane.admit(Outgoing::Reply(reply), Instant::now());
                        continue;
                    }
                    write.message(OpCode::Text, &reply)?;
                    write.flush().await?;
                    traffic.sent(true, &reply);
                    activity.messaged();
                }
                frame = control_rx.recv() => match frame {
                    Some(frame) => {
                        if frame.opcode == OpCode::Close {
                            flush_lane(&mut write, &mut chaos, &traffic).await?;
                        }
                        if write_control(&mut write, frame, (&outbox, &mut replies_rx), &traffic, &mut ended).await? {
                            return Ok(());
                        }
                    }
                    // The reader ended: the peer is gone.
                    None => return Ok(()),
                },
                () = tokio::time::sleep_until(wake.unwrap_or_else(far_future)), if wake.is_some() => {
                    match timers.fire(&activity) {
                        Due::Nothing => {}
                        Due::Ping(payload) => {
                            traffic.control_sent(true, &payload);
                            write.control(OpCode::Ping, &payload);
                            write.flush().await?;
                        }
                        Due::Dead => {
                            // Nobody is reading: no close frame, just let go.
                            ended = (1006, "no answer to ping".into());
                            endpoint.metrics.error("ping_timeout");
                            tracing::debug!(conn = id, "Peer did not answer a ping; dropping it.");
                            return Ok(());
                        }
                        Due::Idle => {
                            begin_close();
                            ended = (1000, "idle timeout".into());
                            write_close(&mut write, 1000, "idle timeout").await?;
                            return Ok(());
                        }
                        Due::Expired => {
                            begin_close();
                            flush_lane(&mut write, &mut chaos, &traffic).await?;
                            drain_replies(&mut write, &mut replies_rx, &traffic).await?;
                            ended = (1008, "token expired".into());
                            endpoint.metrics.error("token_expired");
                            write_close(&mut write, 1008, "token expired").await?;
                            return Ok(());
                        }
                    }
                }
                _ = shutdown.changed() => {
                    // No more messages are taken; those taken get their
                    // replies before the close (a client must know what
                    // was produced, or it sends it again).
                    begin_close();
                    flush_lane(&mut write, &mut chaos, &traffic).await?;
                    drain_replies(&mut write, &mut replies_rx, &traffic).await?;
                    let (code, reason) = gate.limits.on_shutdown.close();
                    ended = (code, reason.into());
                    write_close(&mut write, code, reason).await?;
                    return Ok(());
                }
            }
        }
    }
    .await;
    endpoint.hub.unsubscribe(&channel, id);
    // Our close frame is out: end our side, and let the reader drain the
    // peer's until its close, so the socket is not dropped with unread data
    // (the kernel would reset it, and the peer could lose what we sent last).
    let lingered = outcome.is_ok() && closing.is_set() && {
        write.finish().await;
        tokio::time::timeout(CLOSE_LINGER, &mut reader)
            .await
            .is_ok()
    };
    if !lingered {
        reader.abort();
        let _ = (&mut reader).await;
    }
    if let Some(task) = sink_task {
        task.abort();
    }
    // Runs only if the reader did not already (a close from the peer).
    if let Some(sessions) = &endpoint.sessions {
        sessions.close(id, ended.0, &ended.1).await;
    }
    match outcome {
        Ok(()) => tracing::debug!(conn = id, code = ended.0, "Connection closed."),
        Err(error) => tracing::debug!(conn = id, %error, "Connection ended with an error."),
    }
}

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86_400)
}

/// What the writer's timers ask for.
enum Due {
    Nothing,
    /// Send a ping with this payload.
    Ping(Vec<u8>),
    /// The peer did not answer the last ping in time.
    Dead,
    /// No message went either way for the idle timeout.
    Idle,
    /// The token that admitted the connection expired (grace included).
    Expired,
}

/// The heartbeat and idle deadlines of one connection, in milliseconds
/// since it opened.
struct Timers {
    ping_interval: Option<u64>,
    ping_timeout: u64,
    idle_timeout: Option<u64>,
    /// When the next ping goes out.
    next_ping: Option<u64>,
    /// When the oldest unanswered ping went out.
    awaiting: Option<u64>,
    /// When the connection counts as idle, unless a message goes by first.
    idle_at: Option<u64>,
    /// When the token that admitted it runs out, grace included.
    expiry: Option<u64>,
    opened: Instant,
}

impl Timers {
    fn new(limits: &ListenerLimits, activity: &Activity) -> Self {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        let ping_interval = limits.ping_interval.map(ms);
        let idle_timeout = limits.idle_timeout.map(ms);
        Self {
            ping_interval,
            ping_timeout: ms(limits.ping_timeout),
            idle_timeout,
            next_ping: ping_interval,
            awaiting: None,
            idle_at: idle_timeout,
            expiry: None,
            opened: activity.at(0),
        }
    }

    /// The earliest deadline, if any.
    fn next_wake(&self) -> Option<Instant> {
        let ping_deadline = self.awaiting.map(|sent| sent + self.ping_timeout);
        [self.next_ping, ping_deadline, self.idle_at, self.expiry]
            .into_iter()
            .flatten()
            .min()
            .map(|ms| self.opened + std::time::Duration::from_millis(ms))
    }

    /// What is due now.
    fn fire(&mut self, activity: &Activity) -> Due {
        let now = activity.now_ms();
        if self.expiry.is_some_and(|at| now >= at) {
            return Due::Expired;
        }
        if let Some(sent) = self.awaiting {
            if activity.heard_at_ms() >= sent {
                self.awaiting = None;
            } else if now >= sent + self.ping_timeout {
                return Due::Dead;
            }
        }
        if let Some(idle) = self.idle_timeout {
            let idle_at = activity.messaged_at_ms() + idle;
            if now >= idle_at {
                return Due::Idle;
            }
            self.idle_at = Some(idle_at);
        }
        if let (Some(at), Some(interval)) = (self.next_ping, self.ping_interval)
            && now >= at
        {
            self.next_ping = Some(now + interval);
            self.awaiting.get_or_insert(now);
            return Due::Ping(now.to_be_bytes().to_vec());
        }
        Due::Nothing
    }
}

/// When (ms since the connection opened) a principal with these claims
/// stops being admitted: its `exp` (seconds since the Unix epoch) plus
/// `grace`; `None` without a numeric `exp`.
fn expiry_ms(claims: &str, grace: std::time::Duration, activity: &Activity) -> Option<u64> {
    let claims: serde_json::Value = serde_json::from_str(claims).ok()?;
    let exp = claims.get("exp")?.as_f64()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let left_ms = ((exp - now) * 1000.0).max(0.0) as u64 + grace.as_millis() as u64;
    Some(activity.now_ms() + left_ms)
}

/// Encodes frames into the buffer, then writes and flushes once.
async fn write_frames<'a, S: AsyncWrite + Unpin>(
    write: &mut Writer<S>,
    frames: impl Iterator<Item = &'a crate::hub::Frame>,
    traffic: &Traffic,
) -> Result<(), WebSocketError> {
    for frame in frames {
        traffic.sent(frame.kind == Kind::Text, &frame.payload);
        write.data(frame)?;
    }
    write.flush().await
}

/// Before a close: what the chaos lane still holds goes out (delays cut
/// short), so chaos loses only what it drew to lose.
async fn flush_lane<S: AsyncWrite + Unpin>(
    write: &mut Writer<S>,
    chaos: &mut Option<Lane>,
    traffic: &Traffic,
) -> Result<(), WebSocketError> {
    match chaos {
        Some(lane) => write_outgoing(write, lane.drain(), traffic).await,
        None => Ok(()),
    }
}

/// Writes messages the chaos lane let out, with one flush.
async fn write_outgoing<S: AsyncWrite + Unpin>(
    write: &mut Writer<S>,
    messages: Vec<Outgoing>,
    traffic: &Traffic,
) -> Result<(), WebSocketError> {
    for message in &messages {
        match message {
            Outgoing::Frame(frame) => {
                traffic.sent(frame.kind == Kind::Text, &frame.payload);
                write.data(frame)?;
            }
            Outgoing::Reply(reply) => {
                traffic.sent(true, reply);
                write.message(OpCode::Text, reply)?;
            }
        }
    }
    write.flush().await
}

/// Writes a frame the reader asked for (a pong, the echo of the peer's
/// close, or our own close); `true` when it was a close. What `on-close`
/// queued goes out before a close.
async fn write_control<S: AsyncWrite + Unpin>(
    write: &mut Writer<S>,
    frame: Frame<'static>,
    (outbox, replies): (&Outbox, &mut mpsc::Receiver<Bytes>),
    traffic: &Traffic,
    ended: &mut (u16, String),
) -> Result<bool, WebSocketError> {
    let closing = frame.opcode == OpCode::Close;
    if closing {
        // The reader sends a close as it ends, so every message it took is
        // with the sink task: their replies first.
        drain_replies(write, replies, traffic).await?;
        *ended = close_code(&frame.payload);
        if let Taken::Frames(frames) = outbox.take() {
            write_frames(write, frames.iter(), traffic).await?;
        }
    }
    if frame.opcode == OpCode::Pong {
        traffic.control_sent(false, &frame.payload);
    }
    write.control(frame.opcode, &frame.payload);
    write.flush().await?;
    Ok(closing)
}

/// Writes the replies to every message the sink task took, until it ends
/// (at most [`REPLY_DRAIN`]: a broker that does not answer does not hold
/// a close forever). Without a sink there are none and it returns at once.
async fn drain_replies<S: AsyncWrite + Unpin>(
    write: &mut Writer<S>,
    replies: &mut mpsc::Receiver<Bytes>,
    traffic: &Traffic,
) -> Result<(), WebSocketError> {
    let deadline = Instant::now() + REPLY_DRAIN;
    while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, replies.recv()).await {
        write.message(OpCode::Text, &reply)?;
        traffic.sent(true, &reply);
    }
    write.flush().await
}

/// Sends a close frame (code, then reason) and flushes.
async fn write_close<S: AsyncWrite + Unpin>(
    write: &mut Writer<S>,
    code: u16,
    reason: &str,
) -> Result<(), WebSocketError> {
    let mut payload = Vec::with_capacity(2 + reason.len());
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(reason.as_bytes());
    write.control(OpCode::Close, &payload);
    write.flush().await
}
