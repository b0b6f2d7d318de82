//! The ceiling: a bare Kafka -> WebSocket bridge that Sluice is measured
//! against. A record's key names its channel; every client connected at
//! `/{channel}` receives its payload as it is. Nothing else: no Wasm, no
//! auth, no policies, no metrics.
//!
//! - One consumer thread polls librdkafka (manual assignment of every
//!   partition of the topic at its high watermark, so a record produced
//!   after [`start`] returns is delivered) and hands each record to the
//!   subscribers of its channel: the payload is copied once into a
//!   reference-counted buffer that every subscriber's queue shares.
//! - Each client has a bounded queue (an outbox) and one writer task, which
//!   takes what is queued (up to [`WRITE_BATCH`] frames), writes it into a
//!   buffered writer and flushes once. A full outbox drops its oldest frame
//!   (Sluice's default policy, so both lose the same way): a slow reader
//!   never holds up the others.
//! - A client is subscribed before its `101 Switching Protocols` goes out.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use clap::Parser;
use fastwebsockets::{Frame, OpCode, Payload, Role, WebSocket, WebSocketError};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::{ClientConfig, Message as _, Offset, TopicPartitionList};
use tokio::io::BufWriter;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};

/// Frames written before one flush, at most.
pub const WRITE_BATCH: usize = 256;
/// Size of each client's write buffer.
const WRITE_BUFFER: usize = 16 * 1024;
/// How long one consumer poll waits (also how fast a stop is noticed).
const POLL: Duration = Duration::from_millis(100);
/// How long [`start`] waits for the topic to exist.
const TOPIC_WAIT: Duration = Duration::from_secs(30);
/// Each broker request while positioning.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The command line.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "native-bridge",
    version,
    about = "Bare Kafka -> WebSocket fanout: record key = channel, clients at /{channel}."
)]
pub struct Args {
    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,
    /// The topic to consume (from its end).
    #[arg(long)]
    pub topic: String,
    /// Where to serve WebSocket clients.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Frames queued per client at most; past it the oldest is dropped
    /// (Sluice's default outbox: 1024, drop-oldest).
    #[arg(long, default_value_t = 1024)]
    pub queue: usize,
    /// The consumer's `fetch.wait.max.ms` (Sluice's default is 10).
    #[arg(long, default_value_t = 10)]
    pub fetch_wait_ms: u32,
    /// Tokio worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// A running bridge; stopped when dropped.
pub struct Bridge {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
    stop: Arc<AtomicBool>,
    consumer: Option<JoinHandle<()>>,
}

impl Bridge {
    /// The address clients connect to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until SIGINT or SIGTERM.
    pub fn wait_for_signal(&self) -> Result<()> {
        let runtime = self.runtime.as_ref().expect("running");
        runtime.block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                result = tokio::signal::ctrl_c() => result,
                _ = term.recv() => Ok(()),
            }
        })?;
        Ok(())
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        if let Some(consumer) = self.consumer.take() {
            let _ = consumer.join();
        }
    }
}

/// Binds the listener, assigns every partition of the topic at its end,
/// and starts serving. Returns once a record produced from now on will
/// reach the clients of its channel (the binary prints `ready` then).
pub fn start(args: &Args) -> Result<Bridge> {
    raise_nofile_limit();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = args.threads {
        builder.worker_threads(threads.max(1));
    }
    let runtime = builder
        .thread_name("native-bridge")
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let listener = runtime
        .block_on(TcpListener::bind(args.listen))
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;

    let consumer = consumer(args)?;
    position(&consumer, &args.topic)?;

    let registry = Arc::new(Registry::default());
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let (registry, stop) = (registry.clone(), stop.clone());
        std::thread::Builder::new()
            .name("native-bridge-consume".to_owned())
            .spawn(move || consume(&consumer, &registry, &stop))
            .context("starting the consumer thread")?
    };
    runtime.spawn(accept(listener, registry, args.queue.max(1)));
    Ok(Bridge {
        addr,
        runtime: Some(runtime),
        stop,
        consumer: Some(thread),
    })
}

fn consumer(args: &Args) -> Result<BaseConsumer> {
    ClientConfig::new()
        .set("bootstrap.servers", &args.bootstrap)
        .set("client.id", "native-bridge")
        // Needed by librdkafka; the partitions are assigned, never joined.
        .set("group.id", "native-bridge")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", args.fetch_wait_ms.to_string())
        .set("log_level", "3")
        .create()
        .context("creating the Kafka consumer")
}

/// Assigns every partition of `topic` at its high watermark, read now: a
/// record produced after this returns is read. (Leaving "latest" to
/// librdkafka would resolve it lazily, at the first fetch, and skip what
/// was produced in between.)
fn position(consumer: &BaseConsumer, topic: &str) -> Result<()> {
    let deadline = Instant::now() + TOPIC_WAIT;
    let partitions: Vec<i32> = loop {
        let found = consumer
            .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
            .map_err(|e| e.to_string())
            .and_then(|metadata| {
                let t = metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic)
                    .ok_or_else(|| "not in the metadata".to_owned())?;
                if let Some(error) = t.error() {
                    return Err(format!("{error:?}"));
                }
                Ok(t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
            });
        match found {
            Ok(partitions) if !partitions.is_empty() => break partitions,
            Ok(_) if Instant::now() >= deadline => bail!("topic {topic:?} has no partitions"),
            Err(error) if Instant::now() >= deadline => bail!("topic {topic:?}: {error}"),
            _ => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let mut assignment = TopicPartitionList::new();
    for partition in partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
            .with_context(|| format!("reading the end of {topic}[{partition}]"))?;
        assignment.add_partition_offset(topic, partition, Offset::Offset(high))?;
    }
    consumer
        .assign(&assignment)
        .with_context(|| format!("assigning the partitions of {topic:?}"))?;
    Ok(())
}

/// The consumer thread: every record to the subscribers of its key.
fn consume(consumer: &BaseConsumer, registry: &Registry, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) {
        match consumer.poll(POLL) {
            None => {}
            Some(Ok(message)) => {
                if let Some(channel) = message.key().and_then(|k| std::str::from_utf8(k).ok()) {
                    registry.publish(channel, message.payload().unwrap_or_default());
                }
            }
            Some(Err(error)) => eprintln!("native-bridge: Kafka: {error}"),
        }
    }
}

/// A frame to send: the payload is shared by every subscriber.
#[derive(Clone)]
struct Out {
    text: bool,
    payload: Bytes,
}

/// A client's bounded queue: the consumer thread pushes, the writer takes.
struct Outbox {
    frames: Mutex<VecDeque<Out>>,
    ready: Notify,
    capacity: usize,
}

impl Outbox {
    fn new(capacity: usize) -> Self {
        Self {
            frames: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
            capacity,
        }
    }

    /// Queues `out`, dropping the oldest frame when full.
    fn push(&self, out: Out) {
        {
            let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
            if frames.len() >= self.capacity {
                frames.pop_front();
            }
            frames.push_back(out);
        }
        self.ready.notify_one();
    }

    /// Moves up to `most` frames into `batch`.
    fn take(&self, batch: &mut Vec<Out>, most: usize) {
        let mut frames = self.frames.lock().unwrap_or_else(|e| e.into_inner());
        let count = frames.len().min(most);
        batch.extend(frames.drain(..count));
    }
}

struct Subscriber {
    id: u64,
    outbox: Arc<Outbox>,
}

/// Channel name -> subscribers.
#[derive(Default)]
struct Registry {
    channels: Mutex<HashMap<String, Vec<Subscriber>>>,
    next_id: AtomicU64,
}

impl Registry {
    fn subscribe(&self, channel: &str, outbox: Arc<Outbox>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .entry(channel.to_owned())
            .or_default()
            .push(Subscriber { id, outbox });
        id
    }

    fn unsubscribe(&self, channel: &str, id: u64) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(subscribers) = channels.get_mut(channel) {
            subscribers.retain(|s| s.id != id);
            if subscribers.is_empty() {
                channels.remove(channel);
            }
        }
    }

    /// Queues `payload` for every subscriber of `channel`.
    fn publish(&self, channel: &str, payload: &[u8]) {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        let Some(subscribers) = channels.get(channel) else {
            return;
        };
        let out = Out {
            text: std::str::from_utf8(payload).is_ok(),
            payload: Bytes::copy_from_slice(payload),
        };
        for subscriber in subscribers {
            subscriber.outbox.push(out.clone());
        }
    }
}

async fn accept(listener: TcpListener, registry: Arc<Registry>, queue: usize) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, typically: wait and go on.
                eprintln!("native-bridge: accept: {error}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let registry = registry.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handshake(request, registry.clone(), queue));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn status(code: StatusCode) -> Response<Empty<Bytes>> {
    let mut response = Response::new(Empty::new());
    *response.status_mut() = code;
    response
}

async fn handshake(
    mut request: Request<Incoming>,
    registry: Arc<Registry>,
    queue: usize,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let channel = request.uri().path().trim_start_matches('/').to_owned();
    if channel.is_empty() || channel.contains('/') {
        return Ok(status(StatusCode::NOT_FOUND));
    }
    if !fastwebsockets::upgrade::is_upgrade_request(&request) {
        return Ok(status(StatusCode::UPGRADE_REQUIRED));
    }
    let Ok((response, upgrade)) = fastwebsockets::upgrade::upgrade(&mut request) else {
        return Ok(status(StatusCode::BAD_REQUEST));
    };
    let outbox = Arc::new(Outbox::new(queue));
    let id = registry.subscribe(&channel, outbox.clone());
    tokio::spawn(async move {
        if let Ok(socket) = upgrade.await {
            serve(socket, &outbox).await;
        }
        registry.unsubscribe(&channel, id);
    });
    Ok(response)
}

/// One client: a reader task (answers pings and closes through the
/// writer) and this writer loop.
async fn serve(socket: WebSocket<TokioIo<Upgraded>>, outbox: &Outbox) {
    let (read, write) = tokio::io::split(socket.into_inner());
    let (mut reader, mut writer) = fastwebsockets::after_handshake_split(
        read,
        BufWriter::with_capacity(WRITE_BUFFER, write),
        Role::Server,
    );
    let (control, mut controls) = mpsc::channel::<Frame<'static>>(4);
    let reading = tokio::spawn(async move {
        loop {
            let mut obliged = |frame: Frame<'_>| {
                let owned = Frame::new(
                    frame.fin,
                    frame.opcode,
                    None,
                    Payload::Owned(frame.payload.to_vec()),
                );
                let control = control.clone();
                async move {
                    control
                        .send(owned)
                        .await
                        .map_err(|_| WebSocketError::ConnectionClosed)
                }
            };
            match reader.read_frame(&mut obliged).await {
                Ok(frame) if frame.opcode == OpCode::Close => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        // Dropping `control` tells the writer the client is gone.
    });
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    'serve: loop {
        outbox.take(&mut batch, WRITE_BATCH);
        if !batch.is_empty() {
            for out in batch.drain(..) {
                if write_out(&mut writer, &out).await.is_err() {
                    break 'serve;
                }
            }
            if writer.flush().await.is_err() {
                break;
            }
            // Between batches, whatever the reader has for the writer.
            match controls.try_recv() {
                Ok(frame) => {
                    if !write_control(&mut writer, frame).await {
                        break;
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            continue;
        }
        // A push between `take` and here leaves a permit: no lost wake-up.
        tokio::select! {
            biased;
            frame = controls.recv() => {
                let Some(frame) = frame else { break };
                if !write_control(&mut writer, frame).await {
                    break;
                }
            }
            () = outbox.ready.notified() => {}
        }
    }
    reading.abort();
}

/// Writes a pong or the close echo; `false` when the connection is done.
async fn write_control<W>(writer: &mut fastwebsockets::WebSocketWrite<W>, frame: Frame<'_>) -> bool
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let close = frame.opcode == OpCode::Close;
    writer.write_frame(frame).await.is_ok() && writer.flush().await.is_ok() && !close
}

async fn write_out<W>(
    writer: &mut fastwebsockets::WebSocketWrite<W>,
    out: &Out,
) -> Result<(), WebSocketError>
where
    W: tokio::io::AsyncWrite + Unpin,
{
    let payload = Payload::Borrowed(&out.payload);
    let frame = if out.text {
        Frame::text(payload)
    } else {
        Frame::binary(payload)
    };
    writer.write_frame(frame).await
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (many idle clients).
fn raise_nofile_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            },
        );
    }
}
