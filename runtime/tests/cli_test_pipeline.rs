//! `sluice test FILE`: the `[[tests]]` of the repo's pipeline files pass
//! through their real plugins; a wrong expectation fails with a diff that
//! names the test and the field; bad `[[tests]]` are reported at their
//! line and column. No Kafka and no sockets.

mod support;

use std::path::Path;
use support::cli::{sluice, text};

/// Runs `sluice test` on `file`; (exit code, stdout, stderr).
fn test_file(file: &Path) -> (Option<i32>, String, String) {
    let out = sluice(&["test", file.to_str().expect("UTF-8 path")]);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Writes `text` as a pipeline file in a temp dir.
fn pipeline_file(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("pipeline.toml");
    std::fs::write(&path, text).expect("write pipeline file");
    (dir, path)
}

fn assert_all_pass(file: &str, count: usize) {
    let (code, stdout, stderr) = test_file(Path::new(file));
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let results: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("test ") && !l.starts_with("test result:"))
        .collect();
    assert_eq!(results.len(), count, "{stdout}");
    assert!(results.iter().all(|l| l.ends_with(" ... ok")), "{stdout}");
    assert!(
        stdout.contains(&format!("test result: ok. {count} passed; 0 failed")),
        "{stdout}"
    );
}

#[test]
fn the_repo_pipeline_tests_pass() {
    assert_all_pass("../pipeline.toml", 3);
    // `sluice validate` counts them; `sluice run` ignores them.
    let out = sluice(&["validate", "../pipeline.toml"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout)
            .ends_with("ok: 3 test(s); run them with `sluice test ../pipeline.toml`\n"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_filter_runs_only_the_tests_whose_name_contains_it() {
    let out = sluice(&["test", "../pipeline.toml", "password"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("running 2 test(s) from ../pipeline.toml\n"),
        "{stdout}"
    );
    assert!(!stdout.contains("channel1 goes to channel1"), "{stdout}");
    assert!(
        stdout.ends_with("test result: ok. 2 passed; 0 failed; 1 filtered out\n"),
        "{stdout}"
    );
}

#[test]
fn the_seed_001_002_and_003_example_tests_pass() {
    assert_all_pass("../examples/seed001-diagnostics.toml", 5);
    assert_all_pass("../examples/seed002-bridge.toml", 4);
    assert_all_pass("../examples/seed003-mock.toml", 9);
}

#[test]
fn a_wrong_expectation_fails_with_the_test_and_the_field() {
    let repo = std::fs::read_to_string("../pipeline.toml").expect("pipeline.toml");
    let wrong = repo.replace("expect = { status = 401,", "expect = { status = 403,");
    assert_ne!(wrong, repo, "pipeline.toml's 401 test moved");
    let (_dir, path) = pipeline_file(&wrong);
    let (code, stdout, stderr) = test_file(&path);
    assert_eq!(code, Some(1), "stdout: {stdout}\nstderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let fail = lines
        .iter()
        .position(|l| *l == "test a wrong password gets 401 and a Basic challenge ... FAIL")
        .unwrap_or_else(|| panic!("no FAIL line: {stdout}"));
    assert_eq!(
        lines[fail + 1],
        "    status: expected 403, got 401",
        "{stdout}"
    );
    assert!(lines[fail + 2].starts_with("    actual: {"), "{stdout}");
    assert!(lines[fail + 2].contains(r#""status":401"#), "{stdout}");
    assert!(
        stdout.contains("test result: FAILED. 2 passed; 1 failed"),
        "{stdout}"
    );
}

#[test]
fn bad_tests_are_reported_at_their_line_and_column() {
    let (_dir, path) = pipeline_file(
        r#"[[listeners]]
name = "public"
address = "127.0.0.1:8080"

[[pipelines]]
name = "p"
path = "/{channel}"
[pipelines.source]
topics = ["t"]
[pipelines.router]
plugin = "key-router"

[[tests]]
name = "unknown pipeline"
pipeline = "nope"
record = { key = "a" }
expect = { channels = ["a"] }

[[tests]]
name = "misspelt field"
record = { ky = "a" }
expect = { channels = ["a"] }

[[tests]]
name = "a message for a pipeline without a handler"
handshake = { path = "/a" }
message = { text = "x" }
expect = { status = 101 }

[[tests]]
name = "expects nothing"
record = { key = "a" }
"#,
    );
    let file = path.display().to_string();
    let (code, stdout, stderr) = test_file(&path);
    assert_eq!(code, Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0],
        format!("{file}:15:12: unknown pipeline `nope`; declared: `p`")
    );
    assert!(
        lines[1].starts_with(&format!(
            "{file}:21:12: unknown field `ky`, expected one of"
        )),
        "{stderr}"
    );
    assert_eq!(
        lines[2],
        format!(
            "{file}:27:11: test `a message for a pipeline without a handler`: pipeline `p` has no `[pipelines.handler]` or `[pipelines.sink]` to take it"
        )
    );
    assert_eq!(
        lines[3],
        format!(
            "{file}:30:1: case `expects nothing` expects nothing: add `expect = {{ ... }}` with the fields to check"
        )
    );
    // `sluice validate` checks them too; `sluice run` would refuse the file.
    let out = sluice(&["validate", &file]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(":15:12: unknown pipeline `nope`"));
}

#[test]
fn records_go_through_transforms_then_the_router() {
    let (_dir, path) = pipeline_file(
        r#"[[listeners]]
name = "public"
address = "127.0.0.1:8080"

[[pipelines]]
name = "chat"
path = "/{channel}"
[pipelines.source]
topics = ["t"]
format = "text"
[[pipelines.transforms]]
plugin = "envelope"
[pipelines.router]
plugin = "key-router"

[[tests]]
name = "an envelope reaches its key's channel"
record = { key = "room1", value_json = { messageType = "USER", content = "hi", timestamp = "2024-05-01T12:30:00Z" } }
expect = { channels = ["room1"], frame = "text", value_json = { content = "hi" } }

[[tests]]
name = "anything else is poison"
record = { key = "room1", value = "[1]" }
expect.channels = []
expect.rejected = "message must be a JSON object (got an array)"
expect.poison = "rejected by a transform: message must be a JSON object (got an array)"
"#,
    );
    let (code, stdout, stderr) = test_file(&path);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("test result: ok. 2 passed; 0 failed"),
        "{stdout}"
    );
}

#[test]
fn client_messages_become_the_records_a_sink_would_produce() {
    let (_dir, path) = pipeline_file(
        r#"[[listeners]]
name = "public"
address = "127.0.0.1:8080"

[[pipelines]]
name = "inbox"
path = "/in/{channel}"
[pipelines.sink]
topic = "websocket-messages"
key = "channel"
[[pipelines.transforms]]
plugin = "envelope"

[[tests]]
name = "an envelope is produced keyed by its channel, anything else refused"
handshake = { path = "/in/room1" }
messages = [
    { json = { messageType = "USER", content = "hi", timestamp = "2024-05-01T12:30:00Z" } },
    { text = "[1]" },
]
expect.produced = [
    { topic = "websocket-messages", key = "room1", value_json = { content = "hi" } },
    { refused = "message must be a JSON object (got an array)" },
]
"#,
    );
    let (code, stdout, stderr) = test_file(&path);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("test result: ok. 1 passed; 0 failed"),
        "{stdout}"
    );
}

#[test]
fn a_handler_sees_the_principal_the_gate_admitted() {
    let probe = sluice_runtime::builtin::artifact("handler-probe").expect("handler-probe built");
    let (_dir, path) = pipeline_file(&format!(
        r#"[[listeners]]
name = "public"
address = "127.0.0.1:8080"

[[pipelines]]
name = "probe"
path = "/rooms/{{channel}}"
[pipelines.auth]
plugin = "basic-auth"
config = {{ users = {{ alice = "secret" }}, channels = {{ alice = ["lobby"] }} }}
[pipelines.handler]
plugin = "{probe}"

[[tests]]
name = "alice is herself in the lobby"
handshake = {{ path = "/rooms/lobby", basic = "alice:secret" }}
message = {{ text = "whoami" }}
expect.status = 101
expect.on_open = [{{ reply = {{ text = "open 1" }} }}]
expect.actions = [{{ reply = {{ text = "1 /rooms/lobby alice channel=lobby" }} }}]

[[tests]]
name = "alice may not enter the kitchen"
handshake = {{ path = "/rooms/kitchen", basic = "alice:secret" }}
message = {{ text = "whoami" }}
expect = {{ status = 403, reason = "channel not allowed" }}

[[tests]]
name = "a join outside alice's channels would be refused"
handshake = {{ path = "/rooms/lobby", basic = "alice:secret" }}
message = {{ text = "join kitchen" }}
expect.actions = [{{ join = "kitchen", refused = "channel not allowed" }}, {{ reply = {{ text = "joined kitchen" }} }}]

[[tests]]
name = "a publish without a sink would be refused"
handshake = {{ path = "/rooms/lobby", basic = "alice:secret" }}
message = {{ text = "publish hi" }}
expect.actions = [{{ publish = {{ value = "hi" }}, refused = "the pipeline has no sink" }}, {{ reply = {{ text = "published" }} }}]

[[tests]]
name = "a trapping handler call is an error"
handshake = {{ path = "/rooms/lobby", basic = "alice:secret" }}
message = {{ text = "trap" }}
expect = {{ status = 101, error = "trap" }}
"#
    ));
    let (code, stdout, stderr) = test_file(&path);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("test result: ok. 5 passed; 0 failed"),
        "{stdout}"
    );
}
