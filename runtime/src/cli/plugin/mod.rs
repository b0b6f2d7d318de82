//! `sluice plugin ...`: scaffold, build and test plugins.

mod build;
mod new;
mod template;
mod test;

use std::process::ExitCode;

use clap::Subcommand;
use sluice_runtime::plugin::Role;

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

/// A role by its name, for the command line.
pub fn parse_role(name: &str) -> Result<Role, String> {
    Role::ALL
        .into_iter()
        .find(|role| role.name() == name)
        .ok_or_else(|| {
            let names: Vec<_> = Role::ALL.iter().map(|r| r.name()).collect();
            format!(
                "unknown role `{name}`; expected one of: {}",
                names.join(", ")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_by_name() {
        assert_eq!(parse_role("router"), Ok(Role::Router));
        let error = parse_role("routers").unwrap_err();
        assert!(
            error.contains("authenticator, router, transformer, handler"),
            "{error}"
        );
    }
}
