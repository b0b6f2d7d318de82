//! `sluice plugin test` (not written yet).

use std::process::ExitCode;

/// Arguments of `sluice plugin test`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Not written yet.
pub fn run(_args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("sluice plugin test is not written yet")
}
