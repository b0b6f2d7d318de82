//! `sluice plugin test PLUGIN FIXTURES`: first-party plugins of every role
//! pass their fixtures (tests/fixtures/plugin-test/); a wrong expectation
//! fails with a diff; expected faults (trap, deadline) pass; bad fixtures
//! exit 2 with `file:line:col`.

mod support;

use support::cli::{sluice, text};

const FIXTURES: &str = "tests/fixtures/plugin-test";

/// `sluice plugin test PLUGIN FIXTURES ARGS...`: (exit code, stdout, stderr).
fn plugin_test(plugin: &str, fixtures: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut all = vec!["plugin", "test", plugin, fixtures];
    all.extend_from_slice(args);
    let out = sluice(&all);
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

fn assert_passes(plugin: &str, fixtures: &str, cases: usize) -> String {
    let (code, stdout, stderr) = plugin_test(plugin, &format!("{FIXTURES}/{fixtures}"), &[]);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let oks = stdout.lines().filter(|l| l.ends_with(" ... ok")).count();
    assert_eq!(oks, cases, "{stdout}");
    assert!(
        stdout.contains(&format!("test result: ok. {cases} passed; 0 failed")),
        "{stdout}"
    );
    stdout
}

#[test]
fn key_router_routes_by_key_drops_keyless_records_and_poisons_bad_keys() {
    let stdout = assert_passes("key-router", "key-router.toml", 4);
    assert!(
        stdout.starts_with("running 4 case(s) on router `key-router`"),
        "{stdout}"
    );
}

#[test]
fn config_comes_from_the_fixture_file_or_the_command_line() {
    assert_passes("key-router", "key-router-template.toml", 1);
    // --config replaces the file's config: the template is gone.
    let (code, stdout, _) = plugin_test(
        "key-router",
        &format!("{FIXTURES}/key-router-template.toml"),
        &["--config", r#"{"template": "x.{key}"}"#],
    );
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(r#"    channels[0]: expected "orders.42", got "x.42""#),
        "{stdout}"
    );
}

#[test]
fn basic_auth_allows_and_denies_with_a_challenge() {
    assert_passes("basic-auth", "basic-auth.toml", 3);
}

#[test]
fn envelope_fixtures_in_json_pass() {
    assert_passes("envelope", "envelope.json", 2);
}

#[test]
fn a_handler_returns_its_actions_and_a_trap_can_be_expected() {
    assert_passes("handler-probe", "handler-probe.toml", 5);
}

#[test]
fn trapping_and_spinning_plugins_pass_when_the_fault_is_expected() {
    // By path, as a plugin author's own build would be given.
    let faults = sluice_runtime::builtin::artifact("faults").expect("faults built");
    let (code, stdout, stderr) = plugin_test(faults, &format!("{FIXTURES}/faults.toml"), &[]);
    assert_eq!(code, Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.contains("test a trap is expected ... ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test a spinning router hits its deadline ... ok"),
        "{stdout}"
    );
}

#[test]
fn a_failing_case_shows_a_diff_and_exits_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cases.toml");
    std::fs::write(
        &path,
        r#"
[[cases]]
name = "right"
handshake = { path = "/a", basic = "testuser:testpass" }
expect = { decision = "allow" }

[[cases]]
name = "wrong"
handshake = { path = "/a", basic = "testuser:oops" }
expect = { decision = "allow", principal = "testuser" }
"#,
    )
    .expect("write fixtures");
    let (code, stdout, stderr) = plugin_test(
        "basic-auth",
        path.to_str().expect("UTF-8 path"),
        &["--config", r#"{"users": {"testuser": "testpass"}}"#],
    );
    assert_eq!(code, Some(1), "stdout: {stdout}\nstderr: {stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[1..5],
        [
            "test right ... ok",
            "test wrong ... FAIL",
            r#"    decision: expected "allow", got "deny""#,
            r#"    principal: expected "testuser", got nothing"#,
        ],
        "{stdout}"
    );
    assert!(lines[5].starts_with("    actual: {"), "{stdout}");
    assert!(lines[5].contains(r#""status":401"#), "{stdout}");
    assert!(
        stdout.contains("test result: FAILED. 1 passed; 1 failed"),
        "{stdout}"
    );
}

#[test]
fn bad_fixtures_exit_2_with_the_line_and_column() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cases.toml");
    std::fs::write(
        &path,
        "[[cases]]\nname = \"a\"\nrecord = { key = \"k\", key_base64 = \"aw==\" }\n",
    )
    .expect("write fixtures");
    let file = path.display().to_string();
    let (code, stdout, stderr) = plugin_test("key-router", &file, &[]);
    assert_eq!(code, Some(2), "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stderr.starts_with(&format!(
            "{file}:3:10: give `key` or `key_base64`, not both"
        )),
        "{stderr}"
    );

    let json = dir.path().join("cases.json");
    std::fs::write(
        &json,
        "{\"cases\": [\n  {\"name\": \"a\", \"recrd\": {}}\n]}",
    )
    .expect("write fixtures");
    let file = json.display().to_string();
    let (code, _, stderr) = plugin_test("key-router", &file, &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.starts_with(&format!("{file}:2:")), "{stderr}");
    assert!(stderr.contains("unknown field `recrd`"), "{stderr}");

    // A case the plugin's role cannot take.
    let (code, _, stderr) = plugin_test("basic-auth", &format!("{FIXTURES}/key-router.toml"), &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "case `a keyed record goes to the channel its key names`: an authenticator takes no `record`"
        ),
        "{stderr}"
    );
}
