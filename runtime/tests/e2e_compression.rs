//! permessage-deflate with an independent client that offers it (Python
//! `websockets`, which compresses by default): the extension is agreed on
//! a pipeline that allows it, messages cross compressed both ways and come
//! out whole; a pipeline that does not allow it answers without it.

mod support;

use std::time::Duration;

use sluice_tests::python;
use support::Sluice;

fn pipeline(compression: bool) -> String {
    let preamble = support::pipeline_file::listener_only();
    format!(
        r#"
{preamble}
[[pipelines]]
name = "echo"
path = "/echo"
compression = {compression}

[pipelines.handler]
plugin = "mock"
config = {{ kind = "echo" }}
"#
    )
}

fn collect(base: &str, messages: &[String], extra: &[&str]) -> python::Output {
    let mut args = vec![
        format!("{base}/echo"),
        "--count".into(),
        messages.len().to_string(),
    ];
    for message in messages {
        args.extend(["--send".into(), message.clone()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    python::run("ws_collect.py", &args, Duration::from_secs(30)).unwrap()
}

#[test]
fn a_client_offering_deflate_gets_it_and_every_message_arrives_whole() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "deflate", &pipeline(true), &[]);
    // Repetitive (compresses well), short (sent plain: under the minimum
    // size), and large with non-ASCII text.
    let messages = vec![
        "tick ".repeat(2000),
        "hi".to_owned(),
        format!("{{\"ünïcödé\": \"{}\"}}", "☃".repeat(5000)),
    ];
    let output = collect(&sluice.base, &messages, &[]);
    let connected = output.event("connected").unwrap();
    let extension = connected["headers"]["sec-websocket-extensions"]
        .as_str()
        .unwrap_or_else(|| panic!("no extension agreed: {connected}"));
    assert!(extension.starts_with("permessage-deflate"), "{extension}");
    let echoed: Vec<&str> = output
        .events_named("message")
        .map(|m| m["data"].as_str().unwrap())
        .collect();
    assert_eq!(
        echoed,
        messages.iter().map(String::as_str).collect::<Vec<_>>()
    );
}

#[test]
fn without_permission_or_offer_nothing_is_compressed() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "plain", &pipeline(false), &[]);
    let output = collect(&sluice.base, &["x".repeat(1000)], &[]);
    let connected = output.event("connected").unwrap();
    assert!(
        connected["headers"]
            .get("sec-websocket-extensions")
            .is_none(),
        "{connected}"
    );
    assert_eq!(output.events_named("message").count(), 1);

    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "deflate", &pipeline(true), &[]);
    let output = collect(&sluice.base, &["y".repeat(1000)], &["--no-deflate"]);
    let connected = output.event("connected").unwrap();
    assert!(
        connected["headers"]
            .get("sec-websocket-extensions")
            .is_none(),
        "{connected}"
    );
    assert_eq!(
        output.events_named("message").next().unwrap()["data"],
        "y".repeat(1000)
    );
}
