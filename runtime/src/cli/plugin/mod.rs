//! `sluice plugin ...`: scaffold, build and test plugins.

mod build;
mod new;
mod template;
mod test;

use std::process::ExitCode;

use clap::Subcommand;

/// The `plugin` subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Create a plugin crate for a role, with a working example and a test.
    New(new::Args),
    /// Build a plugin crate as a wasm32-wasip2 component and check its world.
    Build(build::Args),
    /// Run a built plugin on fixture inputs and compare its outputs.
    Test(test::Args),
}

/// Runs one `plugin` subcommand.
pub fn run(command: &PluginCommand) -> anyhow::Result<ExitCode> {
    match command {
        PluginCommand::New(args) => new::run(args),
        PluginCommand::Build(args) => build::run(args),
        PluginCommand::Test(args) => test::run(args),
    }
}
