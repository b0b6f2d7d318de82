//! `sluice plugin test PLUGIN FIXTURES`: runs a plugin on the cases of a
//! fixture file and compares each outcome with what the case expects.
//! Exit 0 when every case passes, 1 when one fails, 2 when the fixtures
//! (or the arguments) are bad.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use sluice_runtime::builtin;
use sluice_runtime::plugin::{HostOptions, Limits, PluginHost, PluginId, PluginSpec, Role};
use sluice_runtime::testing::{self, Fixtures};

/// Arguments of `sluice plugin test`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A component (`target/.../my_plugin.wasm`) or a first-party plugin's name (`key-router`).
    pub plugin: String,
    /// The cases: a TOML file, or JSON when the name ends in `.json`.
    pub fixtures: PathBuf,
    /// Run only the cases whose name contains this text.
    pub filter: Option<String>,
    /// The plugin's config as a JSON object (replaces the fixture file's `config`).
    #[arg(long, conflicts_with = "config_file")]
    pub config: Option<String>,
    /// The plugin's config from a file: JSON when the name ends in `.json`, else TOML.
    #[arg(long)]
    pub config_file: Option<PathBuf>,
    /// The role to test it as, when the component exports several:
    /// `router`, `authenticator`, `transformer` or `handler`.
    #[arg(long)]
    pub role: Option<String>,
}

/// A usage or fixture problem: exit 2 with this message.
struct Bad(String);

/// Runs every case; prints one line per case and a summary.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    match run_cases(args) {
        Ok(code) => Ok(code),
        Err(Bad(message)) => {
            eprintln!("{message}");
            Ok(ExitCode::from(2))
        }
    }
}

fn run_cases(args: &Args) -> Result<ExitCode, Bad> {
    let text = std::fs::read_to_string(&args.fixtures)
        .map_err(|e| Bad(format!("{}: cannot read: {e}", args.fixtures.display())))?;
    let fixtures =
        testing::parse_fixtures(&args.fixtures, &text).map_err(|d| Bad(d.to_string()))?;
    let config_json = config_json(args, &fixtures)?;
    let bytes = component(&args.plugin)?;
    let host = PluginHost::new(HostOptions::default())
        .map_err(|e| Bad(format!("cannot start the plugin host: {e:#}")))?;
    let id = PluginId {
        plugin: args.plugin.clone(),
        pipeline: "plugin-test".into(),
        tenant: "default".into(),
    };
    let role = role(args, &host, &id, &bytes)?;
    for case in &fixtures.cases {
        testing::check_fits(role, case)
            .map_err(|e| Bad(format!("{}: {e}", args.fixtures.display())))?;
    }
    let spec = PluginSpec {
        id,
        role,
        bytes,
        config_json,
        limits: Limits::default(),
    };
    let plugin = match host.load(spec) {
        Ok(plugin) => plugin,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let filter = args.filter.as_deref();
    let chosen: Vec<_> = fixtures
        .cases
        .iter()
        .filter(|c| super::super::test::chosen(&c.name, filter))
        .collect();
    println!(
        "running {} case(s) on {} `{}`",
        chosen.len(),
        role.name(),
        args.plugin
    );
    let mut failed = 0;
    for case in &chosen {
        let verdict = testing::verdict(&case.name, &case.expect, testing::run_case(&plugin, case));
        failed += usize::from(!verdict.passed());
        println!("{verdict}");
    }
    let left_out = fixtures.cases.len() - chosen.len();
    Ok(super::super::test::summary(chosen.len(), failed, left_out))
}

/// `--config`, `--config-file`, the fixture file's `config`, or `{}`.
fn config_json(args: &Args, fixtures: &Fixtures) -> Result<String, Bad> {
    let value: serde_json::Value = if let Some(json) = &args.config {
        serde_json::from_str(json).map_err(|e| Bad(format!("--config is not JSON: {e}")))?
    } else if let Some(path) = &args.config_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Bad(format!("{}: cannot read: {e}", path.display())))?;
        if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| Bad(format!("{}: {e}", path.display())))?
        } else {
            toml::from_str(&text).map_err(|e| Bad(format!("{}: {e}", path.display())))?
        }
    } else {
        fixtures
            .config
            .clone()
            .unwrap_or_else(|| serde_json::json!({}))
    };
    if !value.is_object() {
        return Err(Bad(
            "the plugin's config must be a JSON object (a table)".into()
        ));
    }
    Ok(value.to_string())
}

/// The component's bytes: a file, or a first-party plugin by name.
fn component(plugin: &str) -> Result<Arc<[u8]>, Bad> {
    let is_path = plugin.contains('/') || plugin.ends_with(".wasm");
    if !is_path {
        if let Some(bytes) = builtin::embedded(plugin) {
            return Ok(Arc::from(bytes));
        }
        if let Some(path) = builtin::artifact(plugin) {
            return read(Path::new(path));
        }
        let known: Vec<&str> = builtin::EMBEDDED.iter().map(|(n, _)| *n).collect();
        return Err(Bad(format!(
            "unknown plugin `{plugin}`: first-party plugins are {}; a path must contain `/` or end in `.wasm`",
            known.join(", ")
        )));
    }
    read(Path::new(plugin))
}

fn read(path: &Path) -> Result<Arc<[u8]>, Bad> {
    std::fs::read(path)
        .map(Arc::from)
        .with_context(|| format!("cannot read plugin `{}`", path.display()))
        .map_err(|e| Bad(format!("{e:#}")))
}

/// `--role`, or the one role the component exports.
fn role(args: &Args, host: &PluginHost, id: &PluginId, bytes: &[u8]) -> Result<Role, Bad> {
    let exported = host
        .exported_roles(id, bytes)
        .map_err(|e| Bad(format!("error: {e}")))?;
    let names = || {
        exported
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match (&args.role, exported.as_slice()) {
        (Some(wanted), _) => {
            let role = Role::ALL
                .into_iter()
                .find(|r| r.name() == wanted)
                .ok_or_else(|| {
                    Bad(format!(
                        "--role {wanted}: not a role (router, authenticator, transformer, handler)"
                    ))
                })?;
            if !exported.contains(&role) {
                return Err(Bad(format!(
                    "plugin `{}` is not a {wanted}; it exports: {}",
                    args.plugin,
                    names()
                )));
            }
            Ok(role)
        }
        (None, [role]) => Ok(*role),
        (None, []) => Err(Bad(format!(
            "plugin `{}` exports no Sluice role (router, authenticator, transformer, handler)",
            args.plugin
        ))),
        (None, _) => Err(Bad(format!(
            "plugin `{}` exports several roles ({}): choose one with --role",
            args.plugin,
            names()
        ))),
    }
}
