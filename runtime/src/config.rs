//! The pipeline file, read by the `sluice-config` crate, with the
//! first-party plugins this binary embeds as its built-ins.

use std::path::Path;

pub use sluice_config::*;

/// A loader that knows this binary's built-in plugins.
pub fn loader<'a>() -> Loader<'a> {
    Loader::new().builtins(crate::builtin::EMBEDDED)
}

/// Checks a pipeline file against the schema; reads plugin files but
/// compiles nothing.
pub fn load(path: impl AsRef<Path>) -> Result<Config, Diagnostics> {
    loader().load(path.as_ref())
}

/// Checks a pipeline file and every plugin in it: each must compile,
/// export the role its place needs, and accept its config in `init`.
pub fn validate(path: impl AsRef<Path>, host: &dyn PluginCheck) -> Result<Config, Diagnostics> {
    loader().plugins(host).load(path.as_ref())
}
