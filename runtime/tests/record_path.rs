//! The record path with real plugins and the real hub (no Kafka here; the
//! end-to-end tests add the broker): routing, framing, transforms, and each
//! poison policy.

mod support;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sluice_runtime::config::FullPolicy;
use sluice_runtime::config::{Format, PoisonPolicy};
use sluice_runtime::hub::{Frame, Hub, Kind, Outbox, Taken};
use sluice_runtime::kafka::BatchVerdict as Verdict;
use sluice_runtime::metrics::Metrics;
use sluice_runtime::pipeline::RecordPath;
use sluice_runtime::plugin::Role;
use sluice_runtime::record::Record;

fn subscriber(hub: &Hub, id: u64, channel: &str) -> Arc<Outbox> {
    let outbox = Arc::new(Outbox::new(id, 64, FullPolicy::DropOldest));
    hub.subscribe(channel, &outbox);
    outbox
}

fn record(key: &[u8], payload: &[u8], offset: i64) -> Record {
    Record {
        offset,
        ..Record::new("in", Some(key), payload)
    }
}

/// A pipeline `p` of tenant `t`'s series in `metrics` (0 when absent):
/// `name` plus any labels after those two.
fn count(metrics: &Metrics, name: &str, labels: &str) -> f64 {
    let series = format!("{name}{{tenant=\"t\",pipeline=\"p\"{labels}}}");
    metrics.value(&series).unwrap_or(0.0)
}

fn frames(outbox: &Outbox) -> Vec<Frame> {
    match outbox.take() {
        Taken::Frames(frames) => frames,
        Taken::Empty => Vec::new(),
        Taken::Close(c) => panic!("unexpected close {c:?}"),
    }
}

#[test]
fn key_router_delivers_each_record_to_its_channel_bytes_unchanged() {
    let hub = Arc::new(Hub::new());
    let one = subscriber(&hub, 1, "channel1");
    let two = subscriber(&hub, 2, "channel2");
    let router = support::plugins::instance("key-router", Role::Router, "{}");
    let metrics = Metrics::new();
    let mut path = RecordPath::new(
        "p",
        vec![],
        Some(router),
        hub.clone(),
        Format::Auto,
        PoisonPolicy::Skip,
        None,
    )
    .with_metrics(metrics.pipeline("t", "p"));
    let batch = [
        record(b"channel1", br#"{"n":1}"#, 0),
        record(b"channel2", b"\xff\x00binary", 1),
        record(b"channel1", br#"{"n":2}"#, 2),
        record(b"nobody", b"x", 3),
    ];
    assert_eq!(path.on_batch(&batch), Verdict::Continue);
    let got = frames(&one);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].payload, Bytes::from_static(br#"{"n":1}"#));
    assert_eq!(got[0].kind, Kind::Text);
    assert_eq!(got[1].payload, Bytes::from_static(br#"{"n":2}"#));
    let got = frames(&two);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0].kind,
        Kind::Binary,
        "non-UTF-8 payload goes as binary in auto format"
    );
    // Each of the 4 records is counted once: routed, or dropped unrouted.
    assert_eq!(count(&metrics, "records_routed_total", ""), 3.0);
    let unrouted = count(
        &metrics,
        "messages_dropped_total",
        ",reason=\"no_subscriber\"",
    );
    assert_eq!(unrouted, 1.0);
    assert_eq!(
        count(&metrics, "deliveries_total", ""),
        0.0,
        "the hub counts in its own"
    );
}

#[test]
fn all_channel_subscribers_get_every_record_once() {
    let hub = Arc::new(Hub::new());
    let all = subscriber(&hub, 1, "*");
    let router = support::plugins::instance("key-router", Role::Router, r#"{"all_channel":"*"}"#);
    let mut path = RecordPath::new(
        "p",
        vec![],
        Some(router),
        hub.clone(),
        Format::Auto,
        PoisonPolicy::Skip,
        None,
    );
    path.on_batch(&[record(b"a", b"1", 0), record(b"*", b"2", 1)]);
    assert_eq!(
        frames(&all).len(),
        2,
        "a record keyed `*` is not delivered twice"
    );
}

#[test]
fn poison_records_are_skipped_and_counted_or_stop_the_pipeline() {
    let hub = Arc::new(Hub::new());
    let one = subscriber(&hub, 1, "channel1");
    let router = support::plugins::instance("key-router", Role::Router, "{}");
    let metrics = Metrics::new();
    let mut path = RecordPath::new(
        "p",
        vec![],
        Some(router),
        hub.clone(),
        Format::Text,
        PoisonPolicy::Skip,
        None,
    )
    .with_metrics(metrics.pipeline("t", "p"));
    let batch = [
        record(b"\xff\xfe", b"bad key", 0),
        record(b"channel1", b"\xff not utf-8", 1),
        record(b"channel1", b"fine", 2),
    ];
    assert_eq!(path.on_batch(&batch), Verdict::Continue);
    assert_eq!(frames(&one).len(), 1);
    assert_eq!(count(&metrics, "records_poisoned_total", ""), 2.0);
    let skipped = count(&metrics, "messages_dropped_total", ",reason=\"poison\"");
    assert_eq!(skipped, 2.0);

    let router = support::plugins::instance("key-router", Role::Router, "{}");
    let mut path = RecordPath::new(
        "p",
        vec![],
        Some(router),
        hub,
        Format::Auto,
        PoisonPolicy::Stop,
        None,
    );
    let Verdict::Stop(reason) = path.on_batch(&batch) else {
        panic!("expected stop")
    };
    assert!(
        reason.contains("in/0@0") && reason.contains("key is not UTF-8"),
        "{reason}"
    );
}

#[test]
fn a_key_that_is_not_a_channel_name_is_poison() {
    // The channel-name rule the admin API and subscriptions apply: 1-255
    // bytes, no control characters.
    let hub = Arc::new(Hub::new());
    let long = "x".repeat(256);
    let listeners = [
        subscriber(&hub, 1, "b\0"),
        subscriber(&hub, 2, &long),
        subscriber(&hub, 3, "ok"),
    ];
    let router = support::plugins::instance("key-router", Role::Router, "{}");
    let mut path = RecordPath::new(
        "p",
        vec![],
        Some(router),
        hub,
        Format::Text,
        PoisonPolicy::Stop,
        None,
    );
    let stop = |verdict| match verdict {
        Verdict::Stop(reason) => reason,
        other => panic!("expected stop, got {other:?}"),
    };
    let reason = stop(path.on_batch(&[record(b"b\0", b"nul", 0)]));
    assert!(
        reason.contains(
            "key is not a channel name: channel name \"b\\0\" contains control character"
        ),
        "{reason}"
    );
    let reason = stop(path.on_batch(&[record(long.as_bytes(), b"long", 1)]));
    assert!(
        reason.contains("channel name is 256 bytes (at most 255)"),
        "{reason}"
    );
    let reason = stop(path.on_batch(&[record(b"", b"empty", 2)]));
    assert!(reason.contains("channel name is empty"), "{reason}");
    assert_eq!(
        path.on_batch(&[record(b"ok", b"fine", 3)]),
        Verdict::Continue
    );
    let got: Vec<usize> = listeners.iter().map(|l| frames(l).len()).collect();
    assert_eq!(got, [0, 0, 1]);
}

#[test]
fn dead_letter_gets_the_record_and_the_reason_and_its_failure_stops() {
    let hub = Arc::new(Hub::new());
    let envelope = support::plugins::instance("envelope", Role::Transformer, "{}");
    let sent = Arc::new(Mutex::new(Vec::new()));
    let log = sent.clone();
    let mut path = RecordPath::new(
        "p",
        vec![envelope],
        None,
        hub.clone(),
        Format::Auto,
        PoisonPolicy::DeadLetter("dlq".into()),
        Some(Box::new(move |r: &Record, reason: &str| {
            log.lock().unwrap().push((r.offset, reason.to_owned()));
            Ok(())
        })),
    );
    let everyone = subscriber(&hub, 1, "*");
    let good = br#"{"messageType":"USER","content":"hi","timestamp":"2024-01-01T12:00:00Z"}"#;
    assert_eq!(
        path.on_batch(&[record(b"k", b"not json", 7), record(b"k", good, 8)]),
        Verdict::Continue
    );
    let sent = sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, 7);
    assert!(
        sent[0].1.contains("rejected by a transform"),
        "{}",
        sent[0].1
    );
    assert_eq!(
        frames(&everyone).len(),
        1,
        "the valid envelope is broadcast (no router)"
    );

    let envelope = support::plugins::instance("envelope", Role::Transformer, "{}");
    let mut failing = RecordPath::new(
        "p",
        vec![envelope],
        None,
        hub,
        Format::Auto,
        PoisonPolicy::DeadLetter("dlq".into()),
        Some(Box::new(|_: &Record, _: &str| {
            Err("broker unreachable".to_owned())
        })),
    );
    let Verdict::Stop(reason) = failing.on_batch(&[record(b"k", b"not json", 9)]) else {
        panic!()
    };
    assert!(reason.contains("broker unreachable"), "{reason}");
}

#[test]
fn a_router_trap_poisons_its_batch_and_the_next_batch_is_routed() {
    let hub = Arc::new(Hub::new());
    let one = subscriber(&hub, 1, "channel1");
    let faults = support::plugins::instance("faults", Role::Router, "{}");
    let metrics = Metrics::new();
    let mut path = RecordPath::new(
        "p",
        vec![],
        Some(faults),
        hub,
        Format::Auto,
        PoisonPolicy::Skip,
        None,
    )
    .with_metrics(metrics.pipeline("t", "p"));
    assert_eq!(
        path.on_batch(&[record(b"trap", b"x", 0), record(b"channel1", b"lost", 1)]),
        Verdict::Continue
    );
    assert_eq!(count(&metrics, "records_poisoned_total", ""), 2.0);
    path.on_batch(&[record(b"channel1", b"y", 2)]);
    assert_eq!(frames(&one).len(), 1);
}
