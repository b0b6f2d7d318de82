//! `sluice test FILE` (not written yet).

use std::process::ExitCode;

/// Arguments of `sluice test`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Not written yet.
pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sluice test is not written yet")
}
