//! The plugin host's plumbing: the compiled-component cache, and guest
//! stdout/stderr landing in the host log tagged with the plugin.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use sluice_runtime::plugin::{HostOptions, PluginHost, PluginSpec, Role};
use sluice_runtime::record::Record;

/// A router spec tagged pipeline `host-test`, tenant `acme` (the log test
/// looks for both).
fn spec(name: &str) -> PluginSpec {
    let mut spec = support::plugins::spec(name, Role::Router, "{}");
    spec.id.pipeline = "host-test".into();
    spec.id.tenant = "acme".into();
    spec
}

fn host_with_cache(dir: &std::path::Path) -> PluginHost {
    PluginHost::new(HostOptions {
        cache_dir: Some(dir.to_owned()),
        ..HostOptions::default()
    })
    .unwrap()
}

fn cached_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn compiled_components_are_cached_by_content_hash_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = host_with_cache(dir.path())
        .load(spec("key-router"))
        .unwrap();
    let files = cached_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with(plugin.content_hash()),
        "{name} vs {}",
        plugin.content_hash()
    );
    assert!(name.ends_with(".cwasm"));

    // A second host (a restart) loads from the cache and works.
    let modified = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    let plugin = host_with_cache(dir.path())
        .load(spec("key-router"))
        .unwrap();
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        modified
    );
    let routes = plugin
        .instantiate()
        .unwrap()
        .route_batch(vec![Record::new("t", Some(b"k"), b"")].into())
        .unwrap();
    assert!(routes[0].key_channel);
}

#[test]
fn a_corrupt_cache_entry_is_replaced_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    host_with_cache(dir.path())
        .load(spec("key-router"))
        .unwrap();
    let file = cached_files(dir.path()).remove(0);
    std::fs::File::create(&file)
        .unwrap()
        .write_all(b"garbage")
        .unwrap();

    let plugin = host_with_cache(dir.path())
        .load(spec("key-router"))
        .unwrap();
    plugin.instantiate().unwrap();
    assert!(
        std::fs::metadata(&file).unwrap().len() > 1000,
        "entry was rewritten"
    );
}

/// Collects formatted log output.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn guest_stdout_and_stderr_go_to_the_log_tagged_with_the_plugin() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let host = PluginHost::new(HostOptions {
            cache_dir: None,
            ..HostOptions::default()
        })
        .unwrap();
        let mut instance = host.load(spec("faults")).unwrap().instantiate().unwrap();
        instance
            .route_batch(vec![Record::new("t", Some(b"print"), b"")].into())
            .unwrap();
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line = |needle: &str| {
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no log line with {needle:?} in:\n{log}"))
            .to_owned()
    };
    let out = line("hello from the faults plugin on stdout");
    assert!(
        out.contains("INFO") && out.contains("plugin=faults"),
        "{out}"
    );
    assert!(
        out.contains("pipeline=host-test") && out.contains("tenant=acme"),
        "{out}"
    );
    let err = line("hello from the faults plugin on stderr");
    assert!(
        err.contains("WARN") && err.contains("stream=\"stderr\""),
        "{err}"
    );
}

#[test]
fn plugins_get_no_environment_filesystem_or_network() {
    // The host process has environment variables to leak.
    assert!(std::env::vars().count() > 0);
    let host = PluginHost::new(HostOptions {
        cache_dir: None,
        ..HostOptions::default()
    })
    .unwrap();
    let mut instance = host.load(spec("faults")).unwrap().instantiate().unwrap();
    let routes = instance
        .route_batch(vec![Record::new("t", Some(b"sandbox"), b"")].into())
        .unwrap();
    assert_eq!(
        routes[0].channels,
        ["env-vars:0", "fs:denied", "net:denied"]
    );
}
