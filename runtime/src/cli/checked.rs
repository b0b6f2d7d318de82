//! What `run`, `validate` and `test` share: a plugin host using the compile
//! cache the file asks for, and the checked file, its diagnostics printed.

use std::path::Path;

use anyhow::Context as _;
use sluice_runtime::config::{self, Config, Diagnostics};
use sluice_runtime::plugin::{CompileCache, HostOptions, PluginHost};

/// A plugin host for `file`: its `[plugins] cache_dir`, or the default (a
/// file too broken to say uses the default; its errors come later).
pub fn host_for(file: &Path) -> anyhow::Result<PluginHost> {
    let cache_dir = config::load(file)
        .ok()
        .and_then(|c| c.plugins.cache_dir)
        .unwrap_or_else(CompileCache::default_dir);
    PluginHost::new(HostOptions {
        cache_dir: Some(cache_dir),
        ..HostOptions::default()
    })
    .context("cannot start the plugin host")
}

/// Validates `file` with every plugin in it; on errors prints each as
/// `file:line:col: message`, then `error: FILE has N error(s){outcome}`
/// (`outcome` says what did not happen, e.g. `; nothing started`).
pub fn config(file: &Path, host: &PluginHost, outcome: &str) -> Result<Config, Diagnostics> {
    config::validate(file, host).inspect_err(|diagnostics| {
        for diagnostic in diagnostics.iter() {
            eprintln!("{diagnostic}");
        }
        let count = diagnostics.len();
        let noun = if count == 1 { "error" } else { "errors" };
        eprintln!("error: {} has {count} {noun}{outcome}", file.display());
    })
}
