//! Cost of plugin calls on the record path, and of loading plugins.
//!
//! - `route/*`: routing one record, as the host does it (call the router,
//!   then resolve each route's channel names), for the key-router plugin in
//!   batches of 1 and 64, against the same logic in native Rust, at 0 B,
//!   100 B and 1 KiB payloads. Throughput is per record. `builtin-*` is the
//!   built-in `native:key-router` through the same `PluginInstance` call
//!   (checks and metrics included): the plugin-overhead baseline.
//! - `auth/*`: one Basic-auth handshake (allowed, and denied) with the
//!   basic-auth component and with `native:basic-auth`.
//! - `load/*`: loading key-router with a cold and a warm compile cache, and
//!   instantiating a loaded plugin (a fresh store plus `init`, as after a trap).
//!
//! Run: `cargo bench -p sluice-runtime --bench plugin_calls`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sluice_runtime::builtin;
use sluice_runtime::plugin::{
    Allocator, Handshake, Header, HostOptions, Limits, LoadedPlugin, Native, PluginHost, PluginId,
    PluginInstance, PluginSpec, Role, Route,
};
use sluice_runtime::record::Record;

const PAYLOADS: [usize; 3] = [0, 100, 1024];

fn spec(config: &str) -> PluginSpec {
    spec_of("key-router", Role::Router, config)
}

fn spec_of(name: &str, role: Role, config: &str) -> PluginSpec {
    PluginSpec {
        id: PluginId {
            plugin: name.into(),
            pipeline: "bench".into(),
            tenant: "bench".into(),
        },
        role,
        bytes: builtin::embedded(name).expect("embedded").into(),
        config_json: config.into(),
        limits: Limits::default(),
    }
}

/// The built-in twin of `name`, loaded with `config`.
fn builtin(native: Native, config: &str) -> LoadedPlugin {
    LoadedPlugin::native(native, spec_of(native.name(), native.role(), config)).unwrap()
}

fn records(n: usize, payload: usize) -> Arc<[Record]> {
    (0..n)
        .map(|i| {
            let key = format!("channel{}", i % 10);
            Record::new("bench", Some(key.as_bytes()), &vec![b'x'; payload])
        })
        .collect::<Vec<_>>()
        .into()
}

/// What the host does with the routes: resolve each channel name.
fn resolve<'a>(records: &'a [Record], routes: &'a [Route]) -> usize {
    let mut names = 0;
    for (record, route) in records.iter().zip(routes) {
        if let Some(key) = record.key.as_deref().filter(|_| route.key_channel) {
            names += std::str::from_utf8(key)
                .map(|k| black_box(k).len())
                .unwrap_or(0);
        }
        names += route
            .channels
            .iter()
            .map(|c| black_box(c.as_str()).len())
            .sum::<usize>();
    }
    names
}

/// The same routing logic, natively: the channel is the key, as UTF-8.
fn route_native(records: &[Record]) -> usize {
    records
        .iter()
        .filter_map(|r| r.key.as_deref())
        .filter_map(|k| std::str::from_utf8(k).ok())
        .map(|k| black_box(k).len())
        .sum()
}

fn route(c: &mut Criterion) {
    let host = PluginHost::new(HostOptions {
        cache_dir: None,
        ..HostOptions::default()
    })
    .unwrap();
    let plain = host.load(spec("{}")).unwrap();
    let templated = host.load(spec(r#"{"template":"room-{key}"}"#)).unwrap();
    let mut group = c.benchmark_group("route");
    for payload in PAYLOADS {
        for batch in [1usize, 64] {
            let input = records(batch, payload);
            group.throughput(Throughput::Elements(batch as u64));
            let mut run = |name: &str, instance: &mut PluginInstance| {
                group.bench_with_input(
                    BenchmarkId::new(format!("{name}/batch{batch}"), format!("{payload}B")),
                    &input,
                    |b, input| {
                        b.iter(|| {
                            let routes = instance.route_batch(input.clone()).unwrap();
                            resolve(input, &routes)
                        })
                    },
                );
            };
            run("wasm-key", &mut plain.instantiate().unwrap());
            run("wasm-template", &mut templated.instantiate().unwrap());
            let mut builtin_key = builtin(Native::KeyRouter, "{}").instantiate().unwrap();
            run("builtin-key", &mut builtin_key);
            let template = r#"{"template":"room-{key}"}"#;
            run(
                "builtin-template",
                &mut builtin(Native::KeyRouter, template).instantiate().unwrap(),
            );
            group.bench_with_input(
                BenchmarkId::new(format!("native/batch{batch}"), format!("{payload}B")),
                &input,
                |b, input| b.iter(|| route_native(input)),
            );
        }
    }
    group.finish();
}

fn load(c: &mut Criterion) {
    let cache = tempfile::tempdir().unwrap();
    let cold = PluginHost::new(HostOptions {
        cache_dir: None,
        ..HostOptions::default()
    })
    .unwrap();
    let warm = PluginHost::new(HostOptions {
        cache_dir: Some(cache.path().to_owned()),
        ..HostOptions::default()
    })
    .unwrap();
    warm.load(spec("{}")).unwrap(); // fills the cache
    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    group.bench_function("compile (no cache)", |b| {
        b.iter(|| cold.load(spec("{}")).unwrap())
    });
    group.bench_function("warm cache", |b| b.iter(|| warm.load(spec("{}")).unwrap()));
    let loaded = warm.load(spec("{}")).unwrap();
    group.sample_size(50);
    group.bench_function("instantiate + init (on-demand)", |b| {
        b.iter(|| loaded.instantiate().unwrap())
    });
    let pooled = PluginHost::new(HostOptions {
        cache_dir: Some(cache.path().to_owned()),
        allocator: Allocator::Pooling {
            instances: 64,
            max_memory_bytes: Limits::DEFAULT_MEMORY_BYTES,
        },
    })
    .unwrap()
    .load(spec("{}"))
    .unwrap();
    group.bench_function("instantiate + init (pooling)", |b| {
        b.iter(|| pooled.instantiate().unwrap())
    });
    group.finish();
}

fn auth(c: &mut Criterion) {
    let host = PluginHost::new(HostOptions {
        cache_dir: None,
        ..HostOptions::default()
    })
    .unwrap();
    let config = r#"{"users": {"alice": "secret", "bob": "hunter2"}}"#;
    let wasm = host
        .load(spec_of("basic-auth", Role::Authenticator, config))
        .unwrap();
    let native = builtin(Native::BasicAuth, config);
    let handshake = |credentials: &str| Handshake {
        path: "/room".into(),
        query: String::new(),
        headers: vec![Header {
            name: "authorization".into(),
            // base64("alice:secret") and base64("alice:wrong").
            value: format!("Basic {credentials}").into_bytes(),
        }],
        remote_addr: "127.0.0.1:50000".into(),
        params: vec![("channel".into(), "room".into())],
    };
    let mut group = c.benchmark_group("auth");
    for (case, credentials) in [("allow", "YWxpY2U6c2VjcmV0"), ("deny", "YWxpY2U6d3Jvbmc=")] {
        let request = handshake(credentials);
        for (name, plugin) in [("wasm", &wasm), ("builtin", &native)] {
            let mut instance = plugin.instantiate().unwrap();
            group.bench_function(format!("{name}/{case}"), |b| {
                b.iter(|| instance.authenticate(&request).unwrap())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, route, auth, load);
criterion_main!(benches);
