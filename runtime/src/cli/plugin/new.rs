//! `sluice plugin new` (not written yet).

use std::process::ExitCode;

/// Arguments of `sluice plugin new`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Not written yet.
pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sluice plugin new is not written yet")
}
