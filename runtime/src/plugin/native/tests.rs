//! The built-in plugins on their own; `tests/plugin_native.rs` checks they
//! decide exactly as their WebAssembly twins.

use std::sync::Arc;

use base64::Engine as _;

use super::*;
use crate::plugin::{Denial, Header, Role};

fn router(config: &str) -> NativeInstance {
    NativeInstance::new(Native::KeyRouter, config).expect("router config")
}

fn routes(router: &NativeInstance, keys: &[Option<&[u8]>]) -> Vec<(bool, Vec<String>)> {
    let records: Arc<[Record]> = keys.iter().map(|k| Record::new("t", *k, b"x")).collect();
    router
        .route_batch(&records)
        .expect("a router routes")
        .into_iter()
        .map(|r| (r.key_channel, r.channels))
        .collect()
}

#[test]
fn names_select_built_ins_only_with_the_prefix() {
    assert_eq!(
        Native::from_plugin_name("native:key-router"),
        Some(Native::KeyRouter)
    );
    assert_eq!(
        Native::from_plugin_name("native:basic-auth"),
        Some(Native::BasicAuth)
    );
    assert_eq!(Native::from_plugin_name("key-router"), None);
    assert_eq!(Native::from_plugin_name("native:jwt-auth"), None);
    assert_eq!(Native::KeyRouter.role(), Role::Router);
    assert_eq!(Native::BasicAuth.role(), Role::Authenticator);
}

#[test]
fn key_router_routes_by_key_template_and_all_channel() {
    let plain = router("{}");
    assert_eq!(
        routes(&plain, &[Some(b"a"), None]),
        [(true, vec![]), (true, vec![])]
    );
    let templated = router(r#"{"template": "orders.{key}", "all_channel": "*"}"#);
    assert_eq!(
        routes(&templated, &[Some(b"a"), None, Some(&[0xff])]),
        [
            (false, vec!["orders.a".to_owned(), "*".to_owned()]),
            (false, vec!["*".to_owned()]),
            // Not UTF-8: left to the host's poison policy.
            (true, vec!["*".to_owned()]),
        ]
    );
    assert!(plain.authenticate(&handshake(None)).is_none());
}

#[test]
fn key_router_refuses_bad_config() {
    let error = |config: &str| {
        NativeInstance::new(Native::KeyRouter, config)
            .err()
            .expect("refused")
    };
    assert!(error(r#"{"template": "x"}"#).contains("has no {key} placeholder"));
    assert!(error(r#"{"template": "{key}{key}"}"#).contains("more than one {key}"));
    assert_eq!(
        error(r#"{"all_channel": ""}"#),
        "all_channel must not be empty"
    );
    assert!(
        error(r#"{"templat": "{key}"}"#).starts_with("invalid config: unknown field `templat`")
    );
}

fn handshake(authorization: Option<&str>) -> Handshake {
    Handshake {
        path: "/c".into(),
        query: String::new(),
        headers: authorization
            .map(|v| Header {
                name: "Authorization".into(),
                value: v.as_bytes().to_vec(),
            })
            .into_iter()
            .collect(),
        remote_addr: "127.0.0.1:1".into(),
        params: Vec::new(),
    }
}

fn basic(user_password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_password)
    )
}

#[test]
fn basic_auth_allows_listed_users_with_their_channels() {
    let auth = NativeInstance::new(
        Native::BasicAuth,
        r#"{"users": {"alice": "pw", "bob": "a:b"}, "channels": {"alice": ["c1"]}}"#,
    )
    .expect("auth config");
    let allowed = |value: &str| match auth.authenticate(&handshake(Some(value))) {
        Some(Decision::Allow(p)) => (p.id, p.claims, p.channels),
        other => panic!("expected allow, got {other:?}"),
    };
    assert_eq!(
        allowed(&basic("alice:pw")),
        ("alice".into(), "{}".into(), Some(vec!["c1".to_owned()]))
    );
    // The password may contain ':'; the scheme is case-insensitive.
    let lower = basic("bob:a:b").replacen("Basic", "bAsIc", 1);
    assert_eq!(allowed(&lower), ("bob".into(), "{}".into(), None));
}

#[test]
fn basic_auth_denies_with_a_challenge_and_a_reason() {
    let auth = NativeInstance::new(
        Native::BasicAuth,
        r#"{"users": {"alice": "pw"}, "realm": "r"}"#,
    )
    .expect("auth config");
    let denied = |value: Option<&str>| match auth.authenticate(&handshake(value)) {
        Some(Decision::Deny(Denial {
            status,
            reason,
            headers,
        })) => {
            assert_eq!(status, 401);
            assert_eq!(headers[0].name, "www-authenticate");
            assert_eq!(headers[0].value, b"Basic realm=\"r\"");
            reason
        }
        other => panic!("expected a denial, got {other:?}"),
    };
    assert_eq!(denied(None), "missing credentials");
    assert_eq!(denied(Some("Bearer x")), "malformed credentials");
    assert_eq!(denied(Some("Basic !!!")), "malformed credentials");
    assert_eq!(denied(Some(&basic("alice"))), "malformed credentials");
    assert_eq!(denied(Some(&basic("alice:nope"))), "invalid credentials");
    assert_eq!(denied(Some(&basic("eve:pw"))), "invalid credentials");
    assert!(auth.route_batch(&Arc::from(Vec::<Record>::new())).is_none());
}

#[test]
fn basic_auth_refuses_bad_config() {
    let error = |config: &str| {
        NativeInstance::new(Native::BasicAuth, config)
            .err()
            .expect("refused")
    };
    assert!(error(r#"{"users": {}}"#).starts_with("no users:"));
    assert!(error(r#"{"users": {"a:b": "x"}}"#).contains("contains ':'"));
    assert!(error(r#"{"users": {"a": ""}}"#).contains("is empty (an unset environment variable?)"));
    assert!(error(r#"{"users": {"a": "x"}, "realm": "a\"b"}"#).contains("may not contain"));
    assert_eq!(
        error(r#"{"users": {"a": "x"}, "channels": {"b": ["c"]}}"#),
        "channels lists user \"b\", who is not in users"
    );
    assert!(
        error(r#"{"users": {"a": "x"}, "channels": {"a": [""]}}"#)
            .starts_with("channels of user \"a\"")
    );
    assert!(error("{}").starts_with("no users:"));
}
