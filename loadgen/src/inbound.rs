//! Inbound mode: every client sends seed 002 envelopes on its own fixed
//! schedule (or with a window of unacknowledged messages) and times the
//! ACK of each from the message's intended send time.
//!
//! A message: `{"messageType":"USER","content":"xx…","timestamp":"<RFC 3339>","id":"<seq>"}`.
//! A reply counts as an ACK when it has `"messageType":"ACK"` or
//! `"type":"ack"`, as an error with `"ERROR"` / `"error"`; its `id` (string
//! or number) names the message.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use fastwebsockets::{Frame, OpCode, Payload, WebSocketRead};
use serde::Deserialize;
use tokio::io::ReadHalf;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::args::{Args, Rate, Target};
use crate::report::{Inbound, Memory, Report};
use crate::stats::{Percentiles, Shards, now_rfc3339, rss_kib, since_ns};
use crate::ws::{Socket, Stream, Writer, connect_all, read_split};

/// What the tasks of every client share.
struct Shared {
    start: Instant,
    latency: Shards,
    /// Replies (ACK or ERROR) to distinct messages, all clients.
    answered: AtomicU64,
    last_ack_ns: AtomicU64,
}

/// One client's state, shared by its writer and reader.
#[derive(Default)]
struct Client {
    /// Intended send time of message `seq`, ns since the start.
    sent_at: Vec<u64>,
    /// Whether message `seq` was answered.
    answered: Vec<bool>,
    acked: u64,
    errors: u64,
    duplicate_acks: u64,
    unknown_acks: u64,
    other_frames: u64,
    send_failures: u64,
    ended: Option<String>,
}

#[derive(Deserialize)]
struct Reply {
    #[serde(rename = "messageType")]
    message_type: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<serde_json::Value>,
}

/// The message with id `seq`, content padded so the whole is about `size`.
fn envelope(seq: u64, size: usize) -> String {
    let timestamp = now_rfc3339();
    let fixed = r#"{"messageType":"USER","content":"","timestamp":"","id":""}"#.len()
        + timestamp.len()
        + 20;
    let content = "x".repeat(size.saturating_sub(fixed).max(1));
    format!(
        r#"{{"messageType":"USER","content":"{content}","timestamp":"{timestamp}","id":"{seq}"}}"#
    )
}

/// Runs inbound mode.
pub async fn run(args: &Args) -> Result<Report> {
    let target = Target::parse(&args.ws_url)?;
    let channels = args.channel_list();
    let names: Vec<String> = (0..args.clients)
        .map(|i| channels[i % channels.len()].clone())
        .collect();
    let start = Instant::now();
    let mut memory = Memory::new(args.server_pid);
    memory.before_connect_kib = args.server_pid.and_then(rss_kib);
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
    let sockets: Vec<Socket> = sockets.into_iter().flatten().collect();
    let connected = sockets.len().max(1) as u64;

    let shared = Arc::new(Shared {
        start,
        latency: Shards::new(16),
        answered: AtomicU64::new(0),
        last_ack_ns: AtomicU64::new(0),
    });
    let total = args.records.unwrap_or_else(|| match args.rate {
        Rate::PerSecond(rate) => (rate * args.duration).round() as u64,
        Rate::Max => u64::MAX,
    });
    let deadline_ns = match (args.rate, args.records) {
        (Rate::Max, None) => (args.duration * 1e9) as u64,
        _ => u64::MAX,
    };
    let first_send_ns = since_ns(start) + 10_000_000;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    let mut clients = Vec::new();
    let mut schedule = Vec::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        let (read, write) = socket.split(tokio::io::split);
        let writer: Writer = Arc::new(tokio::sync::Mutex::new(write));
        let client = Arc::new(Mutex::new(Client::default()));
        let window = Arc::new(Semaphore::new(args.max_in_flight.max(1)));
        let pace = match args.rate {
            Rate::PerSecond(_) => {
                let (due_tx, due_rx) = mpsc::unbounded_channel();
                schedule.push(due_tx);
                Pace::Scheduled(due_rx)
            }
            // Client k sends messages k, k + n, k + 2n, ... of the total.
            Rate::Max => Pace::Window {
                count: total / connected + u64::from((index as u64) < total % connected),
                deadline: deadline_ns.saturating_add(first_send_ns),
            },
        };
        readers.push(tokio::spawn(read_replies(
            read,
            writer.clone(),
            client.clone(),
            window.clone(),
            shared.clone(),
            stop_rx.clone(),
        )));
        writers.push(tokio::spawn(send_messages(
            writer,
            client.clone(),
            window,
            shared.clone(),
            pace,
            args.size,
        )));
        clients.push(client);
    }
    if let Rate::PerSecond(rate) = args.rate
        && !schedule.is_empty()
    {
        std::thread::Builder::new()
            .name("loadgen-schedule".to_owned())
            .spawn(move || run_schedule(&schedule, total, rate, first_send_ns, start))
            .context("starting the scheduler thread")?;
    }
    for writer in writers {
        writer.await.context("a writer panicked")?;
    }
    let last_send_ns = since_ns(start);
    let sent: u64 = clients
        .iter()
        .map(|c| c.lock().unwrap_or_else(|e| e.into_inner()).sent_at.len() as u64)
        .sum();
    let drain_until = Instant::now() + Duration::from_millis(args.drain_ms);
    while shared.answered.load(Ordering::Relaxed) < sent && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    memory.end_kib = args.server_pid.and_then(rss_kib);
    let _ = stop_tx.send(true);
    for reader in readers {
        reader.await.context("a reader panicked")?;
    }

    let mut inbound = Inbound {
        sent,
        ..Inbound::default()
    };
    for client in &clients {
        let c = client.lock().unwrap_or_else(|e| e.into_inner());
        inbound.acked += c.acked;
        inbound.errors += c.errors;
        inbound.duplicate_acks += c.duplicate_acks;
        inbound.unknown_acks += c.unknown_acks;
        inbound.other_frames += c.other_frames;
        inbound.send_failures += c.send_failures;
        inbound.ended_early += usize::from(c.ended.is_some());
    }
    inbound.unacked = sent.saturating_sub(inbound.acked + inbound.errors);
    inbound.send_seconds = last_send_ns.saturating_sub(first_send_ns) as f64 / 1e9;
    let window = shared
        .last_ack_ns
        .load(Ordering::Relaxed)
        .saturating_sub(first_send_ns);
    inbound.seconds = window as f64 / 1e9;
    inbound.acks_per_sec = if window > 0 {
        inbound.acked as f64 / inbound.seconds
    } else {
        0.0
    };
    let mut report = Report::new(args);
    report.connect = Some(connect);
    report.latency_us = Some(Percentiles::of(&shared.latency.merged()));
    report.inbound = Some(inbound);
    report.memory = args.server_pid.map(|_| memory.finish());
    Ok(report)
}

/// How a client's writer paces its messages.
enum Pace {
    /// Each intended send time (ns since the start) comes from the
    /// scheduler thread, when it is due.
    Scheduled(mpsc::UnboundedReceiver<u64>),
    /// As soon as the window has room: `count` messages at most, none
    /// after `deadline` (ns since the start).
    Window { count: u64, deadline: u64 },
}

/// The open-loop schedule: message i is due `i / rate` seconds after
/// `first` and goes to client i mod n. One thread sleeping precisely
/// (tokio's timer wheel would round each send up to the next millisecond,
/// and that delay would show as ACK latency).
fn run_schedule(
    clients: &[mpsc::UnboundedSender<u64>],
    total: u64,
    rate: f64,
    first: u64,
    start: Instant,
) {
    let interval = 1e9 / rate;
    for i in 0..total {
        let due = first + (i as f64 * interval) as u64;
        let now = since_ns(start);
        if due > now {
            std::thread::sleep(Duration::from_nanos(due - now));
        }
        let _ = clients[(i % clients.len() as u64) as usize].send(due);
    }
}

/// Sends messages as `pace` says; message ids count from 0 per client.
async fn send_messages(
    writer: Writer,
    client: Arc<Mutex<Client>>,
    window: Arc<Semaphore>,
    shared: Arc<Shared>,
    mut pace: Pace,
    size: usize,
) {
    for seq in 0.. {
        let due = match &mut pace {
            Pace::Scheduled(due) => match due.recv().await {
                Some(due) => due,
                None => return,
            },
            Pace::Window { count, deadline } => {
                if seq >= *count {
                    return;
                }
                match window.acquire().await {
                    Ok(permit) => permit.forget(),
                    Err(_) => return,
                }
                let now = since_ns(shared.start);
                if now >= *deadline {
                    return;
                }
                now
            }
        };
        let message = envelope(seq, size);
        {
            let mut c = client.lock().unwrap_or_else(|e| e.into_inner());
            if c.ended.is_some() {
                return;
            }
            c.sent_at.push(due);
            c.answered.push(false);
        }
        let result = writer
            .lock()
            .await
            .write_frame(Frame::text(Payload::Borrowed(message.as_bytes())))
            .await;
        if let Err(error) = result {
            let mut c = client.lock().unwrap_or_else(|e| e.into_inner());
            c.send_failures += 1;
            c.sent_at.pop();
            c.answered.pop();
            c.ended.get_or_insert_with(|| format!("write: {error}"));
            return;
        }
    }
}

/// Reads replies until told to stop or the connection ends.
async fn read_replies(
    mut read: WebSocketRead<ReadHalf<Stream>>,
    writer: Writer,
    client: Arc<Mutex<Client>>,
    window: Arc<Semaphore>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let stopped = stop.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    loop {
        let frame = tokio::select! {
            biased;
            _ = &mut stopped => break,
            frame = read_split(&mut read, &writer) => frame,
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(error) => {
                let mut c = client.lock().unwrap_or_else(|e| e.into_inner());
                c.ended.get_or_insert_with(|| format!("read: {error}"));
                break;
            }
        };
        match frame.opcode {
            OpCode::Text | OpCode::Binary => {
                on_reply(&frame.payload, &client, &window, &shared);
            }
            OpCode::Close => {
                let mut c = client.lock().unwrap_or_else(|e| e.into_inner());
                c.ended
                    .get_or_insert_with(|| "closed by the server".to_owned());
                break;
            }
            _ => {}
        }
    }
    // Unblock a writer waiting for window room.
    window.close();
}

fn on_reply(payload: &[u8], client: &Mutex<Client>, window: &Semaphore, shared: &Shared) {
    let now = since_ns(shared.start);
    let mut c = client.lock().unwrap_or_else(|e| e.into_inner());
    let Ok(reply) = serde_json::from_slice::<Reply>(payload) else {
        c.other_frames += 1;
        return;
    };
    let kind = reply
        .message_type
        .as_deref()
        .or(reply.kind.as_deref())
        .unwrap_or_default();
    let ack = kind.eq_ignore_ascii_case("ack");
    if !ack && !kind.eq_ignore_ascii_case("error") {
        c.other_frames += 1;
        return;
    }
    let seq = match &reply.id {
        Some(serde_json::Value::String(id)) => id.parse::<u64>().ok(),
        Some(serde_json::Value::Number(id)) => id.as_u64(),
        _ => None,
    };
    let Some(seq) = seq.filter(|&seq| (seq as usize) < c.sent_at.len()) else {
        if ack {
            c.unknown_acks += 1;
        } else {
            c.errors += 1;
        }
        return;
    };
    let seq = seq as usize;
    if c.answered[seq] {
        c.duplicate_acks += 1;
        return;
    }
    c.answered[seq] = true;
    if ack {
        c.acked += 1;
        let latency = now.saturating_sub(c.sent_at[seq]) / 1000;
        shared.latency.record(seq, latency);
        shared.last_ack_ns.fetch_max(now, Ordering::Relaxed);
    } else {
        c.errors += 1;
    }
    shared.answered.fetch_add(1, Ordering::Relaxed);
    window.add_permits(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_are_seed_002_json_of_about_the_size() {
        let text = envelope(42, 200);
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["messageType"], "USER");
        assert_eq!(value["id"], "42");
        assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!((180..=200).contains(&text.len()), "{}", text.len());
    }
}
