use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::config::FullPolicy;

fn frame(text: &'static str) -> Frame {
    Frame::new(Kind::Text, Bytes::from_static(text.as_bytes()))
}

/// A hub counting in a registry of its own, and that registry.
fn counted_hub() -> (Hub, crate::metrics::Metrics) {
    let metrics = crate::metrics::Metrics::new();
    let hub = Hub::new();
    hub.count_drops_in(metrics.pipeline("t", "p"));
    (hub, metrics)
}

fn outbox(id: u64, capacity: usize, policy: FullPolicy) -> Arc<Outbox> {
    Arc::new(Outbox::new(id, capacity, policy))
}

#[test]
fn publishes_to_every_subscriber_of_the_channel_only() {
    let (hub, metrics) = counted_hub();
    let (a, b, c) = (
        outbox(1, 8, FullPolicy::DropOldest),
        outbox(2, 8, FullPolicy::DropOldest),
        outbox(3, 8, FullPolicy::DropOldest),
    );
    hub.subscribe("channel1", &a);
    hub.subscribe("channel1", &b);
    hub.subscribe("channel1", &b); // idempotent
    hub.subscribe("channel2", &c);
    assert_eq!(hub.publish("channel1", &frame("hello")), 2);
    assert_eq!(a.take(), Taken::Frames(vec![frame("hello")]));
    assert_eq!(b.take(), Taken::Frames(vec![frame("hello")]));
    assert_eq!(c.take(), Taken::Empty);
    assert_eq!(hub.publish("nobody", &frame("x")), 0);
    let deliveries = metrics.value(r#"deliveries_total{tenant="t",pipeline="p"}"#);
    assert_eq!(deliveries, Some(2.0));
}

#[test]
fn unsubscribe_stops_delivery_and_forgets_empty_channels() {
    let hub = Hub::new();
    let a = outbox(1, 8, FullPolicy::DropOldest);
    hub.subscribe("c", &a);
    hub.unsubscribe("c", 1);
    assert_eq!(hub.subscribers("c"), 0);
    assert_eq!(hub.publish("c", &frame("x")), 0);
    assert_eq!(a.take(), Taken::Empty);
}

#[test]
fn a_full_drop_oldest_queue_keeps_the_newest_and_counts() {
    let (hub, metrics) = counted_hub();
    let slow = outbox(1, 2, FullPolicy::DropOldest);
    let fast = outbox(2, 8, FullPolicy::DropOldest);
    hub.subscribe("c", &slow);
    hub.subscribe("c", &fast);
    for text in ["1", "2", "3", "4"] {
        hub.publish("c", &frame(text));
    }
    assert_eq!(slow.take(), Taken::Frames(vec![frame("3"), frame("4")]));
    assert_eq!(slow.dropped(), 2);
    let dropped =
        metrics.value(r#"messages_dropped_total{tenant="t",pipeline="p",reason="slow_client"}"#);
    assert_eq!(dropped, Some(2.0));
    // The stalled subscriber cost the other one nothing.
    let Taken::Frames(all) = fast.take() else {
        panic!()
    };
    assert_eq!(all.len(), 4);
}

#[test]
fn a_full_close_queue_asks_the_writer_to_close_with_1008() {
    let slow = outbox(1, 1, FullPolicy::Close);
    assert_eq!(slow.push(frame("1")), Pushed::Queued);
    assert_eq!(slow.push(frame("2")), Pushed::Closed);
    assert_eq!(slow.push(frame("3")), Pushed::Closed);
    let Taken::Close(request) = slow.take() else {
        panic!("expected close")
    };
    assert_eq!(request.code, 1008);
}

#[test]
fn payload_bytes_are_shared_not_copied() {
    let hub = Hub::new();
    let (a, b) = (
        outbox(1, 8, FullPolicy::DropOldest),
        outbox(2, 8, FullPolicy::DropOldest),
    );
    hub.subscribe("c", &a);
    hub.subscribe("c", &b);
    hub.publish("c", &frame("shared"));
    let (Taken::Frames(fa), Taken::Frames(fb)) = (a.take(), b.take()) else {
        panic!()
    };
    assert_eq!(fa[0].payload.as_ptr(), fb[0].payload.as_ptr());
}

#[tokio::test]
async fn the_writer_never_misses_a_push_between_take_and_wait() {
    let a = outbox(1, 8, FullPolicy::DropOldest);
    assert_eq!(a.take(), Taken::Empty);
    a.push(frame("late"));
    // The push's wake-up is stored, so this returns at once.
    tokio::time::timeout(std::time::Duration::from_secs(5), a.wait())
        .await
        .expect("wake-up was lost");
    assert_eq!(a.take(), Taken::Frames(vec![frame("late")]));
}

/// Whether `outbox`'s writer has a wake-up waiting (consumes it).
fn woken(outbox: &Outbox) -> bool {
    use futures_util::FutureExt as _;
    outbox.wait().now_or_never().is_some()
}

#[test]
fn a_deferred_batch_wakes_each_writer_once_at_the_end() {
    let hub = Hub::new();
    let (a, b) = (
        outbox(1, 8, FullPolicy::DropOldest),
        outbox(2, 8, FullPolicy::DropOldest),
    );
    hub.subscribe("c", &a);
    hub.subscribe("c", &b);
    let mut wakeups = Wakeups::default();
    for text in ["1", "2", "3"] {
        assert_eq!(hub.publish_deferred("c", &frame(text), &mut wakeups), 2);
    }
    assert!(!woken(&a) && !woken(&b), "nobody is woken mid-batch");
    // One entry per writer: only the push onto an empty queue needs a wake.
    assert_eq!(wakeups.0.len(), 2);
    wakeups.wake_all();
    assert!(woken(&a) && woken(&b));
    let mut frames = std::collections::VecDeque::new();
    assert_eq!(a.take_into(&mut frames), Taken::Frames(Vec::new()));
    assert_eq!(frames, [frame("1"), frame("2"), frame("3")]);
    assert_eq!(a.take_into(&mut frames), Taken::Empty);

    // Dropped without `wake_all` (a batch cut short): still woken.
    {
        let mut wakeups = Wakeups::default();
        hub.publish_deferred("c", &frame("4"), &mut wakeups);
    }
    assert!(woken(&a));
    // Frames the writer has not emptied yet: the new ones are appended.
    assert_eq!(a.take_into(&mut frames), Taken::Frames(Vec::new()));
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[3], frame("4"));
}

#[test]
fn a_deferred_push_that_closes_the_connection_wakes_its_writer() {
    let slow = outbox(1, 1, FullPolicy::Close);
    assert_eq!(slow.push_quiet(frame("1")), (Pushed::Queued, true));
    assert!(!woken(&slow));
    assert_eq!(slow.push_quiet(frame("2")), (Pushed::Closed, true));
    assert_eq!(slow.push_quiet(frame("3")), (Pushed::Closed, false));
}

#[test]
fn a_connection_closed_for_a_full_queue_is_counted_once() {
    let (hub, metrics) = counted_hub();
    let slow = outbox(1, 1, FullPolicy::Close);
    hub.subscribe("c", &slow);
    for text in ["1", "2", "3", "4"] {
        hub.publish("c", &frame(text));
    }
    let Taken::Close(request) = slow.take() else {
        panic!("expected close")
    };
    assert_eq!(request.code, 1008);
    let closed = metrics.value(r#"ws_errors_total{tenant="t",pipeline="p",type="slow_client"}"#);
    assert_eq!(closed, Some(1.0));
}

fn record(offset: i64) -> Frame {
    let origin = Origin {
        topic: Arc::from("t"),
        partition: 0,
        offset,
        last: true,
    };
    Frame::record(Kind::Text, Bytes::from(offset.to_string()), origin)
}

fn offsets(taken: Taken) -> Vec<i64> {
    match taken {
        Taken::Frames(frames) => frames.iter().map(|f| f.origin().unwrap().offset).collect(),
        other => panic!("expected frames, got {other:?}"),
    }
}

/// A resuming client: what it missed goes first, live records wait, and
/// those it has (below the floor) never reach it, held or pushed later.
#[test]
fn a_held_outbox_sends_what_was_missed_first_and_no_record_twice() {
    let hub = Hub::new();
    let client = outbox(1, 8, FullPolicy::DropOldest);
    client.hold();
    hub.subscribe("c", &client);
    for offset in [5, 6, 7] {
        hub.publish("c", &record(offset));
    }
    assert_eq!(client.take(), Taken::Empty, "live records wait while held");
    client.push_ahead(record(3)).unwrap();
    client.push_ahead(record(4)).unwrap();
    client.push_ahead(record(5)).unwrap();
    assert_eq!(offsets(client.take()), [3, 4, 5]);
    assert_eq!(client.take(), Taken::Empty);
    client.release(vec![(Arc::from("t"), 0, 6)]);
    assert_eq!(offsets(client.take()), [6, 7], "5 was delivered ahead");
    assert_eq!(
        client.push(record(5)),
        Pushed::Skipped,
        "a lagging process's copy"
    );
    assert_eq!(client.push(record(8)), Pushed::Queued);
    assert_eq!(offsets(client.take()), [8]);
}

/// Held live records are never dropped silently: a full queue closes the
/// connection (the client's position is still good), and what was held is
/// not sent before the close.
#[test]
fn a_held_outbox_that_fills_closes_instead_of_dropping() {
    let client = outbox(1, 2, FullPolicy::DropOldest);
    client.hold();
    assert_eq!(client.push(record(1)), Pushed::Queued);
    assert_eq!(client.push(record(2)), Pushed::Queued);
    assert_eq!(client.push(record(3)), Pushed::Closed);
    match client.take() {
        Taken::Close(request) => assert_eq!(request.code, 1013),
        other => panic!("expected a close, got {other:?}"),
    }
    let slow = outbox(2, 1, FullPolicy::DropOldest);
    slow.hold();
    slow.push_ahead(record(1)).unwrap();
    assert_eq!(slow.push_ahead(record(2)), Err(AheadRefused::Full));
}
