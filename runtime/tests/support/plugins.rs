//! Loading first-party plugins, as built by `build.rs`, into a real host.

use sluice_runtime::builtin;
use sluice_runtime::plugin::{
    HostOptions, Limits, LoadedPlugin, PluginError, PluginHost, PluginId, PluginInstance,
    PluginSpec, Role,
};

/// One host per test process: its epoch ticker keeps running (so deadlines
/// fire) and its compile cache, under cargo's temporary directory for tests,
/// is keyed by the component's hash, so a rebuilt plugin is never stale.
pub fn host() -> &'static PluginHost {
    static HOST: std::sync::OnceLock<PluginHost> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-cache");
        PluginHost::new(HostOptions {
            cache_dir: Some(dir),
            ..HostOptions::default()
        })
        .expect("plugin host")
    })
}

/// Loads the built plugin `name` in `role` with `config_json` and default
/// limits.
pub fn load(name: &str, role: Role, config_json: &str) -> Result<LoadedPlugin, PluginError> {
    load_with(name, role, config_json, Limits::default())
}

/// [`load`] with explicit limits.
pub fn load_with(
    name: &str,
    role: Role,
    config_json: &str,
    limits: Limits,
) -> Result<LoadedPlugin, PluginError> {
    host().load(PluginSpec {
        limits,
        ..spec(name, role, config_json)
    })
}

/// What loading the built plugin `name` in `role` takes (pipeline `test`,
/// tenant `t1`, default limits).
pub fn spec(name: &str, role: Role, config_json: &str) -> PluginSpec {
    let path = builtin::artifact(name).unwrap_or_else(|| panic!("plugin `{name}` is built"));
    let bytes = std::fs::read(path).expect("read component");
    spec_of(name, bytes, role, config_json)
}

/// [`spec`] for a component's `bytes` from anywhere.
pub fn spec_of(name: &str, bytes: Vec<u8>, role: Role, config_json: &str) -> PluginSpec {
    PluginSpec {
        id: PluginId {
            plugin: name.into(),
            pipeline: "test".into(),
            tenant: "t1".into(),
        },
        role,
        bytes: bytes.into(),
        config_json: config_json.into(),
        limits: Limits::default(),
    }
}

/// A ready instance of `name`; panics if it does not load.
pub fn instance(name: &str, role: Role, config_json: &str) -> PluginInstance {
    load(name, role, config_json)
        .unwrap_or_else(|e| panic!("load {name}: {e}"))
        .instantiate()
        .expect("instantiate")
}

/// A connection as a handler sees it, opened on `path` from loopback.
pub fn connection(id: u64, path: &str) -> sluice_runtime::plugin::Connection {
    sluice_runtime::plugin::Connection {
        id,
        path: path.into(),
        params: Vec::new(),
        principal: None,
        remote_addr: "127.0.0.1:50000".into(),
        subprotocol: None,
    }
}

/// A text message without key or headers.
pub fn text(payload: &str) -> sluice_runtime::plugin::Message {
    sluice_runtime::plugin::Message {
        kind: sluice_runtime::plugin::FrameKind::Text,
        payload: payload.as_bytes().to_vec(),
        key: None,
        headers: Vec::new(),
    }
}
