//! Running the built `sluice` binary as a command-line tool.

use std::process::{Command, Output};

/// Runs `sluice ARGS` with a fresh compile cache (kept out of the user's
/// home) and no `RUST_LOG`, plus `env`.
pub fn sluice_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let cache = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    command
        .args(args)
        .env("XDG_CACHE_HOME", cache.path())
        .env_remove("RUST_LOG");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("run sluice")
}

/// Runs `sluice ARGS` (see [`sluice_with_env`]).
pub fn sluice(args: &[&str]) -> Output {
    sluice_with_env(args, &[])
}

/// Command output as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}
