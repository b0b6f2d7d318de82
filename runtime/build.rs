//! Builds every first-party plugin under `plugins/` as a wasm32-wasip2
//! component, so a plain `cargo build` leaves nothing to do by hand, and
//! writes `plugins.rs` into OUT_DIR: the artifact paths plus the bytes of
//! the plugins the binary embeds.
//!
//! The plugins are their own cargo workspace with their own target directory
//! (beside this build's), so the nested cargo never waits on our lock.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (name used in pipeline.toml, crate name, embedded in the binary?)
const PLUGINS: &[(&str, &str, bool)] = &[
    ("key-router", "key_router", true),
    ("faults", "faults", false),
    ("json-router", "json_router", true),
    ("basic-auth", "basic_auth", true),
    ("jwt-auth", "jwt_auth", true),
    ("envelope", "envelope", true),
    ("diagnostics", "diagnostics", true),
    ("mock", "mock", true),
    ("handler-probe", "handler_probe", false),
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest_dir.parent().expect("runtime/ has a parent");
    for dir in ["plugins", "sdk", "rules", "wit"] {
        println!("cargo:rerun-if-changed={}", repo.join(dir).display());
    }
    println!("cargo:rerun-if-env-changed=SLUICE_PLUGIN_PROFILE");

    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    let target_dir = plugin_target_dir(&out_dir);
    build_plugins(repo, &target_dir);

    let release_dir = target_dir.join(TARGET).join("release");
    let mut code = String::from("/// Built plugin components: (name, path).\n");
    code.push_str("pub const ARTIFACTS: &[(&str, &str)] = &[\n");
    for (name, krate, _) in PLUGINS {
        let path = release_dir.join(format!("{krate}.wasm"));
        assert!(path.exists(), "plugin build left no {}", path.display());
        writeln!(code, "    ({name:?}, {:?}),", path.display().to_string()).unwrap();
    }
    code.push_str("];\n\n/// Plugins embedded in the binary: (name, component bytes).\n");
    code.push_str("pub const EMBEDDED: &[(&str, &[u8])] = &[\n");
    for (name, krate, embedded) in PLUGINS {
        if *embedded {
            let path = release_dir.join(format!("{krate}.wasm"));
            writeln!(
                code,
                "    ({name:?}, include_bytes!({:?})),",
                path.display().to_string()
            )
            .unwrap();
        }
    }
    code.push_str("];\n");
    std::fs::write(out_dir.join("plugins.rs"), code).unwrap();
}

/// `<cargo target dir>/wasm-plugins`: found from OUT_DIR, which is
/// `<target>/<profile>/build/<pkg>-<hash>/out` (with an extra `<triple>`
/// level when cross-compiling the host).
fn plugin_target_dir(out_dir: &Path) -> PathBuf {
    let build = out_dir
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .expect("OUT_DIR is under a build/ directory");
    let profile_dir = build.parent().expect("build/ has a parent");
    let mut target = profile_dir.parent().expect("profile dir has a parent");
    if target.join("CACHEDIR.TAG").exists() || target.file_name().is_some_and(|n| n == "target") {
        return target.join("wasm-plugins");
    }
    // Cross-compiling: <target>/<triple>/<profile>.
    target = target.parent().unwrap_or(target);
    target.join("wasm-plugins")
}

fn build_plugins(repo: &Path, target_dir: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(repo.join("plugins"))
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(target_dir);
    // Clean the environment cargo set up for *this* build: flags, wrappers
    // (clippy-driver) and the target dir belong to the host build only.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let inherited =
            key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS";
        if inherited
            || matches!(
                key.as_str(),
                "RUSTFLAGS"
                    | "RUSTC_WRAPPER"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "RUSTDOCFLAGS"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "NUM_JOBS"
            )
        {
            cmd.env_remove(&key);
        }
    }
    let output = cmd.output().expect("failed to run cargo for the plugins");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint =
            if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed") {
                "\nhint: run `rustup target add wasm32-wasip2` (rust-toolchain.toml lists it)"
            } else {
                ""
            };
        panic!("building the plugins under plugins/ failed:\n{stderr}{hint}");
    }
}
