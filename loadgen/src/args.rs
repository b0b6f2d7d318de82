//! The command line.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Parser, ValueEnum};
use serde::{Serialize, Serializer};

/// Drives a Kafka -> WebSocket bridge with plain Kafka and plain WebSocket
/// clients and reports throughput, latency, loss and memory.
///
/// Prints a human summary on stderr and one JSON object on stdout.
#[derive(Debug, Clone, Parser)]
#[command(name = "sluice-loadgen", version)]
pub struct Args {
    /// fanout: produce records, receive them on every client of their
    /// channel; inbound: clients send messages and count ACKs; rooms: a
    /// client per room sends, every member receives (no Kafka; --ws-url
    /// may list several servers); idle: hold connections open; topic:
    /// create --topic with --partitions and exit.
    #[arg(long, value_enum, default_value_t = Mode::Fanout)]
    pub mode: Mode,

    /// WebSocket URL template; `{channel}` is replaced by the channel name
    /// (plain `ws://` only). Rooms mode: a comma-separated list, one per
    /// server (client i connects to URL i mod N).
    #[arg(long, default_value = "ws://127.0.0.1:8080/{channel}")]
    pub ws_url: String,

    /// WebSocket clients to open.
    #[arg(long, default_value_t = 10)]
    pub clients: usize,

    /// Channels `ch-0` .. `ch-<C-1>`; client i subscribes to channel i mod C.
    #[arg(long, default_value_t = 1)]
    pub channels: usize,

    /// Explicit channel names (comma separated), instead of --channels.
    #[arg(long, value_delimiter = ',')]
    pub channel_names: Vec<String>,

    /// `user:password` for an `Authorization: Basic` header.
    #[arg(long, conflicts_with = "bearer")]
    pub basic: Option<String>,

    /// Token for an `Authorization: Bearer` header.
    #[arg(long)]
    pub bearer: Option<String>,

    /// Kafka bootstrap servers.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub bootstrap: String,

    /// The topic to produce to (fanout) or to create (topic).
    #[arg(long, default_value = "sluice-bench")]
    pub topic: String,

    /// Records (fanout) or messages (inbound) per second over all
    /// channels/clients, sent on a fixed schedule (open loop); `max`: as
    /// fast as delivery allows, at most --max-in-flight unacknowledged.
    #[arg(long, default_value = "1000")]
    pub rate: Rate,

    /// Seconds to send for (or to hold connections, in idle mode).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Records (messages) to send in all, instead of rate x duration.
    #[arg(long)]
    pub records: Option<u64>,

    /// Payload size in bytes (at least 65: the stamp).
    #[arg(long, default_value_t = 100)]
    pub size: usize,

    /// After the last send, how long to wait for missing deliveries (ACKs).
    #[arg(long, default_value_t = 2000)]
    pub drain_ms: u64,

    /// With `--rate max`: unacknowledged records (fanout, over the producer)
    /// or messages (inbound, per client) at most.
    #[arg(long, default_value_t = 1000)]
    pub max_in_flight: usize,

    /// The producer's `linger.ms`.
    #[arg(long, default_value_t = 1)]
    pub linger_ms: u32,

    /// More librdkafka producer settings, `key=value` (repeatable).
    #[arg(short = 'X', long = "kafka-prop", value_parser = parse_property)]
    pub kafka_props: Vec<(String, String)>,

    /// Partitions of the topic created in `topic` mode.
    #[arg(long, default_value_t = 1)]
    pub partitions: i32,

    /// The bridge's process id: its VmRSS is read before and after
    /// connecting and at the end.
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Rooms mode: the servers' process ids (comma separated), for their
    /// CPU time during the run.
    #[arg(long, value_delimiter = ',')]
    pub server_pids: Vec<u32>,

    /// Rooms mode: what a client sends to join its room (`{room}` is
    /// replaced); it counts as joined at the first frame back.
    #[arg(long, default_value = r#"{"action":"join","room":"{room}"}"#)]
    pub join_template: String,

    /// Rooms mode: a room message (`{room}`, and `{text}`: the stamp and
    /// padding, safe inside a JSON string).
    #[arg(
        long,
        default_value = r#"{"action":"message","room":"{room}","text":"{text}"}"#
    )]
    pub message_template: String,

    /// Handshakes in progress at once.
    #[arg(long, default_value_t = 100)]
    pub connect_concurrency: usize,

    /// Longest a single connection + handshake may take.
    #[arg(long, default_value_t = 10_000)]
    pub connect_timeout_ms: u64,

    /// Tokio worker threads (default: one per CPU).
    #[arg(long)]
    pub threads: Option<usize>,

    /// Also write the JSON report to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl Args {
    /// The channel names, in order.
    pub fn channel_list(&self) -> Vec<String> {
        if self.channel_names.is_empty() {
            (0..self.channels.max(1))
                .map(|i| format!("ch-{i}"))
                .collect()
        } else {
            self.channel_names.clone()
        }
    }

    /// The `Authorization` header value, if any.
    pub fn authorization(&self) -> Option<String> {
        use base64::Engine as _;
        if let Some(basic) = &self.basic {
            let encoded = base64::engine::general_purpose::STANDARD.encode(basic.as_bytes());
            return Some(format!("Basic {encoded}"));
        }
        self.bearer.as_ref().map(|token| format!("Bearer {token}"))
    }
}

/// What the run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Kafka records fanned out to WebSocket clients.
    Fanout,
    /// Client messages acknowledged by the bridge.
    Inbound,
    /// Room messages from clients to the room's members.
    Rooms,
    /// Open connections, nothing sent.
    Idle,
    /// Create the topic and exit.
    Topic,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Fanout => "fanout",
            Mode::Inbound => "inbound",
            Mode::Rooms => "rooms",
            Mode::Idle => "idle",
            Mode::Topic => "topic",
        })
    }
}

/// A send rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// This many per second, on a fixed schedule.
    PerSecond(f64),
    /// As fast as delivery allows (a bounded in-flight window).
    Max,
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        match text.parse::<f64>() {
            Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(Rate::PerSecond(rate)),
            _ => Err(format!("expected a positive number or `max`, not {text:?}")),
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::PerSecond(rate) => write!(f, "{rate}"),
            Rate::Max => f.write_str("max"),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Rate::PerSecond(rate) => serializer.serialize_f64(*rate),
            Rate::Max => serializer.serialize_str("max"),
        }
    }
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected key=value, not {text:?}")),
    }
}

/// Where the clients connect: `host:port` and a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`, for the TCP connection and the `Host` header.
    pub authority: String,
    /// The path (and query) with `{channel}` still in it.
    pub path_template: String,
}

impl Target {
    /// Parses a `ws://host[:port]/path` template.
    pub fn parse(url: &str) -> anyhow::Result<Target> {
        let Some(rest) = url.strip_prefix("ws://") else {
            anyhow::bail!("--ws-url must start with ws:// (TLS is not supported): {url:?}");
        };
        let (authority, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            anyhow::bail!("--ws-url has no host: {url:?}");
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Target {
            authority,
            path_template: path.to_owned(),
        })
    }

    /// The request path for `channel`.
    pub fn path(&self, channel: &str) -> String {
        self.path_template.replace("{channel}", channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse() {
        assert_eq!("max".parse::<Rate>(), Ok(Rate::Max));
        assert_eq!("250.5".parse::<Rate>(), Ok(Rate::PerSecond(250.5)));
        assert!("0".parse::<Rate>().is_err());
        assert!("fast".parse::<Rate>().is_err());
    }

    #[test]
    fn targets_parse() {
        let target = Target::parse("ws://127.0.0.1:9000/live/{channel}?x=1").unwrap();
        assert_eq!(target.authority, "127.0.0.1:9000");
        assert_eq!(target.path("ch-1"), "/live/ch-1?x=1");
        assert_eq!(Target::parse("ws://host").unwrap().authority, "host:80");
        assert!(Target::parse("wss://host/x").is_err());
    }

    #[test]
    fn channels_and_auth() {
        let args = Args::parse_from(["x", "--channels", "3", "--basic", "u:p"]);
        assert_eq!(args.channel_list(), ["ch-0", "ch-1", "ch-2"]);
        assert_eq!(args.authorization().unwrap(), "Basic dTpw");
        let args = Args::parse_from(["x", "--channel-names", "a,b", "--bearer", "t"]);
        assert_eq!(args.channel_list(), ["a", "b"]);
        assert_eq!(args.authorization().unwrap(), "Bearer t");
    }
}
