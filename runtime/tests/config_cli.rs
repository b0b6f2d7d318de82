//! `sluice validate`: exit codes and output of the built binary.

mod support;

use std::process::{Command, Output};
use support::cli::text;

fn sluice(args: &[&str]) -> Output {
    support::cli::sluice_with_env(args, &[("WS_PASSWORD", "testpass")])
}

#[test]
fn valid_file_prints_a_summary_and_exits_0() {
    let out = sluice(&["validate", "tests/config/valid_seed000.toml"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(
        lines[0].starts_with(
            "ok: pipeline `websocket-destination` (tenant `default`) at ws://127.0.0.1:8080/{channel}: router key-router ["
        ),
        "{stdout}"
    );
    assert!(lines[0].contains("], auth basic-auth ["), "{stdout}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn invalid_file_prints_every_error_and_exits_1() {
    let out = sluice(&["validate", "tests/config/many_errors.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    insta::assert_snapshot!(text(&out.stderr));
}

#[test]
fn missing_env_var_fails() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["validate", "tests/config/valid_seed000.toml"])
        .env(
            "XDG_CACHE_HOME",
            tempfile::tempdir().expect("temp dir").path(),
        )
        .env_remove("WS_PASSWORD")
        .output()
        .expect("run sluice");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        "tests/config/valid_seed000.toml:21:33: environment variable `WS_PASSWORD` is not set\n\
         error: tests/config/valid_seed000.toml has 1 error\n"
    );
}

#[test]
fn the_repository_pipeline_validates() {
    let out = sluice(&["--log-format", "json", "validate", "../pipeline.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok: pipeline `websocket-destination`"));
}

#[test]
fn unreadable_file_and_usage_errors() {
    let out = sluice(&["validate", "tests/config/nope.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("tests/config/nope.toml: cannot read the file: "));

    let out = sluice(&["validate"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "clap reports a missing argument"
    );
    let out = sluice(&["--log-format", "xml", "validate", "pipeline.toml"]);
    assert_eq!(out.status.code(), Some(2));
}
