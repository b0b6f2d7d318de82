//! Support for Sluice's end-to-end tests: a real Kafka-protocol broker
//! process, Kafka producer/consumer helpers, and independent WebSocket
//! clients written in Python.
//!
//! The tools come from the project's install scripts, which `scripts/test.sh`
//! runs before `cargo test` and whose results it exports:
//!
//! | variable | script | what |
//! |---|---|---|
//! | `SLUICE_TANSU` | `scripts/install-broker.sh` | the tansu broker binary |
//! | `SLUICE_PYTHON` | `scripts/install-test-clients.sh` | the venv's Python, with `websockets` |
//! | `SLUICE_CHROMIUM` | `scripts/install-browser.sh` | headless Chromium for the browser tests |
//! | `SLUICE_COMPONENTIZE_PY` | `scripts/install-plugin-toolchains.sh` | componentize-py, for the Python example plugin |
//! | `SLUICE_JCO` | `scripts/install-plugin-toolchains.sh` | jco (with componentize-js), for the JavaScript example plugin |
//! | `SLUICE_WSTEST` | `scripts/install-autobahn.sh` | the Autobahn TestSuite's wstest, for the conformance run |
//!
//! When a variable is unset (a developer running `cargo test` by hand), the
//! scripts' default location under `${SLUICE_CI_CACHE:-~/.cache/sluice-ci}` is
//! used if it exists; otherwise the test fails and says which script to run.
//! A test never skips because a tool is missing.
//!
//! ```no_run
//! use sluice_tests::{Broker, kafka::{Consumer, Outgoing, Producer}};
//! use std::time::Duration;
//!
//! let broker = Broker::start()?;
//! broker.create_topic("ticks", 3)?;
//! let producer = Producer::new(&broker.bootstrap())?;
//! producer.send("ticks", &Outgoing::new("42").key("EURUSD"))?;
//! let consumer = Consumer::new(&broker.bootstrap(), "group", &["ticks"])?;
//! let records = consumer.collect(1, Duration::from_secs(20))?;
//! assert_eq!(records[0].payload_str(), Some("42"));
//! # Ok::<(), anyhow::Error>(())
//! ```

use std::path::PathBuf;

use anyhow::{Result, bail};

pub mod autobahn;
pub mod broker;
pub mod browser;
pub mod kafka;
pub mod ports;
pub mod python;
pub mod tls_terminator;
pub mod toolchains;

pub use broker::Broker;

/// The root of the repository (the parent of this crate).
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Finds a tool installed by one of the project's install scripts: the path
/// in `var` if set, else `relative` under the scripts' cache directory.
pub(crate) fn installed_tool(var: &str, relative: &str, script: &str) -> Result<PathBuf> {
    let hint =
        format!("run `bash {script}` (or `bash scripts/test.sh`, which runs it and exports {var})");
    if let Some(path) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{var}={} does not exist: {hint}", path.display());
        }
        return Ok(path);
    }
    let cache = match std::env::var_os("SLUICE_CI_CACHE").filter(|v| !v.is_empty()) {
        Some(cache) => PathBuf::from(cache),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".cache/sluice-ci"),
            None => bail!("{var} is not set and neither is HOME: {hint}"),
        },
    };
    let path = cache.join(relative);
    if path.is_file() {
        return Ok(path);
    }
    bail!(
        "{var} is not set and {} does not exist: {hint}",
        path.display()
    )
}
