//! The `diagnostics` handler plugin, built and loaded into the real host:
//! seed 001's echo, health and main endpoints, message for message. Each
//! message is checked for its exact shape (keys in order, with the JSON type
//! of each value) and then for its values.

mod support;

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Value, json};
use sluice_runtime::plugin::{Action, FaultKind, FrameKind, Message, PluginInstance, Role};

const WELCOME: &str = "{type:str,endpoint:str,client_id:str,server_time:float,config:{ping_interval:int,ping_timeout:int}}";
const ECHO: &str = "{type:str,original:{type:str,data:str},server_timestamp:float,client_id:str,latency_info:{received_at:float,connection_age_ms:float}}";
const HEALTH_OPEN: &str = "{type:str,status:str,client_id:str,server_time:float,config:{ping_interval:int,ping_timeout:int,expected_min_connection_duration:int},environment:{}}";
const HEARTBEAT: &str =
    "{type:str,ping_number:int,timestamp:float,connection_age_seconds:float,client_id:str}";
const STATUS: &str = "{type:str,status:str,connection_age_seconds:float,ping_count:int,pong_count:int,timestamp:float,client_id:str}";
const ERROR: &str = "{type:str,message:str,timestamp:float,client_id:str}";
const PONG: &str = "{type:str,timestamp:float,client_id:str}";
const MAIN_ECHO: &str =
    "{type:str,data:{type:str,data:str},timestamp:float,client_id:str,server_processing_ms:float}";

fn start(config: Value) -> PluginInstance {
    support::plugins::instance("diagnostics", Role::Handler, &config.to_string())
}

use support::plugins::{connection, text};

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

/// The text of the one `Reply` in `actions`.
fn only_reply(actions: Vec<Action>) -> String {
    match <[Action; 1]>::try_from(actions) {
        Ok([Action::Reply(msg)]) => {
            assert_eq!(msg.kind, FrameKind::Text);
            String::from_utf8(msg.payload).expect("UTF-8 reply")
        }
        Ok([other]) => panic!("expected a reply, got {other:?}"),
        Err(actions) => panic!("expected one action, got {actions:?}"),
    }
}

/// The `Send`s in `actions` as (connection, text); panics on anything else.
fn sends(actions: Vec<Action>) -> Vec<(u64, String)> {
    actions
        .into_iter()
        .map(|action| match action {
            Action::Send((id, msg)) => {
                assert_eq!(msg.kind, FrameKind::Text);
                (id, String::from_utf8(msg.payload).expect("UTF-8"))
            }
            other => panic!("on-tick may only send, got {other:?}"),
        })
        .collect()
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The opening time in ms encoded in a client id `<prefix>_<ms>_<5 digits>`.
fn opened_ms(client_id: &str, prefix: &str) -> u64 {
    let rest = client_id
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('_'))
        .unwrap_or_else(|| panic!("{client_id} does not start with {prefix}_"));
    let (ms, digits) = rest.split_once('_').expect("two parts after the prefix");
    assert_eq!(digits.len(), 5, "{client_id}");
    let digits: u32 = digits.parse().expect("digits");
    assert!((10_000..=99_999).contains(&digits), "{client_id}");
    ms.parse().expect("open time in ms")
}

/// Opens `id` on `path` and returns the plugin's first message (if any) with
/// the wall-clock window the open happened in.
fn open(plugin: &mut PluginInstance, id: u64, path: &str) -> (Vec<Action>, u64, u64) {
    let before = wall_ms();
    let actions = plugin.on_open(&connection(id, path)).expect("on_open");
    (actions, before, wall_ms())
}

/// Opens a health connection; returns its client id and open time.
fn open_health(plugin: &mut PluginInstance, id: u64) -> (String, u64) {
    let (actions, _, _) = open(plugin, id, "/ws/health");
    let status = parse(&only_reply(actions));
    let client_id = status["client_id"].as_str().expect("client_id").to_owned();
    let t0 = opened_ms(&client_id, "health_client");
    (client_id, t0)
}

fn get_status(plugin: &mut PluginInstance, id: u64) -> Value {
    let reply = only_reply(
        plugin
            .on_message(id, &text(r#"{"type":"get_status"}"#))
            .expect("get_status"),
    );
    assert_eq!(shape(&reply), STATUS, "{reply}");
    parse(&reply)
}

/// The keys (in order) and JSON value types of a message, e.g.
/// `{type:str,ping_number:int,timestamp:float}`. `int` and `float` follow
/// the text: `30` is an int, `30.0` a float.
fn shape(text: &str) -> String {
    let Shape(shape) = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    shape
}

struct Shape(String);

impl<'de> Deserialize<'de> for Shape {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> Visitor<'de> for ShapeVisitor {
    type Value = Shape;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Shape, E> {
        Ok(Shape("bool".into()))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Shape, E> {
        Ok(Shape("int".into()))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Shape, E> {
        Ok(Shape("int".into()))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Shape, E> {
        Ok(Shape("float".into()))
    }

    fn visit_str<E>(self, _: &str) -> Result<Shape, E> {
        Ok(Shape("str".into()))
    }

    fn visit_unit<E>(self) -> Result<Shape, E> {
        Ok(Shape("null".into()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Shape, A::Error> {
        let mut items = Vec::new();
        while let Some(Shape(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Shape(format!("[{}]", items.join(","))))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape, A::Error> {
        let mut entries = Vec::new();
        while let Some((key, Shape(value))) = map.next_entry::<String, Shape>()? {
            entries.push(format!("{key}:{value}"));
        }
        Ok(Shape(format!("{{{}}}", entries.join(","))))
    }
}

// ---- echo ----

#[test]
fn echo_welcomes_with_its_path_client_id_time_and_config() {
    let mut plugin = start(json!({ "endpoint": "echo" }));
    let (actions, before, after) = open(&mut plugin, 1, "/ws/echo");
    let welcome = only_reply(actions);
    assert_eq!(shape(&welcome), WELCOME, "{welcome}");
    let value = parse(&welcome);
    assert_eq!(value["type"], "welcome");
    assert_eq!(value["endpoint"], "/ws/echo");
    let client_id = value["client_id"].as_str().unwrap();
    let t0 = opened_ms(client_id, "echo_client");
    assert!(
        (before..=after).contains(&t0),
        "{t0} not in {before}..={after}"
    );
    assert_eq!(value["server_time"].as_f64(), Some(t0 as f64 / 1000.0));
    assert_eq!(
        value["config"],
        json!({ "ping_interval": 30, "ping_timeout": 10 })
    );

    // The endpoint is whatever path the client connected on.
    let (actions, _, _) = open(&mut plugin, 2, "/diagnostics/echo");
    let other = parse(&only_reply(actions));
    assert_eq!(other["endpoint"], "/diagnostics/echo");
    assert_ne!(other["client_id"], value["client_id"]);
}

#[test]
fn echo_reports_configured_numbers_as_written() {
    let mut plugin = start(json!({ "endpoint": "echo", "ping_interval": 2.5, "ping_timeout": 5 }));
    let (actions, _, _) = open(&mut plugin, 1, "/ws/echo");
    let welcome = only_reply(actions);
    assert!(
        welcome.ends_with(r#","config":{"ping_interval":2.5,"ping_timeout":5}}"#),
        "{welcome}"
    );
}

#[test]
fn echo_returns_each_message_with_latency_info() {
    let mut plugin = start(json!({ "endpoint": "echo" }));
    let (actions, _, _) = open(&mut plugin, 7, "/ws/echo");
    let client_id = parse(&only_reply(actions))["client_id"].clone();

    let before = wall_ms();
    let echo = only_reply(
        plugin
            .on_message(7, &text(r#"{"type":"test","data":"hello"}"#))
            .unwrap(),
    );
    let after = wall_ms();
    assert_eq!(shape(&echo), ECHO, "{echo}");
    // The client's own key order, as in the seed (not sorted).
    assert!(
        echo.starts_with(
            r#"{"type":"echo","original":{"type":"test","data":"hello"},"server_timestamp":"#
        ),
        "{echo}"
    );
    let value = parse(&echo);
    assert_eq!(value["client_id"], client_id);
    let received = value["latency_info"]["received_at"].as_f64().unwrap();
    assert_eq!(value["server_timestamp"].as_f64(), Some(received));
    let received_ms = (received * 1000.0).round() as u64;
    assert!((before..=after).contains(&received_ms), "{received}");
    let first_age = value["latency_info"]["connection_age_ms"].as_f64().unwrap();
    assert!(first_age >= 0.0, "{first_age}");

    // Ages grow; the seed's own ping is only echoed here.
    std::thread::sleep(Duration::from_millis(30));
    let echo = only_reply(plugin.on_message(7, &text(r#"{"type":"ping"}"#)).unwrap());
    assert!(
        echo.starts_with(r#"{"type":"echo","original":{"type":"ping"},"#),
        "{echo}"
    );
    let age = parse(&echo)["latency_info"]["connection_age_ms"]
        .as_f64()
        .unwrap();
    assert!(age >= first_age + 30.0, "{first_age} then {age}");
    // Tenths of a millisecond.
    assert_eq!((age * 10.0).round() / 10.0, age);
}

#[test]
fn echo_compacts_json_and_quotes_other_text() {
    let mut plugin = start(json!({ "endpoint": "echo" }));
    plugin.on_open(&connection(1, "/ws/echo")).unwrap();
    let original = |plugin: &mut PluginInstance, payload: &str| {
        let echo = only_reply(plugin.on_message(1, &text(payload)).unwrap());
        let start = echo.find(r#""original":"#).unwrap() + r#""original":"#.len();
        let end = echo.find(r#","server_timestamp":"#).unwrap();
        echo[start..end].to_owned()
    };
    let cases = [
        (
            "{ \"z\" : 1,\n\t\"a\" : [ 1 , 2 ], \"s\": \"a b \\\" c\" }",
            r#"{"z":1,"a":[1,2],"s":"a b \" c"}"#,
        ),
        ("  42 ", "42"),
        ("\"hi\"", "\"hi\""),
        ("null", "null"),
        ("hello there", "\"hello there\""),
        ("{\"unterminated\":", r#""{\"unterminated\":""#),
        ("", "\"\""),
    ];
    for (payload, expected) in cases {
        assert_eq!(original(&mut plugin, payload), expected, "{payload:?}");
    }
}

#[test]
fn echo_sends_binary_frames_back_unchanged() {
    let mut plugin = start(json!({ "endpoint": "echo" }));
    plugin.on_open(&connection(1, "/ws/echo")).unwrap();
    let bytes = vec![0u8, 159, 146, 150, 255];
    let msg = Message {
        kind: FrameKind::Binary,
        payload: bytes.clone(),
        key: None,
        headers: Vec::new(),
    };
    match <[Action; 1]>::try_from(plugin.on_message(1, &msg).unwrap()) {
        Ok([Action::Reply(reply)]) => {
            assert_eq!(reply.kind, FrameKind::Binary);
            assert_eq!(reply.payload, bytes);
        }
        other => panic!("expected one binary reply, got {other:?}"),
    }
}

// ---- health ----

#[test]
fn health_opens_with_status_config_and_environment() {
    let environment = json!({
        "allowed_origins": ["http://localhost:3000", "http://127.0.0.1:3000"],
        "public_base_url": "http://localhost:9000",
        "ws_public_url": "ws://localhost:9000/ws",
    });
    let mut plugin = start(json!({ "endpoint": "health", "environment": environment }));
    let (actions, before, after) = open(&mut plugin, 1, "/ws/health");
    let status = only_reply(actions);
    assert_eq!(
        shape(&status),
        HEALTH_OPEN.replace(
            "environment:{}",
            "environment:{allowed_origins:[str,str],public_base_url:str,ws_public_url:str}"
        ),
        "{status}"
    );
    let value = parse(&status);
    let client_id = value["client_id"].as_str().unwrap();
    let t0 = opened_ms(client_id, "health_client");
    assert!((before..=after).contains(&t0));
    // The seed's transcript, but for the id and the time.
    let expected = format!(
        concat!(
            r#"{{"type":"health_status","status":"connected","client_id":"{}","server_time":{},"#,
            r#""config":{{"ping_interval":30,"ping_timeout":10,"expected_min_connection_duration":30}},"#,
            r#""environment":{{"allowed_origins":["http://localhost:3000","http://127.0.0.1:3000"],"#,
            r#""public_base_url":"http://localhost:9000","ws_public_url":"ws://localhost:9000/ws"}}}}"#
        ),
        client_id,
        Value::from(t0 as f64 / 1000.0)
    );
    assert_eq!(status, expected);

    // Without an environment table: `{}`; configured numbers as written.
    let mut plugin = start(json!({
        "endpoint": "health",
        "ping_interval": 15,
        "ping_timeout": 2.5,
        "expected_min_connection_duration": 120
    }));
    let (actions, _, _) = open(&mut plugin, 1, "/ws/health");
    let status = only_reply(actions);
    assert!(
        status.ends_with(
            r#","config":{"ping_interval":15,"ping_timeout":2.5,"expected_min_connection_duration":120},"environment":{}}"#
        ),
        "{status}"
    );
}

#[test]
fn heartbeats_follow_the_schedule_one_per_tick_without_skipping() {
    let mut plugin = start(json!({ "endpoint": "health" }));
    let (client_id, t0) = open_health(&mut plugin, 5);
    let mut tick = |offset_ms: u64| sends(plugin.on_tick(t0 + offset_ms, &[5]).unwrap());

    assert!(tick(29_900).is_empty(), "not due before 30 s");
    let expected = |n: u64, offset_ms: u64, age: &str| {
        format!(
            r#"{{"type":"heartbeat","ping_number":{n},"timestamp":{},"connection_age_seconds":{age},"client_id":"{client_id}"}}"#,
            Value::from((t0 + offset_ms) as f64 / 1000.0)
        )
    };
    let beat = tick(30_000);
    assert_eq!(beat, vec![(5, expected(1, 30_000, "30.0"))]);
    assert_eq!(shape(&beat[0].1), HEARTBEAT);
    assert!(tick(30_500).is_empty(), "one heartbeat per period");
    assert!(tick(59_999).is_empty());
    assert_eq!(tick(60_000), vec![(5, expected(2, 60_000, "60.0"))]);
    // A late tick (3 was due at 90 s, 4 at 120 s): 3 now, 4 on the next
    // tick, each stamped with its real send time.
    assert_eq!(tick(125_000), vec![(5, expected(3, 125_000, "125.0"))]);
    assert_eq!(tick(125_250), vec![(5, expected(4, 125_250, "125.25"))]);
    assert!(tick(125_500).is_empty(), "5 is due at 150 s");
    assert_eq!(tick(150_000), vec![(5, expected(5, 150_000, "150.0"))]);

    let status = get_status(&mut plugin, 5);
    assert_eq!(status["ping_count"], 5);
    assert_eq!(status["pong_count"], 0);
}

#[test]
fn heartbeat_period_follows_ping_interval() {
    let mut plugin = start(json!({ "endpoint": "health", "ping_interval": 0.25 }));
    let (_, t0) = open_health(&mut plugin, 1);
    let numbers = |actions: Vec<Action>| -> Vec<u64> {
        sends(actions)
            .iter()
            .map(|(_, text)| parse(text)["ping_number"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        numbers(plugin.on_tick(t0 + 249, &[1]).unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(numbers(plugin.on_tick(t0 + 250, &[1]).unwrap()), vec![1]);
    assert_eq!(
        numbers(plugin.on_tick(t0 + 499, &[1]).unwrap()),
        Vec::<u64>::new()
    );
    assert_eq!(numbers(plugin.on_tick(t0 + 500, &[1]).unwrap()), vec![2]);
    // A tick before the open (clock skew) sends nothing.
    assert_eq!(
        numbers(plugin.on_tick(t0 - 1_000, &[1]).unwrap()),
        Vec::<u64>::new()
    );
}

#[test]
fn get_status_counts_heartbeats_and_pongs() {
    let mut plugin = start(json!({ "endpoint": "health" }));
    let (client_id, t0) = open_health(&mut plugin, 3);

    let before = wall_ms();
    let status = get_status(&mut plugin, 3);
    let after = wall_ms();
    assert_eq!(status["type"], "health_status");
    assert_eq!(status["status"], "healthy");
    assert_eq!(status["client_id"], client_id.as_str());
    assert_eq!(status["ping_count"], 0);
    assert_eq!(status["pong_count"], 0);
    let now = status["timestamp"].as_f64().unwrap();
    let now_ms = (now * 1000.0).round() as u64;
    assert!((before..=after).contains(&now_ms));
    let age = status["connection_age_seconds"].as_f64().unwrap();
    assert_eq!(age, (now_ms - t0) as f64 / 1000.0);

    // Pongs get no reply and are counted; extra fields do not matter.
    for pong in [r#"{"type":"pong"}"#, r#"{"type":"pong","ping_number":1}"#] {
        assert!(
            plugin.on_message(3, &text(pong)).unwrap().is_empty(),
            "{pong}"
        );
    }
    assert_eq!(sends(plugin.on_tick(t0 + 30_000, &[3]).unwrap()).len(), 1);
    let status = get_status(&mut plugin, 3);
    assert_eq!(status["ping_count"], 1);
    assert_eq!(status["pong_count"], 2);
}

#[test]
fn health_answers_anything_else_with_an_error() {
    let mut plugin = start(json!({ "endpoint": "health" }));
    let (client_id, _) = open_health(&mut plugin, 1);
    let not_understood =
        "expected a JSON object with a string \"type\", such as {\"type\":\"get_status\"}";
    let long = "x".repeat(100);
    let cases = [
        (
            r#"{"type":"subscribe"}"#.to_owned(),
            "unknown message type \"subscribe\": this endpoint understands get_status and pong"
                .to_owned(),
        ),
        (
            format!(r#"{{"type":"{long}"}}"#),
            format!(
                "unknown message type \"{}...\": this endpoint understands get_status and pong",
                "x".repeat(64)
            ),
        ),
        ("get_status".to_owned(), not_understood.to_owned()),
        (r#"["get_status"]"#.to_owned(), not_understood.to_owned()),
        (r#"{"type":7}"#.to_owned(), not_understood.to_owned()),
        (r#"{"kind":"pong"}"#.to_owned(), not_understood.to_owned()),
    ];
    for (payload, message) in cases {
        let reply = only_reply(plugin.on_message(1, &text(&payload)).unwrap());
        assert_eq!(shape(&reply), ERROR, "{reply}");
        let value = parse(&reply);
        assert_eq!(value["type"], "error");
        assert_eq!(value["message"], message.as_str(), "{payload}");
        assert_eq!(value["client_id"], client_id.as_str());
    }
    let binary = Message {
        kind: FrameKind::Binary,
        payload: br#"{"type":"get_status"}"#.to_vec(),
        key: None,
        headers: Vec::new(),
    };
    let reply = parse(&only_reply(plugin.on_message(1, &binary).unwrap()));
    assert_eq!(
        reply["message"],
        "binary frames are not understood here: send JSON text such as {\"type\":\"get_status\"}"
    );
    // None of it counted as a pong; the session goes on.
    assert_eq!(get_status(&mut plugin, 1)["pong_count"], 0);
}

#[test]
fn connections_have_their_own_ids_counters_and_schedules() {
    let mut plugin = start(json!({ "endpoint": "health" }));
    let (id_a, t_a) = open_health(&mut plugin, 10);
    std::thread::sleep(Duration::from_millis(5));
    let (id_b, t_b) = open_health(&mut plugin, 11);
    assert_ne!(id_a, id_b);
    assert!(t_b > t_a);

    plugin.on_message(10, &text(r#"{"type":"pong"}"#)).unwrap();
    plugin.on_message(10, &text(r#"{"type":"pong"}"#)).unwrap();
    plugin.on_message(11, &text(r#"{"type":"pong"}"#)).unwrap();

    // Due for a, not yet for b.
    let beats = sends(plugin.on_tick(t_a + 30_000, &[10, 11]).unwrap());
    assert_eq!(beats.len(), 1);
    assert_eq!(beats[0].0, 10);
    assert_eq!(parse(&beats[0].1)["client_id"], id_a.as_str());
    // Both due (listed in any order, sent in id order), each numbered alone.
    let beats = sends(plugin.on_tick(t_b + 60_000, &[11, 10]).unwrap());
    let got: Vec<(u64, Value, Value)> = beats
        .iter()
        .map(|(id, text)| {
            let v = parse(text);
            (*id, v["ping_number"].clone(), v["client_id"].clone())
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (10, json!(2), Value::from(id_a.as_str())),
            (11, json!(1), Value::from(id_b.as_str())),
        ]
    );

    let a = get_status(&mut plugin, 10);
    let b = get_status(&mut plugin, 11);
    assert_eq!(
        (a["ping_count"].clone(), a["pong_count"].clone()),
        (json!(2), json!(2))
    );
    assert_eq!(
        (b["ping_count"].clone(), b["pong_count"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(a["client_id"], id_a.as_str());
    assert_eq!(b["client_id"], id_b.as_str());
}

#[test]
fn ticks_send_only_to_listed_known_connections_once() {
    let mut plugin = start(json!({ "endpoint": "health" }));
    let (_, t0) = open_health(&mut plugin, 1);
    let (_, _) = open_health(&mut plugin, 2);
    // 2 is open but not listed; 99 is not ours; 1 is listed twice while
    // three heartbeats behind: still one heartbeat.
    let beats = sends(plugin.on_tick(t0 + 95_000, &[99, 1, 1]).unwrap());
    assert_eq!(beats.len(), 1);
    assert_eq!(beats[0].0, 1);
    assert_eq!(parse(&beats[0].1)["ping_number"], 1);
    assert!(plugin.on_tick(t0 + 95_000, &[]).unwrap().is_empty());
}

#[test]
fn closing_forgets_the_connection() {
    let mut plugin = start(json!({ "endpoint": "health" }));
    let (_, t0) = open_health(&mut plugin, 1);
    let (_, _) = open_health(&mut plugin, 2);
    assert!(plugin.on_close(1, 1000, "bye").unwrap().is_empty());
    // Even listed (say, the host's list was taken before the close), the
    // closed connection gets nothing; the other one goes on.
    let beats = sends(plugin.on_tick(t0 + 60_000, &[1, 2]).unwrap());
    assert_eq!(beats.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![2]);
    // Closing an unknown connection is harmless.
    assert!(plugin.on_close(42, 1006, "").unwrap().is_empty());
}

#[test]
fn a_connection_unknown_to_the_instance_is_adopted() {
    // What a connection sees after a trap rebuilt the instance empty: its
    // messages are still answered, under a fresh client id.
    let mut plugin = start(json!({ "endpoint": "echo" }));
    let before = wall_ms();
    let echo = parse(&only_reply(plugin.on_message(9, &text("hi")).unwrap()));
    let t0 = opened_ms(echo["client_id"].as_str().unwrap(), "echo_client");
    assert!(t0 >= before);
    assert_eq!(echo["original"], "hi");
}

// ---- main ----

#[test]
fn main_has_no_welcome_and_answers_ping_with_pong() {
    let mut plugin = start(json!({ "endpoint": "main" }));
    let (actions, before, after) = open(&mut plugin, 4, "/ws");
    assert!(actions.is_empty(), "{actions:?}");

    for ping in [r#"{"type":"ping"}"#, r#"{ "type" : "ping", "seq": 3 }"#] {
        let pong = only_reply(plugin.on_message(4, &text(ping)).unwrap());
        assert_eq!(shape(&pong), PONG, "{pong}");
        let value = parse(&pong);
        assert_eq!(value["type"], "pong");
        let t0 = opened_ms(value["client_id"].as_str().unwrap(), "ws_client");
        assert!((before..=after).contains(&t0));
        assert!(value["timestamp"].as_f64().unwrap() * 1000.0 >= t0 as f64);
    }
}

#[test]
fn main_echoes_everything_else_with_processing_time() {
    let mut plugin = start(json!({ "endpoint": "main" }));
    plugin.on_open(&connection(4, "/ws")).unwrap();
    let pong = parse(&only_reply(
        plugin.on_message(4, &text(r#"{"type":"ping"}"#)).unwrap(),
    ));

    let before = wall_ms();
    let echo = only_reply(
        plugin
            .on_message(4, &text(r#"{"type":"custom","data":"test"}"#))
            .unwrap(),
    );
    let after = wall_ms();
    assert_eq!(shape(&echo), MAIN_ECHO, "{echo}");
    assert!(
        echo.starts_with(r#"{"type":"echo","data":{"type":"custom","data":"test"},"timestamp":"#),
        "{echo}"
    );
    let value = parse(&echo);
    assert_eq!(value["client_id"], pong["client_id"]);
    let at = (value["timestamp"].as_f64().unwrap() * 1000.0).round() as u64;
    assert!((before..=after).contains(&at));
    let processing = value["server_processing_ms"].as_f64().unwrap();
    assert!((0.0..50.0).contains(&processing), "{processing}");

    // Plain text (wscat's `ping` typed as a message) is data, not a ping.
    let echo = parse(&only_reply(plugin.on_message(4, &text("ping")).unwrap()));
    assert_eq!(echo["type"], "echo");
    assert_eq!(echo["data"], "ping");

    let bytes = vec![1u8, 2, 3];
    let binary = Message {
        kind: FrameKind::Binary,
        payload: bytes.clone(),
        key: None,
        headers: Vec::new(),
    };
    match <[Action; 1]>::try_from(plugin.on_message(4, &binary).unwrap()) {
        Ok([Action::Reply(reply)]) => {
            assert_eq!(reply.kind, FrameKind::Binary);
            assert_eq!(reply.payload, bytes);
        }
        other => panic!("expected one binary reply, got {other:?}"),
    }
}

#[test]
fn echo_and_main_send_no_heartbeats() {
    for endpoint in ["echo", "main"] {
        let mut plugin = start(json!({ "endpoint": endpoint }));
        plugin.on_open(&connection(1, "/ws")).unwrap();
        let far = wall_ms() + 3_600_000;
        assert!(plugin.on_tick(far, &[1]).unwrap().is_empty(), "{endpoint}");
    }
}

// ---- config ----

#[test]
fn bad_config_is_refused_at_load_with_a_clear_message() {
    let cases = [
        (
            json!({}),
            "invalid config: `endpoint` is required: one of \"echo\", \"health\", \"main\"",
        ),
        (
            json!({ "endpoint": "status" }),
            "invalid config: unknown variant `status`, expected one of `echo`, `health`, `main`",
        ),
        (
            json!({ "endpoint": "health", "ping_intervall": 5 }),
            "invalid config: unknown field `ping_intervall`, expected one of `endpoint`, `ping_interval`, `ping_timeout`, `expected_min_connection_duration`, `environment`",
        ),
        (
            json!({ "endpoint": "health", "ping_interval": 0 }),
            "invalid config: ping_interval must be at least 0.001 seconds (got 0)",
        ),
        (
            json!({ "endpoint": "health", "ping_interval": -5 }),
            "invalid config: ping_interval must be a number of seconds, 0 or more (got -5)",
        ),
        (
            json!({ "endpoint": "health", "ping_interval": "30" }),
            "invalid config: invalid type: string \"30\", expected a JSON number",
        ),
        (
            json!({ "endpoint": "health", "ping_timeout": -1 }),
            "invalid config: ping_timeout must be a number of seconds, 0 or more (got -1)",
        ),
        (
            json!({ "endpoint": "health", "expected_min_connection_duration": -0.5 }),
            "invalid config: expected_min_connection_duration must be a number of seconds, 0 or more (got -0.5)",
        ),
        (
            json!({ "endpoint": "health", "environment": "prod" }),
            "invalid config: environment must be a table (got a string)",
        ),
    ];
    for (config, message) in cases {
        let error = support::plugins::load("diagnostics", Role::Handler, &config.to_string())
            .err()
            .unwrap_or_else(|| panic!("{config} must be refused"));
        match error.kind {
            FaultKind::Init(reason) => assert_eq!(reason, message, "{config}"),
            other => panic!("{config}: expected an init error, got {other:?}"),
        }
    }
}
