//! The built-in `native:key-router` and `native:basic-auth` decide exactly
//! as the `key-router` and `basic-auth` components they stand in for: same
//! routes, same decisions, same config errors, through the same
//! `PluginInstance` calls.

mod support;

use std::sync::Arc;

use sluice_runtime::plugin::{
    FaultKind, Handshake, Header, Limits, LoadedPlugin, Native, PluginError, PluginId,
    PluginInstance, PluginSpec, Role,
};
use sluice_runtime::record::Record;

fn native(native: Native, config_json: &str) -> Result<LoadedPlugin, PluginError> {
    LoadedPlugin::native(
        native,
        PluginSpec {
            id: PluginId {
                plugin: format!("native:{}", native.name()),
                pipeline: "test".into(),
                tenant: "t1".into(),
            },
            role: native.role(),
            bytes: Arc::from(Vec::new()),
            config_json: config_json.into(),
            limits: Limits::default(),
        },
    )
}

/// Both twins, instantiated with the same config.
fn twins(name: &str, config_json: &str) -> (PluginInstance, PluginInstance) {
    let kind = Native::from_plugin_name(&format!("native:{name}")).expect("a built-in");
    let wasm = support::plugins::instance(name, kind.role(), config_json);
    let native = native(kind, config_json)
        .expect("native loads")
        .instantiate()
        .expect("instantiate");
    (wasm, native)
}

fn init_error(result: Result<LoadedPlugin, PluginError>) -> String {
    match result.err().expect("the config must be refused").kind {
        FaultKind::Init(reason) => reason,
        other => panic!("expected an init error, got {other:?}"),
    }
}

#[test]
fn key_router_routes_like_the_component() {
    let keys: [Option<&[u8]>; 5] = [
        Some(b"a"),
        Some(b"orders"),
        None,
        Some(&[0xff, 0xfe]),
        Some(b""),
    ];
    let batch: Arc<[Record]> = keys.iter().map(|k| Record::new("t", *k, b"{}")).collect();
    for config in [
        "{}",
        r#"{"template": "orders.{key}"}"#,
        r#"{"all_channel": "*"}"#,
        r#"{"template": "{key}-x", "all_channel": "all"}"#,
    ] {
        let (mut wasm, mut native) = twins("key-router", config);
        let expected = wasm.route_batch(batch.clone()).expect("wasm routes");
        let got = native.route_batch(batch.clone()).expect("native routes");
        assert_eq!(
            format!("{got:?}"),
            format!("{expected:?}"),
            "config {config}"
        );
    }
}

#[test]
fn basic_auth_decides_like_the_component() {
    let config = r#"{"users": {"testuser": "testpass", "other": "a:b"},
                     "channels": {"testuser": ["channel1"]}, "realm": "here"}"#;
    let (mut wasm, mut native) = twins("basic-auth", config);
    let basic = |s: &str| {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
        .into_bytes()
    };
    let values: Vec<Option<Vec<u8>>> = vec![
        None,
        Some(basic("testuser:testpass")),
        Some(basic("other:a:b")),
        Some(basic("testuser:wrong")),
        Some(basic("nobody:testpass")),
        Some(basic("no-colon")),
        Some(b"Bearer abc".to_vec()),
        Some(b"basic dGVzdHVzZXI6dGVzdHBhc3M=".to_vec()),
        Some(b"Basic ***".to_vec()),
        Some(vec![0xff, 0x20]),
    ];
    for value in values {
        let handshake = Handshake {
            path: "/channel1".into(),
            query: String::new(),
            headers: value
                .iter()
                .map(|v| Header {
                    name: "authorization".into(),
                    value: v.clone(),
                })
                .collect(),
            remote_addr: "127.0.0.1:50000".into(),
            params: vec![("channel".into(), "channel1".into())],
        };
        let expected = wasm.authenticate(&handshake).expect("wasm decides");
        let got = native.authenticate(&handshake).expect("native decides");
        assert_eq!(
            format!("{got:?}"),
            format!("{expected:?}"),
            "header {value:?}"
        );
    }
}

#[test]
fn config_errors_match_the_components() {
    for (name, config) in [
        ("key-router", r#"{"template": "none"}"#),
        ("key-router", r#"{"all_channel": ""}"#),
        ("key-router", r#"{"unknown": 1}"#),
        ("basic-auth", "{}"),
        ("basic-auth", r#"{"users": {}}"#),
        ("basic-auth", r#"{"users": {"a": ""}}"#),
        (
            "basic-auth",
            r#"{"users": {"a": "x"}, "channels": {"b": []}}"#,
        ),
        (
            "basic-auth",
            r#"{"users": {"a": "x"}, "channels": {"a": [""]}}"#,
        ),
        ("basic-auth", r#"{"users": {"a:b": "x"}}"#),
    ] {
        let kind = Native::from_plugin_name(&format!("native:{name}")).unwrap();
        let expected = init_error(support::plugins::load(name, kind.role(), config));
        assert_eq!(
            init_error(native(kind, config)),
            expected,
            "{name} {config}"
        );
    }
}

#[test]
fn a_built_in_in_the_wrong_place_is_refused() {
    let spec = PluginSpec {
        id: PluginId {
            plugin: "native:key-router".into(),
            pipeline: "test".into(),
            tenant: "t1".into(),
        },
        role: Role::Authenticator,
        bytes: Arc::from(Vec::new()),
        config_json: "{}".into(),
        limits: Limits::default(),
    };
    let error = LoadedPlugin::native(Native::KeyRouter, spec)
        .err()
        .expect("refused");
    assert!(matches!(error.kind, FaultKind::WrongRole { .. }), "{error}");
}
