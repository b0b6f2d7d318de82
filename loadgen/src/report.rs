//! The report: one JSON object, and a human summary of it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::args::{Args, Mode, Rate};
use crate::fanout::ClientTally;
use crate::producer::ProduceReport;
use crate::stats::Percentiles;
use crate::ws::ConnectReport;

/// Everything a run measured, with the parameters it ran with.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `sluice-loadgen`.
    pub tool: &'static str,
    /// The generator's version.
    pub version: &'static str,
    /// The parameters.
    pub params: Params,
    /// The soft RLIMIT_NOFILE the generator ran with.
    pub nofile_limit: Option<u64>,
    /// Opening the clients.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectReport>,
    /// Fanout: the Kafka producer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub produce: Option<ProduceReport>,
    /// Fanout: what the clients received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Deliveries>,
    /// Inbound: messages sent and acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound: Option<Inbound>,
    /// Idle: how the connections held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle: Option<Idle>,
    /// Fanout: intended send time to receipt; inbound: send to ACK.
    /// Microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<Percentiles>,
    /// The server's memory, with `--server-pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    /// Fanout, at most 1000 clients: each client's tally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_client: Option<Vec<ClientTally>>,
    /// Rooms mode: the messages the senders sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rooms: Option<RoomsSent>,
    /// Topic mode: `created` or `exists`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

/// The parameters of a run (secrets left out).
#[derive(Debug, Clone, Serialize)]
pub struct Params {
    /// Mode.
    pub mode: Mode,
    /// URL template.
    pub ws_url: String,
    /// Clients.
    pub clients: usize,
    /// Channel names.
    pub channels: Vec<String>,
    /// `basic`, `bearer` or `none`.
    pub auth: &'static str,
    /// Bootstrap servers.
    pub bootstrap: String,
    /// Topic.
    pub topic: String,
    /// Rate (a number or `max`).
    pub rate: Rate,
    /// Seconds.
    pub duration_s: f64,
    /// Records in all, if given.
    pub records: Option<u64>,
    /// Payload bytes asked for.
    pub size: usize,
    /// Drain period, ms.
    pub drain_ms: u64,
    /// Closed-loop window.
    pub max_in_flight: usize,
    /// Producer linger.
    pub linger_ms: u32,
    /// Extra producer settings.
    pub kafka_props: BTreeMap<String, String>,
    /// The server's pid.
    pub server_pid: Option<u32>,
    /// Concurrent handshakes.
    pub connect_concurrency: usize,
    /// Tokio worker threads.
    pub threads: usize,
}

impl Report {
    /// An empty report for `args`.
    pub fn new(args: &Args) -> Self {
        Self {
            tool: "sluice-loadgen",
            version: env!("CARGO_PKG_VERSION"),
            params: Params {
                mode: args.mode,
                ws_url: args.ws_url.clone(),
                clients: args.clients,
                channels: args.channel_list(),
                auth: if args.basic.is_some() {
                    "basic"
                } else if args.bearer.is_some() {
                    "bearer"
                } else {
                    "none"
                },
                bootstrap: args.bootstrap.clone(),
                topic: args.topic.clone(),
                rate: args.rate,
                duration_s: args.duration,
                records: args.records,
                size: args.size,
                drain_ms: args.drain_ms,
                max_in_flight: args.max_in_flight,
                linger_ms: args.linger_ms,
                kafka_props: args.kafka_props.iter().cloned().collect(),
                server_pid: args.server_pid,
                connect_concurrency: args.connect_concurrency,
                threads: crate::worker_threads(args),
            },
            nofile_limit: None,
            connect: None,
            produce: None,
            deliveries: None,
            inbound: None,
            idle: None,
            latency_us: None,
            memory: None,
            per_client: None,
            rooms: None,
            topic: None,
        }
    }

    /// The report as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }

    /// A few lines for a person.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let p = &self.params;
        let _ = match p.mode {
            Mode::Fanout | Mode::Inbound | Mode::Rooms => writeln!(
                out,
                "sluice-loadgen {}: {} clients over {} channels, rate {}, {} B payloads",
                p.mode,
                p.clients,
                p.channels.len(),
                p.rate,
                p.size
            ),
            Mode::Idle => writeln!(
                out,
                "sluice-loadgen idle: {} clients over {} channels",
                p.clients,
                p.channels.len()
            ),
            Mode::Topic => Ok(()),
        };
        if let Some(topic) = &self.topic {
            let _ = writeln!(out, "topic {}: {topic}", p.topic);
        }
        if let Some(c) = &self.connect {
            let _ = writeln!(
                out,
                "connected {}/{} in {:.2} s (handshake p50 {:.2} ms, p99 {:.2} ms){}",
                c.connected,
                c.attempted,
                c.seconds,
                c.handshake_us.p50 as f64 / 1000.0,
                c.handshake_us.p99 as f64 / 1000.0,
                if c.errors.is_empty() {
                    String::new()
                } else {
                    format!("; failures: {:?}", c.errors)
                }
            );
        }
        if let Some(produce) = &self.produce {
            let _ = writeln!(
                out,
                "produced {} records ({} failed) in {:.2} s = {:.0}/s; most behind schedule {:.2} ms{}",
                produce.records,
                produce.failed,
                produce.send_seconds,
                produce.records_per_sec,
                produce.max_behind_schedule_ms,
                if produce.errors.is_empty() {
                    String::new()
                } else {
                    format!("; errors: {:?}", produce.errors)
                }
            );
        }
        if let Some(r) = &self.rooms {
            let _ = writeln!(
                out,
                "rooms: sent {} messages ({} failed); most behind schedule {:.2} ms{}",
                r.messages,
                r.failed,
                r.max_behind_schedule_ms,
                r.servers_cpu_s
                    .map_or(String::new(), |cpu| format!("; servers' CPU {cpu:.2} s"))
            );
        }
        if let Some(d) = &self.deliveries {
            let _ = writeln!(
                out,
                "delivered {}/{} ({:.0}/s): lost {} (on {} clients, at most {}), duplicates {}, out of order {}, misrouted {}, unstamped {}, connections ended early {}",
                d.received,
                d.expected,
                d.per_sec,
                d.lost,
                d.clients_with_loss,
                d.max_lost_per_client,
                d.duplicates,
                d.out_of_order,
                d.misrouted,
                d.unstamped,
                d.ended_early
            );
        }
        if let Some(i) = &self.inbound {
            let _ = writeln!(
                out,
                "inbound: sent {}, acked {} ({:.0}/s), errors {}, unacked {}, duplicate acks {}, send failures {}",
                i.sent,
                i.acked,
                i.acks_per_sec,
                i.errors,
                i.unacked,
                i.duplicate_acks,
                i.send_failures
            );
        }
        if let Some(i) = &self.idle {
            let _ = writeln!(
                out,
                "idle: held {:.0} s, {} still open{}",
                i.held_seconds,
                i.still_open,
                if i.ended.is_empty() {
                    String::new()
                } else {
                    format!("; ended: {:?}", i.ended)
                }
            );
        }
        if let Some(latency) = &self.latency_us {
            let what = if self.inbound.is_some() {
                "ACK latency"
            } else {
                "latency (from intended send)"
            };
            let _ = writeln!(out, "{what}: {}", latency.human_ms());
        }
        if let Some(m) = &self.memory {
            let kib = |v: Option<u64>| {
                v.map_or("?".to_owned(), |v| format!("{:.1} MiB", v as f64 / 1024.0))
            };
            let _ = writeln!(
                out,
                "server RSS: {} before connecting, {} connected, {} at the end; {} per connection",
                kib(m.before_connect_kib),
                kib(m.after_connect_kib),
                kib(m.end_kib),
                m.per_connection_kib
                    .map_or("?".to_owned(), |v| format!("{v:.1} KiB"))
            );
            if let Some(cpu) = m.cpu_s {
                let _ = writeln!(out, "server CPU while running: {cpu:.2} s");
            }
        }
        out
    }
}

/// Rooms mode: what the senders sent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoomsSent {
    /// Messages sent, all rooms.
    pub messages: u64,
    /// Messages sent per room, in `--channels` order.
    pub per_room: Vec<u64>,
    /// Messages that could not be written.
    pub failed: u64,
    /// How late the generator got against its schedule.
    pub max_behind_schedule_ms: f64,
    /// CPU seconds the `--server-pids` used during the run, together.
    pub servers_cpu_s: Option<f64>,
}

/// Fanout totals over every connected client.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Deliveries {
    /// Sum over clients of the records of their channel.
    pub expected: u64,
    /// Distinct records received, all clients.
    pub received: u64,
    /// Expected but never received.
    pub lost: u64,
    /// Clients that lost at least one record.
    pub clients_with_loss: usize,
    /// The most one client lost.
    pub max_lost_per_client: u64,
    /// Extra copies received.
    pub duplicates: u64,
    /// Records received after a later one of their channel.
    pub out_of_order: u64,
    /// Records of another channel.
    pub misrouted: u64,
    /// Frames without a stamp.
    pub unstamped: u64,
    /// Connections that ended before the run did.
    pub ended_early: usize,
    /// Seconds from the first send to the last receipt.
    pub seconds: f64,
    /// `received / seconds`.
    pub per_sec: f64,
}

impl Deliveries {
    /// Adds up the tallies; `window_ns` is first send to last receipt.
    pub fn from_tallies(tallies: &[ClientTally], window_ns: u64) -> Self {
        let mut d = Deliveries::default();
        for t in tallies {
            d.expected += t.expected;
            d.received += t.received;
            d.lost += t.lost;
            d.clients_with_loss += usize::from(t.lost > 0);
            d.max_lost_per_client = d.max_lost_per_client.max(t.lost);
            d.duplicates += t.duplicates;
            d.out_of_order += t.out_of_order;
            d.misrouted += t.misrouted;
            d.unstamped += t.unstamped;
            d.ended_early += usize::from(t.ended.is_some());
        }
        d.seconds = window_ns as f64 / 1e9;
        d.per_sec = if window_ns > 0 {
            d.received as f64 / d.seconds
        } else {
            0.0
        };
        d
    }
}

/// Inbound totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inbound {
    /// Messages written.
    pub sent: u64,
    /// Distinct messages acknowledged.
    pub acked: u64,
    /// ERROR replies.
    pub errors: u64,
    /// Sent, neither acknowledged nor refused by the end of the drain.
    pub unacked: u64,
    /// ACKs for a message already acknowledged.
    pub duplicate_acks: u64,
    /// ACKs naming no message this client sent.
    pub unknown_acks: u64,
    /// Other frames (welcome messages, broadcasts).
    pub other_frames: u64,
    /// Writes that failed.
    pub send_failures: u64,
    /// Connections that ended before the run did.
    pub ended_early: usize,
    /// Seconds from the first send to the last send.
    pub send_seconds: f64,
    /// Seconds from the first send to the last ACK.
    pub seconds: f64,
    /// `acked / seconds`.
    pub acks_per_sec: f64,
}

/// Idle-mode outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Idle {
    /// How long the connections were held.
    pub held_seconds: f64,
    /// Connections still open at the end.
    pub still_open: usize,
    /// Connections that ended, by reason.
    pub ended: BTreeMap<String, usize>,
}

/// The server's resident memory (KiB).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Memory {
    /// The pid read.
    pub pid: Option<u32>,
    /// Before the first connection.
    pub before_connect_kib: Option<u64>,
    /// With every client connected.
    pub after_connect_kib: Option<u64>,
    /// At the end, before the clients close.
    pub end_kib: Option<u64>,
    /// Connections open between the first two readings.
    pub connections: usize,
    /// `(after_connect - before_connect) / connections`.
    pub per_connection_kib: Option<f64>,
    /// Server CPU time (user + system) from every client connected to the
    /// end reading, in seconds: what serving the run cost the server.
    pub cpu_s: Option<f64>,
}

impl Memory {
    /// Readings of `pid` to come.
    pub fn new(pid: Option<u32>) -> Self {
        Self {
            pid,
            ..Self::default()
        }
    }

    /// Works out the per-connection figure.
    pub fn finish(mut self) -> Self {
        if let (Some(before), Some(after)) = (self.before_connect_kib, self.after_connect_kib)
            && self.connections > 0
        {
            self.per_connection_kib =
                Some((after as f64 - before as f64) / self.connections as f64);
        }
        self
    }
}
