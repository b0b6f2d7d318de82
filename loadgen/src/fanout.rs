//! Fanout and idle modes: clients receive; the producer thread sends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow};
use fastwebsockets::{FragmentCollector, Frame, OpCode, WebSocketError};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::args::{Args, Target};
use crate::payload;
use crate::producer::{self, Plan};
use crate::report::{Deliveries, Memory, Report};
use crate::stats::{Percentiles, Shards, cpu_seconds, rss_kib, since_ns};
use crate::ws::{Socket, connect_all};

/// Above this many clients the report has no per-client list.
pub const PER_CLIENT_LIMIT: usize = 1000;

/// What every receiving client shares.
pub struct Shared {
    /// The run's time origin.
    pub start: Instant,
    /// Latency from intended send time to receipt, microseconds.
    pub latency: Shards,
    /// Distinct records received, all clients together.
    pub unique: AtomicU64,
    /// Time of the latest receipt, ns since `start`.
    pub last_receipt_ns: AtomicU64,
}

/// One client's tally.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientTally {
    /// Client index.
    pub client: usize,
    /// Its channel.
    pub channel: String,
    /// Records of its channel produced (and not failed).
    pub expected: u64,
    /// Distinct records received.
    pub received: u64,
    /// Expected records never received.
    pub lost: u64,
    /// Records received more than once (each extra copy counts).
    pub duplicates: u64,
    /// Records received after a later record of the same channel.
    pub out_of_order: u64,
    /// Records of another channel.
    pub misrouted: u64,
    /// Frames without a stamp.
    pub unstamped: u64,
    /// Why the connection ended before the run did, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    #[serde(skip)]
    seen: Vec<u64>,
    #[serde(skip)]
    highest: Option<u64>,
}

impl ClientTally {
    /// An empty tally of client `client`, subscribed to `channel`.
    pub(crate) fn new(client: usize, channel: String) -> Self {
        Self {
            client,
            channel,
            ..Self::default()
        }
    }

    /// Takes what one read gave: counts a data frame (`true`: read on), or
    /// notes why the connection ended (`false`).
    pub(crate) fn on_read(
        &mut self,
        read: Result<Frame<'_>, WebSocketError>,
        channel: u32,
        shared: &Shared,
    ) -> bool {
        match read {
            Ok(frame) => match frame.opcode {
                OpCode::Text | OpCode::Binary => {
                    self.on_frame(&frame.payload, channel, shared);
                    true
                }
                OpCode::Close => {
                    let code = frame
                        .payload
                        .get(..2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]));
                    self.ended = Some(match code {
                        Some(code) => format!("closed by the server ({code})"),
                        None => "closed by the server".to_owned(),
                    });
                    false
                }
                _ => true,
            },
            Err(error) => {
                self.ended = Some(format!("error: {error}"));
                false
            }
        }
    }

    /// Counts one received frame of a client subscribed to `channel`.
    fn on_frame(&mut self, frame: &[u8], channel: u32, shared: &Shared) {
        let Some(stamp) = payload::parse(frame) else {
            self.unstamped += 1;
            return;
        };
        if stamp.channel != channel {
            self.misrouted += 1;
            return;
        }
        let (word, bit) = ((stamp.seq / 64) as usize, 1u64 << (stamp.seq % 64));
        if word >= self.seen.len() {
            self.seen.resize((word + 1).next_power_of_two(), 0);
        }
        if self.seen[word] & bit != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= bit;
        self.received += 1;
        match self.highest {
            Some(highest) if stamp.seq < highest => self.out_of_order += 1,
            _ => self.highest = Some(stamp.seq),
        }
        let now = since_ns(shared.start);
        shared
            .latency
            .record(self.client, now.saturating_sub(stamp.sent_ns) / 1000);
        shared.unique.fetch_add(1, Ordering::Relaxed);
        shared.last_receipt_ns.fetch_max(now, Ordering::Relaxed);
    }
}

/// Reads frames until told to stop or the connection ends.
async fn receive(
    socket: Socket,
    mut tally: ClientTally,
    channel: u32,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> ClientTally {
    let mut socket = FragmentCollector::new(socket);
    let stopped = stop.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    loop {
        let frame = tokio::select! {
            biased;
            _ = &mut stopped => break,
            frame = socket.read_frame() => frame,
        };
        if !tally.on_read(frame, channel, &shared) {
            break;
        }
    }
    tally
}

/// The client list: one channel index per client.
fn assignment(args: &Args, channels: &[String]) -> Vec<usize> {
    (0..args.clients).map(|i| i % channels.len()).collect()
}

/// Spawns a receiver per connected socket.
fn spawn_receivers(
    sockets: Vec<Option<Socket>>,
    assignment: &[usize],
    channels: &[String],
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
) -> Vec<(usize, JoinHandle<ClientTally>)> {
    sockets
        .into_iter()
        .enumerate()
        .filter_map(|(client, socket)| {
            let socket = socket?;
            let channel = assignment[client];
            let tally = ClientTally {
                client,
                channel: channels[channel].clone(),
                ..ClientTally::default()
            };
            let task = tokio::spawn(receive(
                socket,
                tally,
                channel as u32,
                shared.clone(),
                stop.clone(),
            ));
            Some((client, task))
        })
        .collect()
}

/// Runs fanout (`produce = true`) or idle mode.
pub async fn run(args: &Args, produce: bool) -> Result<Report> {
    let target = Target::parse(&args.ws_url)?;
    let channels = args.channel_list();
    let assignment = assignment(args, &channels);
    let start = Instant::now();
    let shared = Arc::new(Shared {
        start,
        latency: Shards::new(16),
        unique: AtomicU64::new(0),
        last_receipt_ns: AtomicU64::new(0),
    });
    let mut memory = Memory::new(args.server_pid);
    memory.before_connect_kib = args.server_pid.and_then(rss_kib);

    let names: Vec<String> = assignment.iter().map(|&c| channels[c].clone()).collect();
    let (sockets, connect) = connect_all(
        &target,
        &names,
        args.authorization(),
        args.connect_concurrency,
        Duration::from_millis(args.connect_timeout_ms),
    )
    .await;
    memory.after_connect_kib = args.server_pid.and_then(rss_kib);
    memory.connections = connect.connected;
    let cpu_start = args.server_pid.and_then(cpu_seconds);
    let cpu_since_start = || {
        let end = args.server_pid.and_then(cpu_seconds)?;
        Some(end - cpu_start?)
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let receivers = spawn_receivers(sockets, &assignment, &channels, &shared, &stop_rx);

    let mut report = Report::new(args);
    if produce {
        let plan = Plan {
            bootstrap: args.bootstrap.clone(),
            topic: args.topic.clone(),
            channels: channels.clone(),
            rate: args.rate,
            records: args.records,
            duration: Duration::from_secs_f64(args.duration),
            size: args.size,
            max_in_flight: args.max_in_flight.max(1),
            linger_ms: args.linger_ms,
            properties: args.kafka_props.clone(),
        };
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("loadgen-produce".to_owned())
            .spawn(move || {
                let _ = done_tx.send(producer::produce(&plan, start));
            })
            .context("starting the producer thread")?;
        let produced = done_rx
            .await
            .map_err(|_| anyhow!("the producer thread panicked"))??;

        // Every connected client expects every record of its channel.
        let expected_of =
            |channel: usize| produced.per_channel[channel] - produced.failed_per_channel[channel];
        let expected_total: u64 = receivers
            .iter()
            .map(|(client, _)| expected_of(assignment[*client]))
            .sum();
        let drain_until = Instant::now() + Duration::from_millis(args.drain_ms);
        while shared.unique.load(Ordering::Relaxed) < expected_total && Instant::now() < drain_until
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        memory.end_kib = args.server_pid.and_then(rss_kib);
        memory.cpu_s = cpu_since_start();
        let _ = stop_tx.send(true);
        let mut tallies = Vec::with_capacity(receivers.len());
        for (_, receiver) in receivers {
            let mut tally = receiver.await.context("a receiver panicked")?;
            let channel = assignment[tally.client];
            tally.expected = expected_of(channel);
            tally.lost = tally.expected.saturating_sub(tally.received);
            tallies.push(tally);
        }
        let latency = shared.latency.merged();
        let last = shared.last_receipt_ns.load(Ordering::Relaxed);
        report.deliveries = Some(Deliveries::from_tallies(
            &tallies,
            last.saturating_sub(produced.first_send_ns),
        ));
        report.latency_us = Some(Percentiles::of(&latency));
        if tallies.len() <= PER_CLIENT_LIMIT {
            report.per_client = Some(tallies);
        }
        report.produce = Some(produced);
    } else {
        tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
        memory.end_kib = args.server_pid.and_then(rss_kib);
        memory.cpu_s = cpu_since_start();
        let _ = stop_tx.send(true);
        let mut still_open = 0;
        let mut ended = std::collections::BTreeMap::<String, usize>::new();
        for (_, receiver) in receivers {
            let tally = receiver.await.context("a receiver panicked")?;
            match tally.ended {
                None => still_open += 1,
                Some(reason) => *ended.entry(reason).or_default() += 1,
            }
        }
        report.idle = Some(crate::report::Idle {
            held_seconds: args.duration,
            still_open,
            ended,
        });
    }
    report.connect = Some(connect);
    report.memory = args.server_pid.map(|_| memory.finish());
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payload::{PayloadBuf, Stamp};

    #[test]
    fn a_tally_counts_duplicates_reordering_and_strays() {
        let shared = Shared {
            start: Instant::now(),
            latency: Shards::new(1),
            unique: AtomicU64::new(0),
            last_receipt_ns: AtomicU64::new(0),
        };
        let mut payload = PayloadBuf::new(100);
        let mut frame = |channel, seq| {
            payload
                .stamp(Stamp {
                    channel,
                    seq,
                    sent_ns: 0,
                })
                .to_vec()
        };
        let mut tally = ClientTally::default();
        for (channel, seq) in [(1, 0), (1, 2), (1, 1), (1, 2), (0, 3), (1, 200)] {
            tally.on_frame(&frame(channel, seq), 1, &shared);
        }
        tally.on_frame(b"{\"hello\":1}", 1, &shared);
        assert_eq!(tally.received, 4);
        assert_eq!(tally.duplicates, 1);
        assert_eq!(tally.out_of_order, 1, "1 after 2");
        assert_eq!(tally.misrouted, 1);
        assert_eq!(tally.unstamped, 1);
        assert_eq!(shared.unique.load(Ordering::Relaxed), 4);
        assert_eq!(shared.latency.merged().len(), 4);
    }
}
