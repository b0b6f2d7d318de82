//! `sluice validate FILE`: every error in a pipeline file and its plugins,
//! or one line per pipeline saying what it will run (and how many
//! `[[tests]]` `sluice test` would run).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use super::checked;
use sluice_runtime::config::{Config, Direction, Pipeline, PluginSource};

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
    let host = checked::host_for(&args.file)?;
    match checked::config(&args.file, &host, "") {
        Ok(config) => {
            print!("{}", summary(&config));
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => Ok(ExitCode::FAILURE),
    }
}

/// One line per pipeline: where it is served and which plugins it runs;
/// then how many `[[tests]]` there are.
fn summary(config: &Config) -> String {
    let mut out = String::new();
    for pipeline in &config.pipelines {
        let url = config
            .listener(&pipeline.serving.listener)
            .map_or_else(String::new, |l| {
                let scheme = if l.tls.is_some() { "wss" } else { "ws" };
                format!(" at {scheme}://{}{}", l.address, pipeline.serving.path)
            });
        let _ = writeln!(
            out,
            "ok: pipeline `{}` (tenant `{}`){url}: {}",
            pipeline.name,
            pipeline.tenant,
            plugins(pipeline)
        );
    }
    if !config.tests.is_empty() {
        let _ = writeln!(
            out,
            "ok: {} test(s); run them with `sluice test {}`",
            config.tests.len(),
            config.file.display()
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
        .chain(pipeline.serving.auth.iter().map(|p| ("auth", p)))
        .chain(pipeline.transforms.iter().map(|t| {
            let slot = match t.direction {
                Direction::Both => "transform",
                Direction::Inbound => "transform (inbound)",
                Direction::Outbound => "transform (outbound)",
            };
            (slot, &t.plugin)
        }))
        .chain(pipeline.serving.handler.iter().map(|p| ("handler", p)));
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
