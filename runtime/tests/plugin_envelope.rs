//! The `envelope` plugin, built and loaded into the real host: seed 002's
//! message shape passes untouched, everything else is rejected with a
//! reason that names the problem.

mod support;

use sluice_runtime::plugin::{
    Direction, FaultKind, FrameKind, LoadedPlugin, Message, Outcome, PluginError, PluginInstance,
    Role, TransformContext,
};

fn load(config: &str) -> Result<LoadedPlugin, PluginError> {
    support::plugins::load("envelope", Role::Transformer, config)
}

fn start(config: &str) -> PluginInstance {
    load(config)
        .expect("load envelope")
        .instantiate()
        .expect("instantiate")
}

fn init_error(config: &str) -> String {
    match load(config).err().expect("the config must be refused").kind {
        FaultKind::Init(reason) => reason,
        other => panic!("expected an init error, got {other:?}"),
    }
}

/// `None` when the message is kept, the reason when it is rejected.
fn check_as(
    instance: &mut PluginInstance,
    kind: FrameKind,
    direction: Direction,
    payload: &str,
) -> Option<String> {
    let msg = Message {
        kind,
        payload: payload.as_bytes().to_vec(),
        key: None,
        headers: Vec::new(),
    };
    let ctx = TransformContext {
        direction,
        channel: "/chat".into(),
        principal_id: Some("testuser".into()),
    };
    match instance.transform(&msg, &ctx).expect("transform") {
        Outcome::Keep => None,
        Outcome::Reject(reason) => Some(reason),
        Outcome::Replace(messages) => {
            panic!("envelope never replaces; got {} messages", messages.len())
        }
    }
}

fn check(instance: &mut PluginInstance, payload: &str) -> Option<String> {
    check_as(instance, FrameKind::Text, Direction::Inbound, payload)
}

fn envelope(message_type: &str, timestamp: &str) -> String {
    format!(r#"{{"messageType":"{message_type}","content":"hello","timestamp":"{timestamp}"}}"#)
}

#[test]
fn well_formed_messages_are_kept_untouched() {
    let mut plugin = start("{}");
    for message_type in ["USER", "SYSTEM", "ACK", "ERROR"] {
        assert_eq!(
            check(&mut plugin, &envelope(message_type, "2024-05-01T12:30:00Z")),
            None
        );
    }
    for timestamp in [
        "2024-05-01T12:30:00.123Z",
        "2024-05-01T12:30:00.123456789+02:00",
        "2024-05-01t12:30:00z",
        "2024-05-01T23:59:59-11:30",
        "2024-02-29T00:00:00Z",
        "2000-02-29T00:00:00Z",
        "2016-12-31T23:59:60Z",
    ] {
        assert_eq!(
            check(&mut plugin, &envelope("USER", timestamp)),
            None,
            "{timestamp}"
        );
    }
    let extra =
        r#"{"messageType":"ACK","content":"","timestamp":"2024-05-01T12:30:00Z","id":7,"meta":{}}"#;
    assert_eq!(check(&mut plugin, extra), None, "other fields are allowed");
    let valid = envelope("USER", "2024-05-01T12:30:00Z");
    assert_eq!(
        check_as(&mut plugin, FrameKind::Binary, Direction::Outbound, &valid),
        None
    );
}

#[test]
fn message_type_must_be_an_allowed_string() {
    let mut plugin = start("{}");
    let reason = |t: &str| format!("messageType must be one of USER, SYSTEM, ACK, ERROR (got {t})");
    assert_eq!(
        check(&mut plugin, &envelope("FOO", "2024-05-01T12:30:00Z")),
        Some(reason("\"FOO\""))
    );
    assert_eq!(
        check(&mut plugin, &envelope("user", "2024-05-01T12:30:00Z")),
        Some(reason("\"user\""))
    );
    assert_eq!(
        check(
            &mut plugin,
            r#"{"content":"hi","timestamp":"2024-05-01T12:30:00Z"}"#
        )
        .as_deref(),
        Some("messageType is missing")
    );
    assert_eq!(
        check(&mut plugin, r#"{"messageType":1,"content":"hi"}"#).as_deref(),
        Some("messageType must be a string (got a number)")
    );
    // An attacker-sized value is quoted only in part.
    let long = "X".repeat(5000);
    let expected = reason(&format!("{:?}...", "X".repeat(64)));
    assert_eq!(
        check(&mut plugin, &envelope(&long, "2024-05-01T12:30:00Z")),
        Some(expected)
    );
}

#[test]
fn content_must_be_a_string() {
    let mut plugin = start("{}");
    let cases = [
        (
            r#"{"messageType":"USER","timestamp":"2024-05-01T12:30:00Z"}"#,
            "content is missing",
        ),
        (
            r#"{"messageType":"USER","content":null}"#,
            "content must be a string (got null)",
        ),
        (
            r#"{"messageType":"USER","content":{"text":"hi"}}"#,
            "content must be a string (got an object)",
        ),
        (
            r#"{"messageType":"USER","content":["hi"]}"#,
            "content must be a string (got an array)",
        ),
        (
            r#"{"messageType":"USER","content":true}"#,
            "content must be a string (got a boolean)",
        ),
    ];
    for (payload, reason) in cases {
        assert_eq!(
            check(&mut plugin, payload).as_deref(),
            Some(reason),
            "{payload}"
        );
    }
}

#[test]
fn timestamp_must_be_an_rfc_3339_date_time() {
    let mut plugin = start("{}");
    assert_eq!(
        check(&mut plugin, r#"{"messageType":"USER","content":"hi"}"#).as_deref(),
        Some("timestamp is missing")
    );
    assert_eq!(
        check(
            &mut plugin,
            r#"{"messageType":"USER","content":"hi","timestamp":1714566600}"#
        )
        .as_deref(),
        Some("timestamp must be a string (got a number)")
    );
    for bad in [
        "yesterday",
        "",
        "2024-05-01",
        "2024-05-01 12:30:00Z",
        "2024-05-01T12:30:00",
        "2024-05-01T12:30Z",
        "2024-05-01T12:30:00.Z",
        "2024-05-01T12:30:00+0200",
        "2024-05-01T12:30:00+02",
        "2024-05-01T12:30:00+24:00",
        "2024-05-01T12:30:00ZZ",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-05-01T24:00:00Z",
        "2024-05-01T12:60:00Z",
        "2024-05-01T12:30:61Z",
        "+2024-05-01T12:30:00Z",
        "2024-05-01T12:30:00\u{0660}Z",
    ] {
        let expected = format!(
            "timestamp must be an RFC 3339 date-time such as \"2024-05-01T12:30:00Z\" (got {bad:?})"
        );
        assert_eq!(
            check(&mut plugin, &envelope("USER", bad)),
            Some(expected),
            "{bad}"
        );
    }
}

#[test]
fn a_message_naming_a_key_twice_is_rejected() {
    let mut plugin = start("{}");
    // serde_json alone keeps the last `messageType`, so this passed as a
    // USER message while a reader keeping the first saw SHOUT.
    let payload = r#"{"messageType":"SHOUT","messageType":"USER","content":"hi"}"#;
    let reason = check(&mut plugin, payload).expect("rejected");
    assert!(
        reason.starts_with(r#"message is not JSON: duplicate key "messageType""#),
        "{reason}"
    );
    let nested = r#"{"messageType":"USER","content":"hi","meta":{"a":1,"a":2}}"#;
    assert!(check(&mut plugin, nested).is_some());
    let fine = r#"{"messageType":"USER","content":"hi","timestamp":"2024-05-01T12:30:00Z","meta":{"a":1,"b":{"a":2}}}"#;
    assert_eq!(check(&mut plugin, fine), None);
}

#[test]
fn anything_but_a_json_object_is_rejected() {
    let mut plugin = start("{}");
    let reason = check(&mut plugin, "not json").expect("rejected");
    assert!(
        reason.starts_with("message is not JSON: expected"),
        "{reason}"
    );
    let reason = check(&mut plugin, "").expect("rejected");
    assert!(reason.starts_with("message is not JSON: EOF"), "{reason}");
    let cases = [
        ("[1,2]", "message must be a JSON object (got an array)"),
        (r#""USER""#, "message must be a JSON object (got a string)"),
        ("null", "message must be a JSON object (got null)"),
        ("42", "message must be a JSON object (got a number)"),
    ];
    for (payload, reason) in cases {
        assert_eq!(
            check(&mut plugin, payload).as_deref(),
            Some(reason),
            "{payload}"
        );
    }
}

#[test]
fn allowed_types_and_require_timestamp_are_configurable() {
    let mut plugin = start(r#"{"allowed_types":["CHAT","PING"],"require_timestamp":false}"#);
    assert_eq!(
        check(&mut plugin, r#"{"messageType":"PING","content":""}"#),
        None
    );
    assert_eq!(
        check(&mut plugin, &envelope("CHAT", "2024-05-01T12:30:00Z")),
        None
    );
    assert_eq!(
        check(&mut plugin, r#"{"messageType":"USER","content":""}"#).as_deref(),
        Some(r#"messageType must be one of CHAT, PING (got "USER")"#)
    );
    // Optional, but checked when present.
    assert_eq!(
        check(
            &mut plugin,
            r#"{"messageType":"PING","content":"","timestamp":"now"}"#
        )
        .as_deref(),
        Some(
            r#"timestamp must be an RFC 3339 date-time such as "2024-05-01T12:30:00Z" (got "now")"#
        )
    );
}

#[test]
fn bad_config_is_refused_at_load_with_a_clear_reason() {
    assert_eq!(
        init_error(r#"{"allowed_types":[]}"#),
        "allowed_types is empty: no message could pass"
    );
    assert_eq!(
        init_error(r#"{"allowed_types":["USER",""]}"#),
        "allowed_types has an empty type"
    );
    let reason = init_error(r#"{"require_timestamp":"yes"}"#);
    assert!(
        reason.starts_with("invalid config: invalid type: string \"yes\", expected a boolean"),
        "{reason}"
    );
    let reason = init_error(r#"{"allowed_type":["USER"]}"#);
    assert!(
        reason.starts_with("invalid config: unknown field `allowed_type`"),
        "{reason}"
    );
}
