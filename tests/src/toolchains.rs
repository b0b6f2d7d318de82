//! The toolchains that build plugins in other languages, and the example
//! plugins they build (`examples/plugins/`).
//!
//! `scripts/install-plugin-toolchains.sh` installs componentize-py (into the
//! test venv) and jco with componentize-js (with npm, in `node/` of the
//! cache); `scripts/test.sh` exports their paths as `SLUICE_COMPONENTIZE_PY`
//! and `SLUICE_JCO`. Unset, the script's default paths are used; missing,
//! the caller fails with a message naming the script.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{installed_tool, repo_root};

const INSTALL_SCRIPT: &str = "scripts/install-plugin-toolchains.sh";

/// componentize-py: `SLUICE_COMPONENTIZE_PY`, or where the install script
/// puts it.
pub fn componentize_py() -> Result<PathBuf> {
    installed_tool(
        "SLUICE_COMPONENTIZE_PY",
        "venv/bin/componentize-py",
        INSTALL_SCRIPT,
    )
}

/// jco: `SLUICE_JCO`, or where the install script puts it.
pub fn jco() -> Result<PathBuf> {
    installed_tool("SLUICE_JCO", "node/node_modules/.bin/jco", INSTALL_SCRIPT)
}

/// The example plugins in other languages, built as components.
#[derive(Debug, Clone)]
pub struct ExamplePlugins {
    /// `examples/plugins/python-router`, built with componentize-py.
    pub python_router: PathBuf,
    /// `examples/plugins/js-router`, built with jco componentize.
    pub js_router: PathBuf,
}

/// Builds the example plugins into `out` with
/// `scripts/build-example-plugins.sh` (which skips a component whose inputs
/// did not change) and returns their paths. Fails, naming the install
/// script, when a toolchain is missing.
pub fn build_example_plugins(out: &Path) -> Result<ExamplePlugins> {
    let (componentize_py, jco) = (componentize_py()?, jco()?);
    let script = repo_root().join("scripts/build-example-plugins.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(out)
        .env("SLUICE_COMPONENTIZE_PY", &componentize_py)
        .env("SLUICE_JCO", &jco)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "{} {} failed ({}):\n{log}",
            script.display(),
            out.display(),
            output.status
        );
    }
    let plugins = ExamplePlugins {
        python_router: out.join("python-router.wasm"),
        js_router: out.join("js-router.wasm"),
    };
    for path in [&plugins.python_router, &plugins.js_router] {
        if !path.is_file() {
            bail!("the build wrote no {}:\n{log}", path.display());
        }
    }
    Ok(plugins)
}
