//! The `basic-auth` plugin, built and loaded into the real host: who gets
//! in, with which principal, and the exact 401 everyone else gets.

mod support;

use sluice_runtime::plugin::{
    Decision, FaultKind, Handshake, Header, LoadedPlugin, PluginError, PluginInstance, Principal,
    Role,
};

/// Seed 000's user, a second user without a channel list, and a password
/// that contains `:`.
const CONFIG: &str = r#"{
    "users": {"testuser": "testpass", "other": "s3cret", "colon": "a:b:c"},
    "channels": {"testuser": ["channel1", "channel2"]}
}"#;

fn load(config: &str) -> Result<LoadedPlugin, PluginError> {
    support::plugins::load("basic-auth", Role::Authenticator, config)
}

fn start(config: &str) -> PluginInstance {
    load(config)
        .expect("load basic-auth")
        .instantiate()
        .expect("instantiate")
}

fn init_error(config: &str) -> String {
    match load(config).err().expect("the config must be refused").kind {
        FaultKind::Init(reason) => reason,
        other => panic!("expected an init error, got {other:?}"),
    }
}

/// A handshake with these `authorization` header values.
fn handshake(authorization: &[&[u8]]) -> Handshake {
    Handshake {
        path: "/channel1".into(),
        query: String::new(),
        headers: authorization
            .iter()
            .map(|v| Header {
                name: "authorization".into(),
                value: v.to_vec(),
            })
            .collect(),
        remote_addr: "127.0.0.1:50000".into(),
        params: vec![("channel".into(), "channel1".into())],
    }
}

/// `Basic base64(user:password)`.
fn basic(user: &str, password: &str) -> Vec<u8> {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes())).into_bytes()
}

/// Standard base64 with padding, so the test does not trust the SDK's decoder.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn allowed(instance: &mut PluginInstance, request: &Handshake) -> Principal {
    match instance.authenticate(request).expect("authenticate") {
        Decision::Allow(principal) => principal,
        Decision::Deny(denial) => panic!("denied: {} {}", denial.status, denial.reason),
    }
}

/// The status, reason and `www-authenticate` value of a denial.
fn denied(instance: &mut PluginInstance, request: &Handshake) -> (u16, String, String) {
    match instance.authenticate(request).expect("authenticate") {
        Decision::Allow(principal) => panic!("allowed as {}", principal.id),
        Decision::Deny(denial) => {
            assert_eq!(denial.headers.len(), 1, "{:?}", denial.headers);
            assert_eq!(denial.headers[0].name, "www-authenticate");
            let challenge = String::from_utf8(denial.headers[0].value.clone()).unwrap();
            (denial.status, denial.reason, challenge)
        }
    }
}

fn challenge(reason: &str) -> (u16, String, String) {
    (401, reason.into(), r#"Basic realm="sluice""#.into())
}

#[test]
fn seed_credentials_are_let_in_with_their_channel_list() {
    assert_eq!(base64(b"testuser:testpass"), "dGVzdHVzZXI6dGVzdHBhc3M=");
    let mut auth = start(CONFIG);
    let principal = allowed(&mut auth, &handshake(&[b"Basic dGVzdHVzZXI6dGVzdHBhc3M="]));
    assert_eq!(principal.id, "testuser");
    assert_eq!(principal.claims, "{}");
    assert_eq!(
        principal.channels,
        Some(vec!["channel1".to_owned(), "channel2".to_owned()])
    );

    let principal = allowed(&mut auth, &handshake(&[&basic("other", "s3cret")]));
    assert_eq!(principal.id, "other");
    assert_eq!(
        principal.channels, None,
        "a user without a list may join any channel"
    );

    // The password is everything after the first ':'; the scheme is case-insensitive.
    let principal = allowed(&mut auth, &handshake(&[b"basic Y29sb246YTpiOmM="]));
    assert_eq!(principal.id, "colon");
}

#[test]
fn wrong_passwords_and_unknown_users_get_the_same_401() {
    let mut auth = start(CONFIG);
    for (user, password) in [
        ("testuser", "wrong"),
        ("testuser", "testpas"),
        ("testuser", "testpass2"),
        ("testuser", ""),
        ("TestUser", "testpass"),
        ("nobody", "testpass"),
        ("other", "testpass"),
        ("", ""),
    ] {
        let request = handshake(&[&basic(user, password)]);
        assert_eq!(
            denied(&mut auth, &request),
            challenge("invalid credentials"),
            "{user}:{password}"
        );
    }
}

#[test]
fn missing_or_malformed_credentials_are_refused_with_their_own_reason() {
    let mut auth = start(CONFIG);
    assert_eq!(
        denied(&mut auth, &handshake(&[])),
        challenge("missing credentials")
    );
    for malformed in [
        &b"Basic !!!not base64"[..],
        b"Bearer dGVzdHVzZXI6dGVzdHBhc3M=",
        b"dGVzdHVzZXI6dGVzdHBhc3M=",
        b"Basic",
        // "testuser" with no ':'.
        b"Basic dGVzdHVzZXI=",
        // Not UTF-8 once decoded.
        b"Basic //7/",
        b"Basic \xff\xfe",
    ] {
        let request = handshake(&[malformed]);
        let shown = String::from_utf8_lossy(malformed);
        assert_eq!(
            denied(&mut auth, &request),
            challenge("malformed credentials"),
            "{shown}"
        );
    }
    // Only the first authorization header counts.
    let request = handshake(&[b"Bearer x", &basic("testuser", "testpass")]);
    assert_eq!(
        denied(&mut auth, &request),
        challenge("malformed credentials")
    );
}

#[test]
fn the_realm_is_configurable() {
    let mut auth = start(r#"{"users": {"testuser": "testpass"}, "realm": "chat rooms"}"#);
    let (status, reason, header) = denied(&mut auth, &handshake(&[]));
    assert_eq!((status, reason.as_str()), (401, "missing credentials"));
    assert_eq!(header, r#"Basic realm="chat rooms""#);
}

#[test]
fn bad_config_is_refused_at_load_with_a_clear_reason() {
    let no_users = r#"no users: list at least one, e.g. users = { alice = "secret" }, or give username and password"#;
    assert_eq!(init_error("{}"), no_users);
    assert_eq!(init_error(r#"{"users": {}}"#), no_users);
    assert_eq!(
        init_error(r#"{"username": "a"}"#),
        "username and password go together: give both or neither"
    );
    assert_eq!(
        init_error(r#"{"users": {"a:b": "pw"}}"#),
        r#"user name "a:b" contains ':', which HTTP Basic cannot carry"#
    );
    assert_eq!(
        init_error(r#"{"users": {"alice": ""}}"#),
        r#"password of user "alice" is empty (an unset environment variable?)"#
    );
    assert_eq!(
        init_error(r#"{"users": {"alice": "pw"}, "channels": {"bob": ["x"]}}"#),
        r#"channels lists user "bob", who is not in users"#
    );
    assert_eq!(
        init_error(r#"{"users": {"alice": "pw"}, "channels": {"alice": [""]}}"#),
        r#"channels of user "alice": channel name is empty"#
    );
    assert_eq!(
        init_error(r#"{"users": {"alice": "pw"}, "realm": "a\"b"}"#),
        r#"realm "a\"b" may not contain '"'"#
    );
    // An `{ env = ... }` the host did not resolve is not a password.
    let reason = init_error(r#"{"users": {"alice": {"env": "WS_PASSWORD"}}}"#);
    assert!(
        reason.starts_with("invalid config: invalid type: map, expected a string"),
        "{reason}"
    );
    let reason = init_error(r#"{"users": {"alice": "pw"}, "user": "x"}"#);
    assert!(
        reason.starts_with("invalid config: unknown field `user`"),
        "{reason}"
    );
}
