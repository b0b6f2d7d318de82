//! The `sluice` command line: parses arguments, sets up logging, and runs
//! one subcommand. Errors that end a command are `anyhow` errors with
//! context, printed once here.

mod checked;
mod logging;
mod plugin;
mod produce;
mod run;
mod test;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use logging::LogFormat;

/// Kafka streams to WebSocket clients, with routing, auth and transforms as WebAssembly plugins.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, propagate_version = true)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a pipeline file and every plugin in it; print each error as `file:line:col: message`.
    Validate(validate::Args),
    /// Run a pipeline file: consume its topics and serve its WebSocket paths until SIGINT/SIGTERM.
    Run(run::Args),
    /// Run the `[[tests]]` of a pipeline file through its real plugins.
    Test(test::Args),
    /// Send one record to a Kafka topic (e.g. the embedded broker of `sluice run`).
    Produce(produce::Args),
    /// Scaffold, build and test plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

/// Runs the command line and returns the process's exit code: 0 on
/// success, 1 when a command fails, 2 for a usage error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let result = match &cli.command {
        Command::Validate(args) => validate::run(args),
        Command::Run(args) => run::run(args),
        Command::Test(args) => test::run(args),
        Command::Produce(args) => produce::run(args),
        Command::Plugin(command) => plugin::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
