//! The `mock` handler plugin, built and loaded into the real host: seed
//! 003's mock-server handlers (echo, static, pattern rules with templates,
//! JSON-RPC 2.0, rooms, scheduled and delayed messages) driven through
//! on_open / on_message / on_tick / on_close with exact expected actions.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sluice_runtime::plugin::{
    Action, Connection, FaultKind, FrameKind, Message, PluginInstance, Role,
};

/// An action with its message decoded, so whole action lists compare.
#[derive(Debug, PartialEq)]
enum Out {
    Reply(Body),
    ReplyLater(u32, Body),
    Send(u64, Body),
    Join(String),
    Leave(String),
    Broadcast(String, Body),
    Close(u16, String),
}

/// A message payload: JSON text parsed, other text as it is, or bytes.
#[derive(Debug, PartialEq)]
enum Body {
    Json(Value),
    Text(String),
    Binary(Vec<u8>),
}

fn body(msg: Message) -> Body {
    match msg.kind {
        FrameKind::Binary => Body::Binary(msg.payload),
        FrameKind::Text => {
            let text = String::from_utf8(msg.payload).expect("text frames are UTF-8");
            match serde_json::from_str::<Value>(&text) {
                Ok(value) if value.is_object() || value.is_array() => Body::Json(value),
                _ => Body::Text(text),
            }
        }
    }
}

fn outs(actions: Vec<Action>) -> Vec<Out> {
    actions
        .into_iter()
        .map(|action| match action {
            Action::Reply(m) => Out::Reply(body(m)),
            Action::ReplyLater((delay, m)) => Out::ReplyLater(delay, body(m)),
            Action::Send((id, m)) => Out::Send(id, body(m)),
            Action::Join(c) => Out::Join(c),
            Action::Leave(c) => Out::Leave(c),
            Action::Broadcast((c, m)) => Out::Broadcast(c, body(m)),
            Action::Close((code, reason)) => Out::Close(code, reason),
            Action::Publish(_) => panic!("mock never publishes"),
        })
        .collect()
}

fn start(config: Value) -> PluginInstance {
    support::plugins::instance("mock", Role::Handler, &config.to_string())
}

/// [`start`], with the host answering `presence` calls from `FortyOne`.
fn start_with_presence(config: Value) -> PluginInstance {
    let loaded = support::plugins::load("mock", Role::Handler, &config.to_string())
        .unwrap_or_else(|e| panic!("load mock: {e}"));
    loaded.answer_presence_with(std::sync::Arc::new(FortyOne));
    loaded.instantiate().expect("instantiate")
}

fn init_error(config: Value) -> String {
    let refused = support::plugins::load("mock", Role::Handler, &config.to_string())
        .err()
        .unwrap_or_else(|| panic!("the config must be refused: {config}"));
    match refused.kind {
        FaultKind::Init(reason) => reason,
        other => panic!("expected an init error, got {other:?}"),
    }
}

use support::plugins::text;

fn connection(id: u64) -> Connection {
    support::plugins::connection(id, "/mock")
}

fn open(plugin: &mut PluginInstance, id: u64) -> Vec<Out> {
    outs(plugin.on_open(&connection(id)).expect("on_open"))
}

fn send(plugin: &mut PluginInstance, id: u64, payload: &str) -> Vec<Out> {
    outs(plugin.on_message(id, &text(payload)).expect("on_message"))
}

fn close(plugin: &mut PluginInstance, id: u64) -> Vec<Out> {
    outs(plugin.on_close(id, 1000, "bye").expect("on_close"))
}

fn tick(plugin: &mut PluginInstance, now_ms: u64, connections: &[u64]) -> Vec<Out> {
    outs(plugin.on_tick(now_ms, connections).expect("on_tick"))
}

/// The JSON of a single reply.
fn reply_json(outs: Vec<Out>) -> Value {
    match <[Out; 1]>::try_from(outs) {
        Ok([Out::Reply(Body::Json(value))]) => value,
        other => panic!("expected one JSON reply, got {other:?}"),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn is_uuid_v4(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    lengths == [8, 4, 4, 4, 12]
        && text
            .chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        && groups[2].starts_with('4')
        && groups[3].starts_with(['8', '9', 'a', 'b'])
}

fn is_rfc3339_ms(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

// ---------------------------------------------------------------- echo

#[test]
fn echo_sends_text_and_binary_back_unchanged() {
    let mut plugin = start(json!({ "kind": "echo" }));
    assert_eq!(open(&mut plugin, 1), []);
    assert_eq!(
        send(&mut plugin, 1, "hello"),
        [Out::Reply(Body::Text("hello".into()))]
    );
    assert_eq!(
        send(&mut plugin, 1, r#"{"a":1}"#),
        [Out::Reply(Body::Json(json!({ "a": 1 })))]
    );
    let binary = Message {
        kind: FrameKind::Binary,
        payload: vec![0, 1, 2, 3, 255],
        key: None,
        headers: Vec::new(),
    };
    assert_eq!(
        outs(plugin.on_message(1, &binary).unwrap()),
        [Out::Reply(Body::Binary(vec![0, 1, 2, 3, 255]))]
    );
    // The text is the exact bytes received.
    let actions = plugin
        .on_message(1, &text(r#"{ "spaced" :  true }"#))
        .unwrap();
    let [Action::Reply(msg)] = actions.as_slice() else {
        panic!("one reply")
    };
    assert_eq!(msg.payload, br#"{ "spaced" :  true }"#);
    assert_eq!(close(&mut plugin, 1), []);
}

// -------------------------------------------------------------- static

#[test]
fn static_answers_connect_every_message_and_close() {
    let mut plugin = start(json!({
        "kind": "static",
        "on_connect": r#"{"type": "connected", "server": "mockforge"}"#,
        "on_message": { "type": "ack", "received": true, "you": "{{connection.id}}" },
        "on_close": { "type": "goodbye", "to": "conn-{{connection.id}}" },
    }));
    // A string is sent verbatim as text.
    let actions = plugin.on_open(&connection(7)).unwrap();
    let [Action::Reply(greeting)] = actions.as_slice() else {
        panic!("one reply")
    };
    assert_eq!(greeting.kind, FrameKind::Text);
    assert_eq!(
        greeting.payload,
        br#"{"type": "connected", "server": "mockforge"}"#
    );
    let ack = Out::Reply(Body::Json(
        json!({ "type": "ack", "received": true, "you": 7 }),
    ));
    assert_eq!(send(&mut plugin, 7, "anything"), [ack]);
    assert_eq!(send(&mut plugin, 7, r#"{"x":1}"#).len(), 1);
    assert_eq!(
        close(&mut plugin, 7),
        [Out::Reply(Body::Json(
            json!({ "type": "goodbye", "to": "conn-7" })
        ))]
    );
}

#[test]
fn static_without_responses_says_nothing() {
    let mut plugin = start(json!({ "kind": "static" }));
    assert_eq!(open(&mut plugin, 1), []);
    assert_eq!(send(&mut plugin, 1, "hi"), []);
    assert_eq!(close(&mut plugin, 1), []);
}

// ------------------------------------------------------------- pattern

fn seed_rules() -> Value {
    json!({
        "kind": "pattern",
        "rules": [
            { "match": { "type": "ping" },
              "response": { "type": "pong", "timestamp": "{{now}}" } },
            { "match": { "type": "subscribe", "channel": "*" },
              "response": { "type": "subscribed", "channel": "{{message.channel}}", "id": "{{uuid}}" } },
            { "match": { "type": "message" },
              "response": { "type": "ack", "id": "{{message.id}}", "processed": true } },
            { "match": { "type": "ping", "extra": true },
              "response": "never: the first rule already matches" },
        ],
    })
}

#[test]
fn pattern_first_matching_rule_wins() {
    let mut plugin = start(seed_rules());
    let pong = reply_json(send(&mut plugin, 1, r#"{"type":"ping","extra":true}"#));
    assert_eq!(pong["type"], "pong");
    let stamp = pong["timestamp"].as_str().expect("a string");
    assert!(is_rfc3339_ms(stamp), "{stamp}");

    let ack = reply_json(send(&mut plugin, 1, r#"{"type":"message","id":42}"#));
    assert_eq!(ack, json!({ "type": "ack", "id": 42, "processed": true }));
    // No rule, no no_match: no reply.
    assert_eq!(send(&mut plugin, 1, r#"{"type":"other"}"#), []);
}

#[test]
fn pattern_star_needs_the_field_with_any_value() {
    let mut plugin = start(seed_rules());
    for channel in [json!("orders"), json!(7), json!(null), json!({ "a": [1] })] {
        let msg = json!({ "type": "subscribe", "channel": channel });
        let reply = reply_json(send(&mut plugin, 1, &msg.to_string()));
        assert_eq!(reply["type"], "subscribed");
        assert_eq!(reply["channel"], channel, "the value itself, type kept");
        assert!(is_uuid_v4(reply["id"].as_str().unwrap()), "{reply}");
    }
    assert_eq!(send(&mut plugin, 1, r#"{"type":"subscribe"}"#), []);
    let a = reply_json(send(&mut plugin, 1, r#"{"type":"subscribe","channel":1}"#));
    let b = reply_json(send(&mut plugin, 1, r#"{"type":"subscribe","channel":1}"#));
    assert_ne!(a["id"], b["id"], "a fresh uuid per message");
}

#[test]
fn pattern_nested_tables_arrays_and_numbers() {
    let mut plugin = start(json!({
        "kind": "pattern",
        "rules": [
            { "match": { "user": { "role": "admin", "id": "*" } }, "response": "admin" },
            { "match": { "tags": ["a", "*"] }, "response": "tags" },
            { "match": { "n": 1 }, "response": "one" },
            { "match": {}, "response": "any object" },
        ],
        "no_match": "not an object",
    }));
    let reply = |plugin: &mut PluginInstance, msg: &str| match send(plugin, 1, msg).as_slice() {
        [Out::Reply(Body::Text(text))] => text.clone(),
        other => panic!("{msg}: {other:?}"),
    };
    assert_eq!(
        reply(
            &mut plugin,
            r#"{"user":{"role":"admin","id":5,"name":"x"},"more":1}"#
        ),
        "admin"
    );
    assert_eq!(
        reply(&mut plugin, r#"{"user":{"role":"admin"}}"#),
        "any object"
    );
    assert_eq!(
        reply(&mut plugin, r#"{"user":{"role":"guest","id":5}}"#),
        "any object"
    );
    assert_eq!(
        reply(&mut plugin, r#"{"user":"admin"}"#),
        "any object",
        "a table only matches an object"
    );
    assert_eq!(reply(&mut plugin, r#"{"tags":["a",{"b":2}]}"#), "tags");
    assert_eq!(reply(&mut plugin, r#"{"tags":["a"]}"#), "any object");
    assert_eq!(
        reply(&mut plugin, r#"{"tags":["a","b","c"]}"#),
        "any object"
    );
    assert_eq!(reply(&mut plugin, r#"{"n":1.0}"#), "one");
    assert_eq!(reply(&mut plugin, r#"{"n":"1"}"#), "any object");
    for not_object in ["[1,2]", "\"ping\"", "42", "ping", "{not json"] {
        assert_eq!(
            reply(&mut plugin, not_object),
            "not an object",
            "{not_object}"
        );
    }
}

/// What the host's presence answers in these tests: a pipeline with 41
/// connections (on every node), which no instance could count itself.
struct FortyOne;

impl sluice_runtime::plugin::Presence for FortyOne {
    fn connection_count(&self) -> u32 {
        41
    }
    fn channel_count(&self, _: &str) -> u32 {
        0
    }
    fn channel_members(&self, _: &str, _: u32) -> Vec<sluice_runtime::plugin::PresenceMember> {
        Vec::new()
    }
}

#[test]
fn pattern_templates_keep_types_whole_and_stringify_inside_text() {
    let mut plugin = start_with_presence(json!({
        "kind": "pattern",
        "rules": [{
            "match": { "type": "t" },
            "response": {
                "id": "{{message.id}}",
                "flag": "{{message.flag}}",
                "nested": "{{message.a.b}}",
                "second": "{{message.items.1.name}}",
                "object": "{{message.a}}",
                "missing": "{{message.nope}}",
                "deep_missing": "{{message.id.x}}",
                "whole": "{{message}}",
                "line": "id={{message.id}} flag={{message.flag}} a={{message.a}} missing=[{{message.nope}}] name={{message.items.1.name}}",
                "list": ["{{message.id}}", "x{{message.id}}", 3],
                "conn": "{{connection.id}}",
                "count": "{{connection_count}}",
                "ms": "{{now_ms}}",
                "fixed": { "deep": [true, null] },
            },
        }],
        "no_match": { "echo": "{{message}}", "said": "you said: {{message}}" },
    }));
    open(&mut plugin, 3);
    open(&mut plugin, 4);
    let msg = json!({
        "type": "t", "id": 17, "flag": false,
        "a": { "b": "c" }, "items": [{ "name": "first" }, { "name": "second" }],
    });
    let before = now_ms();
    let reply = reply_json(send(&mut plugin, 3, &msg.to_string()));
    let after = now_ms();
    let ms = reply["ms"].as_u64().expect("now_ms is a number");
    assert!(
        (before..=after).contains(&ms),
        "{ms} not in {before}..={after}"
    );
    assert_eq!(
        reply,
        json!({
            "id": 17,
            "flag": false,
            "nested": "c",
            "second": "second",
            "object": { "b": "c" },
            "missing": null,
            "deep_missing": null,
            "whole": msg,
            "line": r#"id=17 flag=false a={"b":"c"} missing=[] name=second"#,
            "list": [17, "x17", 3],
            "conn": 3,
            "count": 41,
            "ms": ms,
            "fixed": { "deep": [true, null] },
        })
    );
    // A message that is not JSON is its text.
    assert_eq!(
        reply_json(send(&mut plugin, 3, "hello there")),
        json!({ "echo": "hello there", "said": "you said: hello there" })
    );
    assert_eq!(
        reply_json(send(&mut plugin, 3, "[1,2]")),
        json!({ "echo": [1, 2], "said": "you said: [1,2]" })
    );
}

#[test]
fn pattern_random_values_stay_within_their_bounds() {
    let mut plugin = start(json!({
        "kind": "pattern",
        "rules": [{
            "match": {},
            "response": {
                "int": "{{random_int 3 5}}",
                "neg": "{{random_int -2 -1}}",
                "float": "{{random_float 40000 50000}}",
                "text": "n={{random_int 7 7}}",
                "uuid": "{{uuid}}",
            },
        }],
    }));
    let mut ints = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let reply = reply_json(send(&mut plugin, 1, "{}"));
        let int = reply["int"].as_i64().expect("an integer");
        assert!((3..=5).contains(&int), "{reply}");
        ints.insert(int);
        let neg = reply["neg"].as_i64().expect("an integer");
        assert!((-2..=-1).contains(&neg), "{reply}");
        let float = reply["float"].as_f64().expect("a number");
        assert!((40_000.0..50_000.0).contains(&float), "{reply}");
        assert_eq!(reply["text"], "n=7");
        assert!(is_uuid_v4(reply["uuid"].as_str().unwrap()), "{reply}");
    }
    assert_eq!(ints.into_iter().collect::<Vec<_>>(), [3, 4, 5]);
}

#[test]
fn pattern_then_adds_a_delayed_reply() {
    let mut plugin = start(json!({
        "kind": "pattern",
        "rules": [{
            "match": { "type": "request" },
            "response": { "type": "processing", "id": "{{message.id}}", "at": "{{now_ms}}" },
            "then": {
                "delay_ms": 2000,
                "response": { "type": "complete", "result": "done", "id": "{{message.id}}", "at": "{{now_ms}}" },
            },
        }],
    }));
    let actions = send(&mut plugin, 1, r#"{"type":"request","id":"r-1"}"#);
    let [
        Out::Reply(Body::Json(first)),
        Out::ReplyLater(2000, Body::Json(later)),
    ] = actions.as_slice()
    else {
        panic!("a reply, then one 2000 ms later: {actions:?}")
    };
    let at = first["at"].as_u64().unwrap();
    assert_eq!(
        first,
        &json!({ "type": "processing", "id": "r-1", "at": at })
    );
    // Dated when it is due.
    assert_eq!(
        later,
        &json!({ "type": "complete", "result": "done", "id": "r-1", "at": at + 2000 })
    );
}

// ------------------------------------------------------------- jsonrpc

/// Seed 003's "Per-Connection State" example, as a pattern mock.
fn stateful() -> Value {
    json!({
        "kind": "pattern",
        "state": { "initial": { "authenticated": false, "subscriptions": [] } },
        "no_match": { "type": "error", "authenticated": "{{state.authenticated}}" },
        "rules": [
            { "match": { "type": "auth", "token": "valid-token" },
              "set": { "authenticated": true, "user": "{{message.user}}" },
              "response": { "type": "auth_success" } },
            { "match": { "type": "auth" }, "response": { "type": "auth_failed" } },
            { "match": { "type": "subscribe", "channel": "*" },
              "when": "state.authenticated",
              "append": { "subscriptions": "{{message.channel}}" },
              "incr": { "count": 1 },
              "response": { "type": "subscribed", "channel": "{{message.channel}}",
                            "subscriptions": "{{state.subscriptions}}", "count": "{{state.count}}",
                            "user": "{{state.user}}" } },
        ],
    })
}

#[test]
fn pattern_state_starts_initial_and_rules_change_it_per_connection() {
    let mut plugin = start(stateful());
    open(&mut plugin, 1);
    open(&mut plugin, 2);
    let subscribe = |channel: &str| format!(r#"{{"type":"subscribe","channel":"{channel}"}}"#);

    // Not authenticated: `when` fails, so no rule answers; no_match sees the state.
    let refused = reply_json(send(&mut plugin, 1, &subscribe("orders")));
    assert_eq!(refused, json!({ "type": "error", "authenticated": false }));
    let failed = reply_json(send(&mut plugin, 1, r#"{"type":"auth","token":"nope"}"#));
    assert_eq!(failed, json!({ "type": "auth_failed" }));

    let ok = r#"{"type":"auth","token":"valid-token","user":"ada"}"#;
    assert_eq!(
        reply_json(send(&mut plugin, 1, ok)),
        json!({ "type": "auth_success" })
    );
    let first = reply_json(send(&mut plugin, 1, &subscribe("orders")));
    assert_eq!(
        first,
        json!({ "type": "subscribed", "channel": "orders", "subscriptions": ["orders"], "count": 1, "user": "ada" })
    );
    let second = reply_json(send(&mut plugin, 1, &subscribe("trades")));
    assert_eq!(second["subscriptions"], json!(["orders", "trades"]));
    assert_eq!(second["count"], 2);

    // Connection 2 has its own state, still the initial one.
    let other = reply_json(send(&mut plugin, 2, &subscribe("orders")));
    assert_eq!(other, json!({ "type": "error", "authenticated": false }));

    // A closed connection's state is gone: the id starts over if reused.
    close(&mut plugin, 1);
    open(&mut plugin, 1);
    let again = reply_json(send(&mut plugin, 1, &subscribe("orders")));
    assert_eq!(again["authenticated"], false);
}

#[test]
fn pattern_when_conditions_combine_state_message_and_literals() {
    let rule = |when: &str| json!({ "match": { "type": "q" }, "when": when, "response": when });
    let conditions = [
        "state.n > 2 && state.name == 'ada'",
        "!(state.n >= 10) && message.level <= 3",
        "state.missing || state.empty == \"\"",
        "state.n != 3 || state.list",
        "message.level < state.n",
        "state.zero || state.nothing || state.name == \"bob\"",
    ];
    let config = json!({
        "kind": "pattern",
        "state": { "initial": { "n": 3, "name": "ada", "empty": "", "list": [], "zero": 0, "nothing": null } },
        "no_match": "none",
        "rules": conditions.iter().map(|c| rule(c)).collect::<Vec<_>>(),
    });
    let mut plugin = start(config);
    open(&mut plugin, 1);
    let answer = |plugin: &mut PluginInstance, level: i64| match <[Out; 1]>::try_from(send(
        plugin,
        1,
        &format!(r#"{{"type":"q","level":{level}}}"#),
    )) {
        Ok([Out::Reply(Body::Text(text))]) => text,
        other => panic!("expected one text reply, got {other:?}"),
    };
    // The first condition holds whatever the level.
    assert_eq!(answer(&mut plugin, 1), conditions[0]);
    // With the first made false (name), the next that holds answers.
    let config = json!({
        "kind": "pattern",
        "state": { "initial": { "n": 3, "name": "eve", "empty": "x", "zero": 0, "nothing": null } },
        "no_match": "none",
        "rules": conditions.iter().map(|c| rule(c)).collect::<Vec<_>>(),
    });
    let mut plugin = start(config);
    open(&mut plugin, 1);
    assert_eq!(answer(&mut plugin, 3), conditions[1]);
    // level 4 fails the second; `missing` and `empty` fail the third; n == 3
    // and no list fail the fourth; 4 > 3 fails the fifth; 0, null and "eve"
    // fail the last.
    assert_eq!(answer(&mut plugin, 4), "none");
    assert_eq!(answer(&mut plugin, 2), conditions[1]);
}

fn rpc() -> PluginInstance {
    start(json!({
        "kind": "jsonrpc",
        "methods": [
            { "name": "user.get",
              "result": { "id": "{{params.id}}", "name": "John Doe", "email": "john@example.com" } },
            { "name": "user.create", "result": { "id": "{{uuid}}", "created": true } },
            { "name": "sum", "result": "{{params.1}}" },
            { "name": "user.delete",
              "error": { "code": -32000, "message": "Permission denied for {{params.id}}", "data": { "id": "{{params.id}}" } } },
        ],
    }))
}

#[test]
fn jsonrpc_results_read_params() {
    let mut plugin = rpc();
    assert_eq!(
        reply_json(send(
            &mut plugin,
            1,
            r#"{"jsonrpc":"2.0","method":"user.get","params":{"id":123},"id":1}"#
        )),
        json!({ "jsonrpc": "2.0", "result": { "id": 123, "name": "John Doe", "email": "john@example.com" }, "id": 1 })
    );
    assert_eq!(
        reply_json(send(
            &mut plugin,
            1,
            r#"{"jsonrpc":"2.0","method":"sum","params":[1,"two"],"id":"abc"}"#
        )),
        json!({ "jsonrpc": "2.0", "result": "two", "id": "abc" })
    );
    // Params may be left out: a missing field is null. A null id is still a request.
    assert_eq!(
        reply_json(send(
            &mut plugin,
            1,
            r#"{"jsonrpc":"2.0","method":"user.get","id":null}"#
        )),
        json!({ "jsonrpc": "2.0", "result": { "id": null, "name": "John Doe", "email": "john@example.com" }, "id": null })
    );
    let created = reply_json(send(
        &mut plugin,
        1,
        r#"{"jsonrpc":"2.0","method":"user.create","id":2}"#,
    ));
    assert!(is_uuid_v4(created["result"]["id"].as_str().unwrap()));
    assert_eq!(created["result"]["created"], true);
}

#[test]
fn jsonrpc_errors_follow_the_specification() {
    let mut plugin = rpc();
    let error = |id: Value, code: i64, message: &str| json!({ "jsonrpc": "2.0", "error": { "code": code, "message": message }, "id": id });
    assert_eq!(
        reply_json(send(
            &mut plugin,
            1,
            r#"{"jsonrpc":"2.0","method":"user.delete","params":{"id":9},"id":3}"#
        )),
        json!({ "jsonrpc": "2.0", "error": { "code": -32000, "message": "Permission denied for 9", "data": { "id": 9 } }, "id": 3 })
    );
    assert_eq!(
        reply_json(send(
            &mut plugin,
            1,
            r#"{"jsonrpc":"2.0","method":"nope","id":4}"#
        )),
        error(json!(4), -32601, "Method not found")
    );
    for not_json in [
        r#"{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]"#,
        "",
        "hello",
    ] {
        assert_eq!(
            reply_json(send(&mut plugin, 1, not_json)),
            error(Value::Null, -32700, "Parse error"),
            "{not_json}"
        );
    }
    let invalid = [
        (
            r#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#,
            Value::Null,
        ),
        (r#"{"jsonrpc":"1.0","method":"user.get","id":5}"#, json!(5)),
        (r#"{"method":"user.get","id":6}"#, json!(6)),
        (
            r#"{"jsonrpc":"2.0","method":"user.get","params":"x","id":7}"#,
            json!(7),
        ),
        (
            r#"{"jsonrpc":"2.0","method":"user.get","id":{"a":1}}"#,
            Value::Null,
        ),
        (
            r#"{"jsonrpc":"2.0","method":"user.get","id":[1]}"#,
            Value::Null,
        ),
        ("42", Value::Null),
        (r#""user.get""#, Value::Null),
        ("null", Value::Null),
    ];
    for (request, id) in invalid {
        assert_eq!(
            reply_json(send(&mut plugin, 1, request)),
            error(id, -32600, "Invalid Request"),
            "{request}"
        );
    }
}

#[test]
fn jsonrpc_notifications_are_never_answered() {
    let mut plugin = rpc();
    for notification in [
        r#"{"jsonrpc":"2.0","method":"user.get","params":{"id":1}}"#,
        r#"{"jsonrpc":"2.0","method":"user.delete"}"#,
        r#"{"jsonrpc":"2.0","method":"unknown","params":[1]}"#,
    ] {
        assert_eq!(send(&mut plugin, 1, notification), [], "{notification}");
    }
}

#[test]
fn jsonrpc_batches_get_an_array_of_responses() {
    let mut plugin = rpc();
    let batch = r#"[
        {"jsonrpc":"2.0","method":"sum","params":[1,2],"id":"1"},
        {"jsonrpc":"2.0","method":"user.get","params":{"id":7}},
        {"jsonrpc":"2.0","method":"user.get","params":{"id":8},"id":"2"},
        {"foo":"boo"},
        {"jsonrpc":"2.0","method":"foo.get","params":{"name":"myself"},"id":"5"},
        1
    ]"#;
    assert_eq!(
        send(&mut plugin, 1, batch),
        [Out::Reply(Body::Json(json!([
            { "jsonrpc": "2.0", "result": 2, "id": "1" },
            { "jsonrpc": "2.0", "result": { "id": 8, "name": "John Doe", "email": "john@example.com" }, "id": "2" },
            { "jsonrpc": "2.0", "error": { "code": -32600, "message": "Invalid Request" }, "id": null },
            { "jsonrpc": "2.0", "error": { "code": -32601, "message": "Method not found" }, "id": "5" },
            { "jsonrpc": "2.0", "error": { "code": -32600, "message": "Invalid Request" }, "id": null },
        ])))]
    );
    // An empty batch is one error, not an array.
    assert_eq!(
        reply_json(send(&mut plugin, 1, "[]")),
        json!({ "jsonrpc": "2.0", "error": { "code": -32600, "message": "Invalid Request" }, "id": null })
    );
    // A batch of notifications gets nothing at all.
    assert_eq!(
        send(
            &mut plugin,
            1,
            r#"[{"jsonrpc":"2.0","method":"sum","params":[1]},{"jsonrpc":"2.0","method":"x"}]"#
        ),
        []
    );
    // A batch that is not JSON is one parse error.
    assert_eq!(
        reply_json(send(
            &mut plugin,
            1,
            r#"[{"jsonrpc":"2.0","method":"sum","params":[1,2,4],"id":"1"},{"jsonrpc":"2.0","method""#
        )),
        json!({ "jsonrpc": "2.0", "error": { "code": -32700, "message": "Parse error" }, "id": null })
    );
}

// --------------------------------------------------------------- rooms

fn chat_text(outs: &[Out]) -> (String, Value) {
    match outs {
        [Out::Broadcast(channel, Body::Json(chat))] => (channel.clone(), chat.clone()),
        other => panic!("expected one broadcast, got {other:?}"),
    }
}

fn event(kind: &str, user: u64, room: &str) -> Body {
    Body::Json(json!({ "type": kind, "user": user, "room": room }))
}

#[test]
fn rooms_join_message_and_leave() {
    let mut plugin = start(json!({ "kind": "rooms" }));
    assert_eq!(open(&mut plugin, 1), []);
    assert_eq!(
        send(&mut plugin, 1, r#"{"action":"join","room":"A"}"#),
        [
            Out::Join("room:A".into()),
            Out::Broadcast("room:A".into(), event("user_joined", 1, "A")),
        ]
    );
    let before = now_ms();
    let outs = send(
        &mut plugin,
        1,
        r#"{"action":"message","room":"A","text":"hi"}"#,
    );
    let after = now_ms();
    let (channel, chat) = chat_text(&outs);
    assert_eq!(channel, "room:A");
    let timestamp = chat["timestamp"].as_u64().expect("ms since the epoch");
    assert!((before..=after).contains(&timestamp));
    assert_eq!(
        chat,
        json!({ "type": "chat", "from": 1, "room": "A", "text": "hi", "timestamp": timestamp })
    );
    assert_eq!(
        send(&mut plugin, 1, r#"{"action":"leave","room":"A"}"#),
        [
            Out::Broadcast("room:A".into(), event("user_left", 1, "A")),
            Out::Leave("room:A".into()),
        ]
    );
    // Left: may not talk there any more.
    assert_eq!(
        reply_json(send(
            &mut plugin,
            1,
            r#"{"action":"message","room":"A","text":"hi"}"#
        )),
        json!({ "type": "error", "error": "not in room \"A\": join it first" })
    );
}

#[test]
fn rooms_refuse_what_they_cannot_do_with_an_error_reply() {
    let mut plugin = start(json!({ "kind": "rooms" }));
    open(&mut plugin, 1);
    send(&mut plugin, 1, r#"{"action":"join","room":"A"}"#);
    let long = format!(r#"{{"action":"join","room":"{}"}}"#, "x".repeat(251));
    let cases = [
        (
            r#"{"action":"message","room":"B","text":"hi"}"#,
            "not in room \"B\": join it first",
        ),
        (
            r#"{"action":"leave","room":"B"}"#,
            "not in room \"B\": join it first",
        ),
        (r#"{"action":"join","room":"A"}"#, "already in room \"A\""),
        (
            r#"{"action":"dance","room":"A"}"#,
            "unknown action \"dance\" (expected \"join\", \"leave\" or \"message\")",
        ),
        (
            r#"{"room":"A"}"#,
            "`action` must be \"join\", \"leave\" or \"message\"",
        ),
        (
            r#"{"action":"join"}"#,
            "`room` must be a string naming the room",
        ),
        (
            r#"{"action":"join","room":7}"#,
            "`room` must be a string naming the room",
        ),
        (r#"{"action":"join","room":""}"#, "`room` is empty"),
        (
            r#"{"action":"join","room":"a\tb"}"#,
            "invalid room name: channel name \"room:a\\tb\" contains control character '\\t'",
        ),
        (
            &long,
            "invalid room name: channel name is 256 bytes (at most 255)",
        ),
        (
            r#"{"action":"message","room":"A"}"#,
            "`text` must be a string",
        ),
        (
            "hello",
            "expected a JSON object such as {\"action\":\"join\",\"room\":\"lobby\"}",
        ),
        (
            "[1]",
            "expected a JSON object such as {\"action\":\"join\",\"room\":\"lobby\"}",
        ),
    ];
    for (msg, reason) in cases {
        assert_eq!(
            reply_json(send(&mut plugin, 1, msg)),
            json!({ "type": "error", "error": reason }),
            "{msg}"
        );
    }
    // A room name up to the channel limit is fine.
    let longest = "x".repeat(250);
    let outs = send(
        &mut plugin,
        1,
        &format!(r#"{{"action":"join","room":"{longest}"}}"#),
    );
    assert_eq!(outs[0], Out::Join(format!("room:{longest}")));
}

#[test]
fn rooms_cap_how_many_a_connection_joins() {
    let mut plugin = start(json!({ "kind": "rooms" }));
    for i in 0..100 {
        let outs = send(
            &mut plugin,
            1,
            &format!(r#"{{"action":"join","room":"r{i}"}}"#),
        );
        assert_eq!(outs.len(), 2, "{i}");
    }
    assert_eq!(
        reply_json(send(
            &mut plugin,
            1,
            r#"{"action":"join","room":"one more"}"#
        )),
        json!({ "type": "error", "error": "already in 100 rooms, the most allowed" })
    );
    // Another connection is not affected.
    assert_eq!(
        send(&mut plugin, 2, r#"{"action":"join","room":"one more"}"#).len(),
        2
    );
}

#[test]
fn rooms_tell_every_room_when_a_connection_closes() {
    let mut plugin = start(json!({
        "kind": "rooms",
        "on_connect": { "type": "welcome", "you": "{{connection.id}}" },
        "on_close": "bye",
    }));
    assert_eq!(
        open(&mut plugin, 5),
        [Out::Reply(Body::Json(
            json!({ "type": "welcome", "you": 5 })
        ))]
    );
    open(&mut plugin, 6);
    for room in ["B", "A", "C"] {
        send(
            &mut plugin,
            5,
            &format!(r#"{{"action":"join","room":"{room}"}}"#),
        );
    }
    send(&mut plugin, 5, r#"{"action":"leave","room":"C"}"#);
    send(&mut plugin, 6, r#"{"action":"join","room":"A"}"#);
    assert_eq!(
        close(&mut plugin, 5),
        [
            Out::Reply(Body::Text("bye".into())),
            Out::Broadcast("room:B".into(), event("user_left", 5, "B")),
            Out::Broadcast("room:A".into(), event("user_left", 5, "A")),
        ]
    );
    // Its membership is gone with it; the other connection's stays.
    assert_eq!(
        close(&mut plugin, 5),
        [Out::Reply(Body::Text("bye".into()))]
    );
    assert_eq!(
        close(&mut plugin, 6),
        [
            Out::Reply(Body::Text("bye".into())),
            Out::Broadcast("room:A".into(), event("user_left", 6, "A")),
        ]
    );
}

// ----------------------------------------------------------- scheduled

#[test]
fn scheduled_messages_fire_when_due_on_the_ticks_time() {
    let mut plugin = start(json!({
        "kind": "echo",
        "scheduled": [
            { "interval_ms": 1000, "message": { "type": "fast", "at": "{{now_ms}}" } },
            { "interval_ms": 3000, "message": "slow" },
        ],
    }));
    let fast = |at: u64, to: u64| Out::Send(to, Body::Json(json!({ "type": "fast", "at": at })));
    let slow = |to: u64| Out::Send(to, Body::Text("slow".into()));
    let conns = [10, 11];
    // The first tick starts the clock; nothing is due yet.
    assert_eq!(tick(&mut plugin, 100_000, &conns), []);
    assert_eq!(tick(&mut plugin, 100_500, &conns), []);
    assert_eq!(tick(&mut plugin, 100_999, &conns), []);
    assert_eq!(
        tick(&mut plugin, 101_000, &conns),
        [fast(101_000, 10), fast(101_000, 11)]
    );
    // Ticks later than due: it fires, keeping its phase (next at 102_000).
    assert_eq!(tick(&mut plugin, 101_700, &conns), []);
    assert_eq!(
        tick(&mut plugin, 102_100, &conns),
        [fast(102_100, 10), fast(102_100, 11)]
    );
    assert_eq!(tick(&mut plugin, 102_900, &conns), []);
    assert_eq!(
        tick(&mut plugin, 103_000, &conns),
        [fast(103_000, 10), fast(103_000, 11), slow(10), slow(11)]
    );
    // With no connections nothing is sent, but time moves on.
    assert_eq!(tick(&mut plugin, 104_000, &[]), []);
    assert_eq!(tick(&mut plugin, 104_500, &[12]), []);
    // A long gap: one firing, not a burst; then one interval from there.
    assert_eq!(
        tick(&mut plugin, 110_000, &[12]),
        [fast(110_000, 12), slow(12)]
    );
    assert_eq!(tick(&mut plugin, 110_999, &[12]), []);
    assert_eq!(tick(&mut plugin, 111_000, &[12]), [fast(111_000, 12)]);
    // Time going backwards restarts the schedules rather than stalling them.
    assert_eq!(tick(&mut plugin, 50_000, &[12]), []);
    assert_eq!(tick(&mut plugin, 51_000, &[12]), [fast(51_000, 12)]);
}

#[test]
fn scheduled_messages_are_rendered_once_per_firing() {
    let mut plugin = start(json!({
        "kind": "static",
        "scheduled": [{
            "interval_ms": 1,
            "message": {
                "type": "heartbeat",
                "timestamp": "{{now}}",
                "connections": "{{connection_count}}",
                "id": "{{uuid}}",
                "price": "{{random_float 40000 50000}}",
            },
        }],
    }));
    tick(&mut plugin, 1, &[]);
    let outs = tick(&mut plugin, 1_714_566_600_123, &[1, 2, 3]);
    let bodies: Vec<&Value> = outs
        .iter()
        .zip([1, 2, 3])
        .map(|(out, want)| match out {
            Out::Send(to, Body::Json(value)) if *to == want => value,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies.iter().all(|b| b == &bodies[0]),
        "the same message to all"
    );
    let heartbeat = bodies[0];
    assert_eq!(heartbeat["timestamp"], "2024-05-01T12:30:00.123Z");
    assert_eq!(heartbeat["connections"], 3);
    assert!(is_uuid_v4(heartbeat["id"].as_str().unwrap()));
    let price = heartbeat["price"].as_f64().unwrap();
    assert!((40_000.0..50_000.0).contains(&price));
}

#[test]
fn now_is_rfc3339_utc_with_milliseconds() {
    let mut plugin = start(json!({
        "kind": "echo",
        "scheduled": [{ "interval_ms": 1, "message": "{{now}}" }],
    }));
    tick(&mut plugin, 1, &[]);
    for (ms, expected) in [
        (946_684_799_000, "1999-12-31T23:59:59.000Z"),
        (951_868_799_999, "2000-02-29T23:59:59.999Z"),
        (1_714_566_600_123, "2024-05-01T12:30:00.123Z"),
        (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
    ] {
        assert_eq!(
            tick(&mut plugin, ms, &[1]),
            [Out::Send(1, Body::Text(expected.into()))]
        );
    }
}

// ------------------------------------------------------------- config

#[test]
fn bad_configs_are_refused_naming_the_field() {
    let cases = [
        (
            json!({}),
            "`kind` is missing: set it to `echo`, `static`, `pattern`, `jsonrpc` or `rooms`",
        ),
        (
            json!({ "kind": "ech" }),
            "kind: expected `echo`, `static`, `pattern`, `jsonrpc` or `rooms` (got \"ech\")",
        ),
        (
            json!({ "kind": "echo", "rules": [] }),
            "`rules` does not apply to kind = \"echo\" (it takes `kind`, `on_connect`, `on_close` or `scheduled`)",
        ),
        (
            json!({ "kind": "static", "on_mesage": "x" }),
            "unknown key `on_mesage` (kind = \"static\" takes `kind`, `on_connect`, `on_close`, `scheduled` or `on_message`)",
        ),
        (json!({ "kind": "pattern" }), "`rules` is missing"),
        (
            json!({ "kind": "pattern", "rules": [] }),
            "rules: must not be empty (add a rule, or use kind = \"static\")",
        ),
        (
            json!({ "kind": "pattern", "rules": {} }),
            "rules: must be an array (got a table)",
        ),
        (
            json!({ "kind": "pattern", "rules": [
            { "match": {}, "response": "ok" },
            { "match": {}, "response": "ok" },
            { "match": "ping", "response": "pong" },
        ] }),
            "rules[2].match: must be a table of fields to match (got a string)",
        ),
        (
            json!({ "kind": "pattern", "rules": ["x"] }),
            "rules[0]: must be a table (got a string)",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {} }] }),
            "rules[0]: `response` is missing",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "response": "x" }] }),
            "rules[0]: `match` is missing",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "whn": "y" }] }),
            "rules[0]: unknown key `whn` (expected `match`, `when`, `response`, `then`, `set`, `append` or `incr`)",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "when": "authenticated" }] }),
            "rules[0].when: `authenticated`: a condition reads `state.<path>` or `message.<path>`, or a literal (a number, a quoted string, true, false, null)",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "when": "state.a ==" }] }),
            "rules[0].when: the condition ends where a value was expected",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "when": "(state.a" }] }),
            "rules[0].when: a `(` without its `)`",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "when": "state.a state.b" }] }),
            "rules[0].when: unexpected `state.b` in \"state.a state.b\"",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "when": true }] }),
            "rules[0].when: must be a condition in a string, e.g. \"state.authenticated\" (got a boolean)",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "incr": { "n": "1" } }] }),
            "rules[0].incr.n: must be a number",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "set": { "n": "{{nope}}" } }] }),
            "rules[0].set.n: unknown placeholder `{{nope}}` (known: now, now_ms, uuid, message.<path>, params.<path>, state.<path>, random_int <min> <max>, random_float <min> <max>, connection.id, connection_count)",
        ),
        (
            json!({ "kind": "pattern", "state": { "initial": [] }, "rules": [{ "match": {}, "response": "x" }] }),
            "state.initial: must be a table of fields (got an array)",
        ),
        (
            json!({ "kind": "pattern", "state": { "start": {} }, "rules": [{ "match": {}, "response": "x" }] }),
            "state: unknown key `start` (expected `initial`)",
        ),
        (
            json!({ "kind": "static", "on_message": "{{state.n}}" }),
            "on_message: `{{state.n}}`: per-connection state exists only in the rules of kind = \"pattern\"",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "then": { "response": "y" } }] }),
            "rules[0].then: `delay_ms` is missing",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "then": { "delay_ms": -1, "response": "y" } }] }),
            "rules[0].then.delay_ms: must be a whole number from 0 to 4294967295 (got -1)",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "x", "then": { "delay_ms": 1.5, "response": "y" } }] }),
            "rules[0].then.delay_ms: must be a whole number from 0 to 4294967295 (got 1.5)",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": { "a": ["x", "{{now"] } }] }),
            "rules[0].response.a[1]: `{{` without a closing `}}` in \"{{now\"",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "{{nwo}}" }] }),
            "rules[0].response: unknown placeholder `{{nwo}}` (known: now, now_ms, uuid, message.<path>, params.<path>, state.<path>, random_int <min> <max>, random_float <min> <max>, connection.id, connection_count)",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "{{ }}" }] }),
            "rules[0].response: empty placeholder `{{}}`",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "{{message..id}}" }] }),
            "rules[0].response: `{{message..id}}`: a path is dot-separated names or array indexes, e.g. `message.user.id`",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "{{now 1}}" }] }),
            "rules[0].response: `{{now 1}}`: `now` takes no arguments",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "{{random_int 5 1}}" }] }),
            "rules[0].response: `{{random_int 5 1}}`: the lower bound comes first",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "{{random_int 1}}" }] }),
            "rules[0].response: `{{random_int 1}}`: expected two numbers, the lower and upper bound (e.g. `{{random_int 1 10}}`)",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "{{random_float 0 inf}}" }] }),
            "rules[0].response: `{{random_float 0 inf}}`: expected two numbers, the lower and upper bound (e.g. `{{random_float 1 10}}`)",
        ),
        (
            json!({ "kind": "pattern", "rules": [{ "match": {}, "response": "{{params.id}}" }] }),
            "rules[0].response: `{{params.id}}`: params exist only in the answers of JSON-RPC methods",
        ),
        (
            json!({ "kind": "static", "on_connect": { "id": "{{message.id}}" } }),
            "on_connect.id: `{{message.id}}`: there is no incoming message here",
        ),
        (
            json!({ "kind": "echo", "scheduled": [{ "interval_ms": 1000, "message": "to {{connection.id}}" }] }),
            "scheduled[0].message: `{{connection.id}}`: a scheduled message goes to every connection, so there is no one connection id",
        ),
        (
            json!({ "kind": "echo", "scheduled": [{ "interval_ms": 0, "message": "x" }] }),
            "scheduled[0].interval_ms: must be a whole number from 1 to 4294967295 (got 0)",
        ),
        (
            json!({ "kind": "echo", "scheduled": [{ "message": "x" }] }),
            "scheduled[0]: `interval_ms` is missing",
        ),
        (
            json!({ "kind": "echo", "scheduled": [{ "interval_ms": 5 }] }),
            "scheduled[0]: `message` is missing",
        ),
        (json!({ "kind": "jsonrpc" }), "`methods` is missing"),
        (
            json!({ "kind": "jsonrpc", "methods": [{ "name": "a" }] }),
            "methods[0]: set exactly one of `result` and `error`",
        ),
        (
            json!({ "kind": "jsonrpc", "methods": [{ "name": "a", "result": 1, "error": {} }] }),
            "methods[0]: set exactly one of `result` and `error`",
        ),
        (
            json!({ "kind": "jsonrpc", "methods": [{ "result": 1 }] }),
            "methods[0]: `name` is missing",
        ),
        (
            json!({ "kind": "jsonrpc", "methods": [{ "name": "", "result": 1 }] }),
            "methods[0].name: must not be empty",
        ),
        (
            json!({ "kind": "jsonrpc", "methods": [{ "name": "a", "result": 1 }, { "name": "a", "result": 2 }] }),
            "methods[1].name: \"a\" is already defined above",
        ),
        (
            json!({ "kind": "jsonrpc", "methods": [{ "name": "a", "error": { "code": "x", "message": "m" } }] }),
            "methods[0].error.code: must be an integer (got \"x\")",
        ),
        (
            json!({ "kind": "jsonrpc", "methods": [{ "name": "a", "error": { "code": 1 } }] }),
            "methods[0].error: `message` is missing",
        ),
        (
            json!({ "kind": "jsonrpc", "methods": [{ "name": "a", "error": { "code": 1, "message": "m", "extra": 1 } }] }),
            "methods[0].error: unknown key `extra` (expected `code`, `message` or `data`)",
        ),
        (
            json!({ "kind": "jsonrpc", "methods": [{ "name": "a", "result": "{{params.id" }] }),
            "methods[0].result: `{{` without a closing `}}` in \"{{params.id\"",
        ),
        (json!(["kind"]), "config: must be a table (got an array)"),
    ];
    for (config, expected) in cases {
        assert_eq!(init_error(config.clone()), expected, "{config}");
    }
}

/// Every ```toml example in the plugin's documentation loads.
#[test]
fn documented_examples_load() {
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/mock/src/lib.rs"),
    )
    .unwrap();
    let mut examples = Vec::new();
    let mut current: Option<String> = None;
    for line in docs.lines().filter_map(|l| l.strip_prefix("//!")) {
        let line = line.strip_prefix(' ').unwrap_or(line);
        match (&mut current, line) {
            (None, "```toml") => current = Some(String::new()),
            (Some(_), "```") => examples.push(current.take().unwrap()),
            (Some(text), line) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    assert_eq!(examples.len(), 7, "one per kind, plus state and scheduled");
    for example in examples {
        let file: Value = toml::from_str(&example).unwrap_or_else(|e| panic!("{e}\n{example}"));
        let handler = &file["pipelines"][0]["handler"];
        assert_eq!(handler["plugin"], "mock", "{example}");
        let config = handler["config"].to_string();
        if let Err(e) = support::plugins::load("mock", Role::Handler, &config) {
            panic!("{e}\n{example}");
        }
    }
}
