//! `sluice validate FILE`: every error in a pipeline file and its plugins,
//! or one line per pipeline saying what it will run.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use sluice_runtime::config::{self, Config, Pipeline, PluginSource};
use sluice_runtime::plugin::{CompileCache, HostOptions, PluginHost};

/// Arguments of `sluice validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file, e.g. `pipeline.toml`.
    pub file: PathBuf,
}

/// Hex digits of a plugin's SHA-256 shown in the summary.
const HASH_PREFIX: usize = 12;

/// Prints every diagnostic (exit 1) or a summary per pipeline (exit 0).
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    // The compile cache the pipeline asks for, if the file says so (a file
    // too broken to tell uses the default; its errors are reported below).
    let cache_dir = config::load(&args.file)
        .ok()
        .and_then(|c| c.plugins.cache_dir)
        .unwrap_or_else(CompileCache::default_dir);
    let host = PluginHost::new(HostOptions {
        cache_dir: Some(cache_dir),
        ..HostOptions::default()
    })
    .context("cannot start the plugin host")?;
    match config::validate(&args.file, &host) {
        Ok(config) => {
            print!("{}", summary(&config));
            Ok(ExitCode::SUCCESS)
        }
        Err(diagnostics) => {
            for diagnostic in diagnostics.iter() {
                eprintln!("{diagnostic}");
            }
            let count = diagnostics.len();
            let noun = if count == 1 { "error" } else { "errors" };
            eprintln!("error: {} has {count} {noun}", args.file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// One line per pipeline: where it is served and which plugins it runs.
fn summary(config: &Config) -> String {
    let mut out = String::new();
    for pipeline in &config.pipelines {
        let url = config
            .listener(&pipeline.listener)
            .map_or_else(String::new, |l| {
                let scheme = if l.tls.is_some() { "wss" } else { "ws" };
                format!(" at {scheme}://{}{}", l.address, pipeline.path)
            });
        let _ = writeln!(
            out,
            "ok: pipeline `{}` (tenant `{}`){url}: {}",
            pipeline.name,
            pipeline.tenant,
            plugins(pipeline)
        );
    }
    out
}

fn plugins(pipeline: &Pipeline) -> String {
    let mut parts = Vec::new();
    let slots = pipeline
        .router
        .iter()
        .map(|p| ("router", p))
        .chain(pipeline.auth.iter().map(|p| ("auth", p)))
        .chain(pipeline.transforms.iter().map(|p| ("transform", p)))
        .chain(pipeline.handler.iter().map(|p| ("handler", p)));
    for (slot, plugin) in slots {
        let name = match &plugin.source {
            PluginSource::Builtin(name) => name.clone(),
            PluginSource::File(path) => path.display().to_string(),
            PluginSource::Native(_) => plugin.name.clone(),
        };
        parts.push(format!("{slot} {name} [{}]", &plugin.hash[..HASH_PREFIX]));
    }
    if parts.is_empty() {
        "no plugins".to_owned()
    } else {
        parts.join(", ")
    }
}
