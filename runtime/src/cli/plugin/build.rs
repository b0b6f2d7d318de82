//! `sluice plugin build` (not written yet).

use std::process::ExitCode;

/// Arguments of `sluice plugin build`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Not written yet.
pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sluice plugin build is not written yet")
}
