//! The `json-router` plugin, built and loaded into the real host: channels
//! from a JSON pointer into the payload or from a record header, with a
//! prefix, a fallback, unusable values dropped, and bad config refused.

mod support;

use bytes::Bytes;
use sluice_runtime::plugin::{FaultKind, LoadedPlugin, PluginError, PluginInstance, Role, Route};
use sluice_runtime::record::Record;

fn load(config: &str) -> Result<LoadedPlugin, PluginError> {
    support::plugins::load("json-router", Role::Router, config)
}

fn start(config: &str) -> PluginInstance {
    load(config)
        .expect("load json-router")
        .instantiate()
        .expect("instantiate")
}

fn init_error(config: &str) -> String {
    match load(config).err().expect("the config must be refused").kind {
        FaultKind::Init(reason) => reason,
        other => panic!("expected an init error, got {other:?}"),
    }
}

fn payload(body: &str) -> Record {
    Record::new("t", Some(b"the-key"), body.as_bytes())
}

fn with_header(name: &str, value: &[u8]) -> Record {
    Record {
        headers: vec![(name.into(), Bytes::copy_from_slice(value))],
        ..Record::new("t", Some(b"the-key"), br#"{"room":"from-payload"}"#)
    }
}

/// The channels of each route; the key channel is never used.
fn route(instance: &mut PluginInstance, records: Vec<Record>) -> Vec<Vec<String>> {
    let count = records.len();
    let routes: Vec<Route> = instance
        .route_batch(records.into())
        .expect("route the batch");
    assert_eq!(routes.len(), count);
    routes
        .into_iter()
        .map(|r| {
            assert!(!r.key_channel, "json-router never routes by key");
            r.channels
        })
        .collect()
}

#[test]
fn a_pointer_names_one_channel_per_scalar_and_several_for_an_array() {
    let mut router = start(r#"{"pointer":"/user/room"}"#);
    let routes = route(
        &mut router,
        vec![
            payload(r#"{"user":{"room":"lobby"}}"#),
            payload(r#"{"user":{"room":42}}"#),
            payload(r#"{"user":{"room":true}}"#),
            payload(r#"{"user":{"room":["a","b","a",7]}}"#),
        ],
    );
    assert_eq!(
        routes,
        [vec!["lobby"], vec!["42"], vec!["true"], vec!["a", "b", "7"]]
    );
}

#[test]
fn pointers_follow_rfc_6901_escapes_and_the_empty_pointer_is_the_whole_payload() {
    let mut escaped = start(r#"{"pointer":"/a~1b/c~0d"}"#);
    assert_eq!(
        route(&mut escaped, vec![payload(r#"{"a/b":{"c~d":"x"}}"#)]),
        [vec!["x"]]
    );
    let mut whole = start(r#"{"pointer":""}"#);
    assert_eq!(
        route(&mut whole, vec![payload(r#""lobby""#)]),
        [vec!["lobby"]]
    );
    let mut index = start(r#"{"pointer":"/rooms/1"}"#);
    assert_eq!(
        route(&mut index, vec![payload(r#"{"rooms":["a","b"]}"#)]),
        [vec!["b"]]
    );
}

#[test]
fn records_without_a_usable_channel_are_dropped_without_failing_the_batch() {
    let mut router = start(r#"{"pointer":"/room","prefix":"p."}"#);
    // 2 bytes of prefix + 254 = 256 bytes: one too many.
    let too_long = format!(r#"{{"room":"{}"}}"#, "x".repeat(254));
    let too_many = format!(
        r#"{{"room":[{}]}}"#,
        (0..1025)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let unusable = [
        r#"{"other":"x"}"#,
        "not json",
        "",
        r#"{"room":null}"#,
        r#"{"room":{"id":1}}"#,
        r#"{"room":[]}"#,
        r#"{"room":["a",{"id":1}]}"#,
        r#"{"room":""}"#,
        r#"{"room":["a",""]}"#,
        r#"{"room":"a\nb"}"#,
        &too_long,
        &too_many,
    ];
    let mut records: Vec<Record> = unusable.iter().map(|p| payload(p)).collect();
    records.push(payload(r#"{"room":"ok"}"#));
    let routes = route(&mut router, records);
    let (dropped, last) = routes.split_at(unusable.len());
    for (body, channels) in unusable.iter().zip(dropped) {
        assert!(channels.is_empty(), "{body:.40} routed to {channels:?}");
    }
    assert_eq!(last, [vec!["p.ok"]]);
    // 1024 channels is the host's limit, and allowed.
    let most = format!(
        r#"{{"room":[{}]}}"#,
        (0..1024)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    assert_eq!(route(&mut router, vec![payload(&most)])[0].len(), 1024);
}

#[test]
fn the_prefix_goes_before_every_channel_but_not_the_fallback() {
    let mut router = start(r#"{"pointer":"/room","prefix":"rooms.","fallback":"unrouted"}"#);
    let routes = route(
        &mut router,
        vec![
            payload(r#"{"room":"a"}"#),
            payload(r#"{"room":["a",2]}"#),
            payload("{}"),
        ],
    );
    assert_eq!(
        routes,
        [
            vec!["rooms.a"],
            vec!["rooms.a", "rooms.2"],
            vec!["unrouted"]
        ]
    );
}

#[test]
fn on_missing_fallback_sends_unroutable_records_to_the_fallback_channel() {
    let mut router =
        start(r#"{"pointer":"/room","on_missing":"fallback","fallback":"dead-letters"}"#);
    let routes = route(
        &mut router,
        vec![payload("not json"), payload(r#"{"room":"a"}"#)],
    );
    assert_eq!(routes, [vec!["dead-letters"], vec!["a"]]);
    let mut dropping = start(r#"{"pointer":"/room","on_missing":"drop"}"#);
    assert_eq!(
        route(&mut dropping, vec![payload("not json")]),
        [Vec::<String>::new()]
    );
}

#[test]
fn a_header_names_the_channel_and_the_payload_is_ignored() {
    let mut router = start(r#"{"header":"channel","prefix":"h."}"#);
    let routes = route(
        &mut router,
        vec![
            with_header("channel", b"room1"),
            with_header("other", b"room1"),
            with_header("channel", b"\xff\xfe"),
            with_header("channel", b""),
        ],
    );
    assert_eq!(routes, [vec!["h.room1"], vec![], vec![], vec![]]);
    let mut fallback = start(r#"{"header":"channel","fallback":"nowhere"}"#);
    assert_eq!(
        route(&mut fallback, vec![with_header("channel", b"\xff")]),
        [vec!["nowhere"]]
    );
}

#[test]
fn bad_config_is_refused_at_load_with_a_clear_reason() {
    assert_eq!(
        init_error("{}"),
        "set one of `pointer` (a JSON pointer into the payload, e.g. \"/user/room\") or `header` (a record header name)"
    );
    assert_eq!(
        init_error(r#"{"pointer":"/a","header":"h"}"#),
        "set only one of `pointer` and `header`, not both"
    );
    assert_eq!(
        init_error(r#"{"pointer":"user/room"}"#),
        r#"pointer "user/room" must start with "/" (an RFC 6901 JSON pointer, e.g. "/user/room")"#
    );
    assert_eq!(
        init_error(r#"{"pointer":"/a~2"}"#),
        r#"pointer "/a~2" has a "~" that is not "~0" or "~1" (RFC 6901 escapes)"#
    );
    assert_eq!(init_error(r#"{"header":""}"#), "header must not be empty");
    assert_eq!(
        init_error(r#"{"header":"h","on_missing":"fallback"}"#),
        "`on_missing = \"fallback\"` needs a `fallback` channel name"
    );
    assert_eq!(
        init_error(r#"{"header":"h","on_missing":"drop","fallback":"x"}"#),
        "`fallback` is set but `on_missing = \"drop\"`: remove one of them"
    );
    assert_eq!(
        init_error(r#"{"header":"h","fallback":""}"#),
        "fallback: channel name is empty"
    );
    assert_eq!(
        init_error(r#"{"header":"h","prefix":"a\tb"}"#),
        r#"prefix "a\tb" contains control character '\t'"#
    );
    let reason = init_error(r#"{"header":"h","on_missing":"ignore"}"#);
    assert!(
        reason
            .starts_with("invalid config: unknown variant `ignore`, expected `drop` or `fallback`"),
        "{reason}"
    );
    let reason = init_error(r#"{"pointr":"/a"}"#);
    assert!(
        reason.starts_with("invalid config: unknown field `pointr`"),
        "{reason}"
    );
}
