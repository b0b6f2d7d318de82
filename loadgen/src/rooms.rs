//! Rooms mode: chat rooms whose messages come from WebSocket clients, not
//! Kafka, over one or more servers (`--ws-url` may list several, the nodes
//! of a cluster: client i connects to URL i mod N).
//!
//! Client i joins room `(i / N) mod C` (so every room has members on every
//! server) by sending `--join-template` with `{room}` replaced, and counts as
//! joined at its first frame back. One member of each room is its sender
//! (on server r mod N for room r): message k goes to room k mod C from that
//! room's sender, as
//! `--message-template` with `{room}` and `{text}` (a stamp and padding:
//! hex digits, colons and `x`, safe inside a JSON string). Every member,
//! the sender included, checks it got each message of its room once and in
//! order (one sender per room: one order), and times it from its intended
//! send time. The defaults speak the `mock` plugin's `kind = "rooms"`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use fastwebsockets::{Frame, OpCode, Payload, WebSocketRead};
use tokio::io::ReadHalf;
use tokio::sync::{Mutex, mpsc, watch};

use crate::args::{Args, Rate, Target};
use crate::fanout::{ClientTally, PER_CLIENT_LIMIT, Shared};
use crate::payload::{self, Stamp};
use crate::report::{Deliveries, Report, RoomsSent};
use crate::stats::{Percentiles, Shards, cpu_seconds, histogram, since_ns};
use crate::ws::{ConnectReport, Socket, Stream, Writer, connect, read_split};

/// How long a client waits for the answer to its join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The room of client `i` with `servers` servers and `rooms` rooms.
pub fn room_of(i: usize, servers: usize, rooms: usize) -> usize {
    (i / servers.max(1)) % rooms.max(1)
}

/// The text of a message: the stamp, then `x` up to `size` bytes.
fn text(stamp: Stamp, size: usize) -> String {
    let mut buf = payload::PayloadBuf::new(0);
    let bytes = buf.stamp(stamp);
    let at = bytes
        .windows(payload::MARKER.len())
        .position(|w| w == payload::MARKER)
        .unwrap_or(0);
    let mut text = String::from_utf8_lossy(&bytes[at..at + payload::STAMP_LEN]).into_owned();
    while text.len() < size {
        text.push('x');
    }
    text
}

/// Runs rooms mode.
pub async fn run(args: &Args) -> Result<Report> {
    let targets: Vec<Target> = args
        .ws_url
        .split(',')
        .map(|url| Target::parse(url.trim()))
        .collect::<Result<_>>()?;
    let rooms = args.channel_list();
    let start = Instant::now();
    let shared = Arc::new(Shared {
        start,
        latency: Shards::new(16),
        unique: AtomicU64::new(0),
        last_receipt_ns: AtomicU64::new(0),
    });

    // Connect and join, at most --connect-concurrency at once.
    let began = Instant::now();
    let permits = Arc::new(tokio::sync::Semaphore::new(args.connect_concurrency.max(1)));
    let mut joining = tokio::task::JoinSet::new();
    for i in 0..args.clients {
        let target = targets[i % targets.len()].clone();
        let room = rooms[room_of(i, targets.len(), rooms.len())].clone();
        let join = args.join_template.replace("{room}", &room);
        let (permits, auth) = (permits.clone(), args.authorization());
        joining.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let begun = Instant::now();
            let result = tokio::time::timeout(JOIN_TIMEOUT, async {
                let mut socket = connect(&target, &room, auth.as_deref()).await?;
                socket.set_auto_pong(true);
                socket
                    .write_frame(Frame::text(Payload::Borrowed(join.as_bytes())))
                    .await
                    .map_err(|e| format!("join: {e}"))?;
                loop {
                    let frame = socket
                        .read_frame()
                        .await
                        .map_err(|e| format!("join: {e}"))?;
                    match frame.opcode {
                        OpCode::Text | OpCode::Binary => return Ok(socket),
                        OpCode::Close => return Err("closed while joining".to_owned()),
                        _ => {}
                    }
                }
            })
            .await
            .unwrap_or_else(|_| Err("join timeout".to_owned()));
            (i, result, begun.elapsed())
        });
    }
    let mut sockets: Vec<Option<Socket>> = (0..args.clients).map(|_| None).collect();
    let mut connect_report = ConnectReport {
        attempted: args.clients,
        ..ConnectReport::default()
    };
    let mut times = histogram();
    while let Some(joined) = joining.join_next().await {
        let (i, result, took) = joined.context("a join task panicked")?;
        match result {
            Ok(socket) => {
                sockets[i] = Some(socket);
                connect_report.connected += 1;
                times.saturating_record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
            }
            Err(reason) => {
                connect_report.failed += 1;
                *connect_report.errors.entry(reason).or_default() += 1;
            }
        }
    }
    connect_report.seconds = began.elapsed().as_secs_f64();
    // Here the handshake and the join together.
    connect_report.handshake_us = Percentiles::of(&times);
    // Room r's messages come from its first joined member on server
    // r mod N (so every server has senders), else from its first member.
    let mut senders: Vec<Option<usize>> = vec![None; rooms.len()];
    for prefer in [true, false] {
        for (i, socket) in sockets.iter().enumerate() {
            let room = room_of(i, targets.len(), rooms.len());
            let on_its_server = i % targets.len() == room % targets.len();
            if socket.is_some() && senders[room].is_none() && (on_its_server || !prefer) {
                senders[room] = Some(i);
            }
        }
    }
    if senders.iter().any(Option::is_none) {
        bail!(
            "a room has no member that joined: {:?}",
            connect_report.errors
        );
    }

    let pids = &args.server_pids;
    let cpu_start: Option<f64> = pids.iter().map(|&p| cpu_seconds(p)).sum();
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut receivers = Vec::new();
    let mut writers: Vec<Option<Writer>> = vec![None; rooms.len()];
    for (i, socket) in sockets.into_iter().enumerate() {
        let Some(socket) = socket else { continue };
        let room = room_of(i, targets.len(), rooms.len());
        let (read, write) = socket.split(tokio::io::split);
        let writer: Writer = Arc::new(Mutex::new(write));
        if senders[room] == Some(i) {
            writers[room] = Some(writer.clone());
        }
        let tally = ClientTally::new(i, rooms[room].clone());
        receivers.push((
            room,
            tokio::spawn(receive(
                read,
                writer,
                tally,
                room as u32,
                shared.clone(),
                stop_rx.clone(),
            )),
        ));
    }

    // The open-loop schedule: message k is due k / rate after the first.
    let Rate::PerSecond(rate) = args.rate else {
        bail!("rooms mode needs a --rate in messages per second");
    };
    let total = args
        .records
        .unwrap_or((rate * args.duration).round() as u64);
    let first_send_ns = since_ns(start) + 10_000_000;
    let (due_tx, mut due_rx) = mpsc::unbounded_channel::<(usize, u64, u64)>();
    let room_count = rooms.len();
    std::thread::Builder::new()
        .name("loadgen-schedule".to_owned())
        .spawn(move || {
            let interval = 1e9 / rate;
            for k in 0..total {
                let due = first_send_ns + (k as f64 * interval) as u64;
                let now = since_ns(start);
                if due > now {
                    std::thread::sleep(Duration::from_nanos(due - now));
                }
                let room = (k % room_count as u64) as usize;
                if due_tx.send((room, k / room_count as u64, due)).is_err() {
                    return;
                }
            }
        })
        .context("starting the scheduler thread")?;
    let mut sent = RoomsSent {
        per_room: vec![0; rooms.len()],
        ..RoomsSent::default()
    };
    let mut max_behind_ns = 0;
    while let Some((room, seq, due)) = due_rx.recv().await {
        let stamp = Stamp {
            channel: room as u32,
            seq,
            sent_ns: due,
        };
        let message = args
            .message_template
            .replace("{room}", &rooms[room])
            .replace("{text}", &text(stamp, args.size));
        max_behind_ns = max_behind_ns.max(since_ns(start).saturating_sub(due));
        let writer = writers[room].as_ref().expect("every room has a sender");
        let written = writer
            .lock()
            .await
            .write_frame(Frame::text(Payload::Borrowed(message.as_bytes())))
            .await;
        match written {
            Ok(()) => sent.per_room[room] += 1,
            Err(_) => sent.failed += 1,
        }
    }
    sent.messages = sent.per_room.iter().sum();
    sent.max_behind_schedule_ms = max_behind_ns as f64 / 1e6;

    // Each member expects every message sent to its room.
    let expected_total: u64 = receivers.iter().map(|(room, _)| sent.per_room[*room]).sum();
    let drain_until = Instant::now() + Duration::from_millis(args.drain_ms);
    while shared.unique.load(Ordering::Relaxed) < expected_total && Instant::now() < drain_until {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let cpu_end: Option<f64> = pids.iter().map(|&p| cpu_seconds(p)).sum();
    let _ = stop_tx.send(true);
    let mut tallies = Vec::new();
    for (room, receiver) in receivers {
        let mut tally = receiver.await.context("a receiver panicked")?;
        tally.expected = sent.per_room[room];
        tally.lost = tally.expected.saturating_sub(tally.received);
        tallies.push(tally);
    }
    sent.servers_cpu_s = cpu_start.zip(cpu_end).map(|(a, b)| b - a);
    let last = shared.last_receipt_ns.load(Ordering::Relaxed);
    let mut report = Report::new(args);
    report.deliveries = Some(Deliveries::from_tallies(
        &tallies,
        last.saturating_sub(first_send_ns),
    ));
    report.latency_us = Some(Percentiles::of(&shared.latency.merged()));
    if tallies.len() <= PER_CLIENT_LIMIT {
        report.per_client = Some(tallies);
    }
    report.connect = Some(connect_report);
    report.rooms = Some(sent);
    Ok(report)
}

/// Reads frames (answering pings) until told to stop or the connection ends.
async fn receive(
    mut read: WebSocketRead<ReadHalf<Stream>>,
    writer: Writer,
    mut tally: ClientTally,
    room: u32,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> ClientTally {
    let stopped = stop.wait_for(|stop| *stop);
    tokio::pin!(stopped);
    loop {
        let frame = tokio::select! {
            biased;
            _ = &mut stopped => break,
            frame = read_split(&mut read, &writer) => frame,
        };
        // The other members' joins and the like carry no stamp: counted
        // as unstamped.
        if !tally.on_read(frame, room, &shared) {
            break;
        }
    }
    tally
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_room_has_members_on_every_server() {
        let (servers, rooms) = (3, 3);
        let mut seen = vec![vec![0; servers]; rooms];
        for i in 0..30 {
            seen[room_of(i, servers, rooms)][i % servers] += 1;
        }
        assert!(seen.iter().flatten().all(|&n| n > 0), "{seen:?}");
    }

    #[test]
    fn a_message_text_carries_its_stamp_as_json_safe_text() {
        let stamp = Stamp {
            channel: 2,
            seq: 9,
            sent_ns: 77,
        };
        let text = text(stamp, 120);
        assert_eq!(text.len(), 120);
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':'));
        let wrapped = serde_json::json!({ "type": "chat", "text": text }).to_string();
        assert_eq!(payload::parse(wrapped.as_bytes()), Some(stamp));
    }
}
