//! WebSocket clients: the handshake, and opening many at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fastwebsockets::{Frame, Payload, WebSocket, WebSocketError, WebSocketRead, WebSocketWrite};
use http_body_util::Empty;
use hyper::Request;
use hyper::header::{AUTHORIZATION, CONNECTION, HOST, UPGRADE};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::args::Target;
use crate::stats::{Percentiles, histogram};

/// An open client connection.
pub type Socket = WebSocket<TokioIo<Upgraded>>;

/// The stream under a [`Socket`], for `Socket::split`.
pub type Stream = TokioIo<Upgraded>;

/// The write half of a split socket, shared by a writer and the reader
/// (which answers pings through it).
pub type Writer = Arc<tokio::sync::Mutex<WebSocketWrite<WriteHalf<Stream>>>>;

/// The next frame from the read half of a split socket; what the protocol
/// obliges the client to send back (a pong, the close echo) goes out
/// through `writer`.
pub async fn read_split<'f>(
    read: &'f mut WebSocketRead<ReadHalf<Stream>>,
    writer: &Writer,
) -> Result<Frame<'f>, WebSocketError> {
    let mut obliged = |frame: Frame<'_>| {
        let owned = Frame::new(
            frame.fin,
            frame.opcode,
            None,
            Payload::Owned(frame.payload.to_vec()),
        );
        let writer = writer.clone();
        async move { writer.lock().await.write_frame(owned).await }
    };
    read.read_frame::<_, WebSocketError>(&mut obliged).await
}

/// Runs hyper's connection futures on tokio.
#[derive(Clone, Copy)]
struct SpawnExecutor;

impl<F> hyper::rt::Executor<F> for SpawnExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(future);
    }
}

/// Connects to `target` for `channel` and completes the handshake.
pub async fn connect(
    target: &Target,
    channel: &str,
    authorization: Option<&str>,
) -> Result<Socket, String> {
    let stream = TcpStream::connect(&target.authority)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = stream.set_nodelay(true);
    handshake(stream, target, channel, authorization).await
}

/// The WebSocket handshake for `channel` on a connected `stream`.
pub async fn handshake(
    stream: TcpStream,
    target: &Target,
    channel: &str,
    authorization: Option<&str>,
) -> Result<Socket, String> {
    let mut request = Request::builder()
        .method("GET")
        .uri(target.path(channel))
        .header(HOST, &target.authority)
        .header(UPGRADE, "websocket")
        .header(CONNECTION, "upgrade")
        .header(
            "Sec-WebSocket-Key",
            fastwebsockets::handshake::generate_key(),
        )
        .header("Sec-WebSocket-Version", "13");
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    match fastwebsockets::handshake::client(&SpawnExecutor, request, stream).await {
        Ok((socket, _)) => Ok(socket),
        Err(WebSocketError::InvalidStatusCode(status)) => Err(format!("HTTP {status}")),
        Err(error) => Err(format!("handshake: {error}")),
    }
}

/// How opening the clients went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ConnectReport {
    /// Clients asked for.
    pub attempted: usize,
    /// Clients whose handshake succeeded.
    pub connected: usize,
    /// Clients that failed.
    pub failed: usize,
    /// Failures by reason.
    pub errors: BTreeMap<String, usize>,
    /// Seconds from the first attempt to the last result.
    pub seconds: f64,
    /// TCP connect + handshake time per client, microseconds.
    pub handshake_us: Percentiles,
}

/// Opens one client per entry of `channels` (a channel name per client),
/// at most `concurrency` handshakes at once; the sockets come back in the
/// same order, `None` for a client that failed.
pub async fn connect_all(
    target: &Target,
    channels: &[String],
    authorization: Option<String>,
    concurrency: usize,
    timeout: Duration,
) -> (Vec<Option<Socket>>, ConnectReport) {
    let started = Instant::now();
    let permits = Arc::new(Semaphore::new(concurrency.max(1)));
    let target = Arc::new(target.clone());
    let authorization: Option<Arc<str>> = authorization.map(Arc::from);
    let mut tasks = JoinSet::new();
    for (index, channel) in channels.iter().enumerate() {
        let (permits, target, authorization) =
            (permits.clone(), target.clone(), authorization.clone());
        let channel = channel.clone();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let begun = Instant::now();
            let result = tokio::time::timeout(
                timeout,
                connect(&target, &channel, authorization.as_deref()),
            )
            .await
            .unwrap_or_else(|_| Err("timeout".to_owned()));
            (index, result, begun.elapsed())
        });
    }
    let mut sockets: Vec<Option<Socket>> = (0..channels.len()).map(|_| None).collect();
    let mut report = ConnectReport {
        attempted: channels.len(),
        ..ConnectReport::default()
    };
    let mut times = histogram();
    while let Some(joined) = tasks.join_next().await {
        let (index, result, took) = joined.expect("connect tasks do not panic");
        match result {
            Ok(socket) => {
                sockets[index] = Some(socket);
                report.connected += 1;
                times.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
            }
            Err(reason) => {
                report.failed += 1;
                *report.errors.entry(reason).or_default() += 1;
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    report.handshake_us = Percentiles::of(&times);
    (sockets, report)
}
