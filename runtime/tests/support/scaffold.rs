//! Running `sluice plugin ...` and cargo on generated plugin crates, as a
//! user would: no environment inherited from the cargo running the tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// One target directory for every generated crate, inside the test build's
/// own (`<target>/plugin-scaffold-tests`), so the SDK and its dependencies
/// compile once.
pub fn shared_target() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_sluice"));
    let target = binary
        .parent()
        .and_then(Path::parent)
        .expect("the sluice binary lives in <target>/<profile>/");
    target.join("plugin-scaffold-tests")
}

/// Points `crate_dir/target` at [`shared_target`], so paths in a generated
/// crate (its README, the walk-through) stay what a user sees.
pub fn link_shared_target(crate_dir: &Path) {
    let shared = shared_target();
    std::fs::create_dir_all(&shared).unwrap();
    std::os::unix::fs::symlink(&shared, crate_dir.join("target")).unwrap();
}

/// `program` in `dir`, with the environment cargo set for the tests removed
/// (its toolchain choice, flags and target directory are not the user's).
pub fn clean_command(program: impl AsRef<std::ffi::OsStr>, dir: &Path) -> Command {
    let mut command = Command::new(program);
    command.current_dir(dir);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let from_cargo = key.starts_with("CARGO_") && key != "CARGO_HOME";
        if from_cargo
            || matches!(
                key.as_str(),
                "CARGO"
                    | "RUSTUP_TOOLCHAIN"
                    | "RUSTFLAGS"
                    | "RUSTC"
                    | "RUSTC_WRAPPER"
                    | "RUSTDOCFLAGS"
            )
        {
            command.env_remove(&key);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

/// `sluice ARGS` in `dir`, with its compile cache in `cache`.
pub fn sluice(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    clean_command(env!("CARGO_BIN_EXE_sluice"), dir)
        .args(args)
        .env("XDG_CACHE_HOME", cache)
        .output()
        .expect("run sluice")
}

/// stdout and stderr as text, for assertions and their messages.
pub fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Fails with both outputs unless the command exited 0.
pub fn expect_success(what: &str, out: &Output) -> String {
    let (stdout, stderr) = texts(out);
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    stdout
}
