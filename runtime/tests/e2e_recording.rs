//! Session recording (`[pipelines.record]`, `sluice record`) with an
//! independent client (Python `websockets`): what passed on a connection is
//! written in seed 003's session format, in order, with its directions,
//! types, bytes and relative timing; pings can be left out; one file per
//! connection or one per run.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use sluice_tests::python;
use support::Sluice;

/// An echo pipeline at `/echo` recording to `record`'s table, if any.
fn echo_pipeline(record: &str) -> String {
    let preamble = support::pipeline_file::listener_only();
    format!(
        r#"
{preamble}
[[pipelines]]
name = "echo"
path = "/echo"

[pipelines.handler]
plugin = "mock"
config = {{ kind = "echo" }}
{record}
"#
    )
}

const BINARY: &[u8] = &[0, 1, 2, 0xfe, 0xff, b'\n', b'"'];

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A conversation: text, a pause, binary, a ping, close.
fn converse(url: &str) -> python::Output {
    let steps = [
        "text:{\"type\": \"subscribe\", \"channel\": \"orders\"}".to_owned(),
        "recv".to_owned(),
        "sleep:0.3".to_owned(),
        format!("binary:{}", b64(BINARY)),
        "recv".to_owned(),
        "ping:are you there".to_owned(),
        "close:1000".to_owned(),
    ];
    let mut args = vec![url.to_owned()];
    for step in steps {
        args.extend(["--step".to_owned(), step]);
    }
    let output = python::run("ws_session.py", &args, Duration::from_secs(30)).unwrap();
    assert_eq!(output.event("done").unwrap()["why"], "steps", "{output}");
    output
}

/// The finished `.json` files in `dir`, waiting up to 10 s for `count` of
/// them (a file appears when its connection's session has ended).
fn finished_files(dir: &Path, count: usize) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        if files.len() >= count || Instant::now() > deadline {
            assert_eq!(
                files.len(),
                count,
                "recordings in {}: {files:?}",
                dir.display()
            );
            return files;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// `(direction, type, data)` of each recorded message.
fn messages(session: &Value) -> Vec<(String, String, String)> {
    session["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let field = |name: &str| m[name].as_str().unwrap().to_owned();
            (field("direction"), field("type"), field("data"))
        })
        .collect()
}

fn timestamps(session: &Value) -> Vec<u64> {
    session["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["timestamp_ms"].as_u64().unwrap())
        .collect()
}

fn entry(direction: &str, kind: &str, data: &str) -> (String, String, String) {
    (direction.to_owned(), kind.to_owned(), data.to_owned())
}

#[test]
fn a_connection_is_recorded_in_the_seed_format_with_every_byte_and_its_timing() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    let record = format!(
        "[pipelines.record]\noutput = {:?}\n",
        recordings.join("{pipeline}-{connection}.json")
    );
    let sluice = Sluice::start(dir.path(), "record", &echo_pipeline(&record), &[]);
    converse(&format!("{}/echo", sluice.base));
    let files = finished_files(&recordings, 1);
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        name.starts_with("echo-") && name.ends_with(".json"),
        "{name}"
    );

    let session = read(&files[0]);
    let subscribe = r#"{"type": "subscribe", "channel": "orders"}"#;
    assert_eq!(
        messages(&session),
        vec![
            entry("incoming", "text", subscribe),
            entry("outgoing", "text", subscribe),
            entry("incoming", "binary", &b64(BINARY)),
            entry("outgoing", "binary", &b64(BINARY)),
            entry("incoming", "ping", &b64(b"are you there")),
            entry("outgoing", "pong", &b64(b"are you there")),
        ]
    );
    let times = timestamps(&session);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    // The client paused 300 ms between its echo and the binary message.
    assert!(times[2] - times[1] >= 290, "{times:?}");
    let metadata = &session["metadata"];
    assert_eq!(metadata["message_count"], 6);
    assert!(metadata["duration_ms"].as_u64().unwrap() >= times[5]);
    assert_eq!(metadata["pipeline"], "echo");
    assert_eq!(metadata["path"], "/echo");
    let recorded_at = metadata["recorded_at"].as_str().unwrap();
    assert!(
        recorded_at.ends_with('Z') && recorded_at.contains('T'),
        "{recorded_at}"
    );
    // Nothing is left half-written.
    let parts: Vec<_> = std::fs::read_dir(&recordings)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "part"))
        .collect();
    assert!(parts.is_empty(), "{parts:?}");
}

#[test]
fn each_connection_gets_its_own_file_and_a_second_never_overwrites_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let recordings = dir.path().join("recordings");
    // No {connection} in the name: one file per run. Two runs, same name.
    let record = format!(
        "[pipelines.record]\noutput = {:?}\nexclude_ping = true\n",
        recordings.join("session.json")
    );
    for run in 1..=2 {
        let mut sluice = Sluice::start(dir.path(), "record", &echo_pipeline(&record), &[]);
        let url = format!("{}/echo", sluice.base);
        converse(&url);
        converse(&url);
        // A whole-run file is finished when the process stops.
        sluice.terminate();
        finished_files(&recordings, run);
    }
    let files = finished_files(&recordings, 2);
    assert_eq!(
        files,
        vec![
            recordings.join("session-1.json"),
            recordings.join("session.json")
        ]
    );
    for file in files {
        let session = read(&file);
        let recorded = messages(&session);
        // Two connections, four data messages each, pings left out.
        assert_eq!(recorded.len(), 8, "{recorded:?}");
        assert!(
            recorded
                .iter()
                .all(|(_, kind, _)| kind == "text" || kind == "binary")
        );
        let connections: std::collections::BTreeSet<u64> = session["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["connection"]
                    .as_u64()
                    .expect("a run file names each message's connection")
            })
            .collect();
        assert_eq!(connections.len(), 2, "{connections:?}");
        assert_eq!(session["metadata"]["message_count"], 8);
    }
}
