//! RFC 6455 conformance by the Autobahn TestSuite, the suite WebSocket
//! servers are judged by: `wstest -m fuzzingclient` runs all of its cases
//! (framing, pings, fragmentation, UTF-8, close handshakes, limits,
//! permessage-deflate) against a `mock` echo pipeline with compression on
//! and a 32 MiB message cap, and every case must be OK or INFORMATIONAL,
//! except the ones listed in [`DECLINED`] (README, "Conformance").
//!
//! The summary is printed whatever the outcome; `SLUICE_AUTOBAHN_CASES`
//! (comma-separated wstest patterns, default `*`) narrows a run by hand.

mod support;

use support::Sluice;

/// Cases Sluice answers differently on purpose, with the reason.
const DECLINED: &[(&str, &str)] = &[];

fn pipeline() -> String {
    r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
# wstest opens one connection per case, back to back.
connections_per_ip = { per_second = 100000, burst = 100000 }
ping_interval_ms = 0

[[pipelines]]
name = "echo"
path = "/echo"
compression = true
# Cases 9.* send messages of up to 16 MiB.
max_message_size = 33554432

[pipelines.handler]
plugin = "mock"
config = { kind = "echo" }
# A 16 MiB message is in the guest twice (in and out).
limits = { memory_bytes = 134217728, deadline_ms = 5000 }
"#
    .to_owned()
}

#[test]
fn every_autobahn_case_is_ok_or_informational() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = Sluice::start(dir.path(), "autobahn", &pipeline(), &[]);
    let cases = std::env::var("SLUICE_AUTOBAHN_CASES").unwrap_or_else(|_| "*".into());
    let cases: Vec<&str> = cases.split(',').map(str::trim).collect();
    let outdir = dir.path().join("reports");
    let url = format!("{}/echo", sluice.base);
    let took = sluice_tests::autobahn::run(&url, "sluice", &cases, &outdir).expect("wstest runs");
    let report = sluice_tests::autobahn::Report::read(&outdir, "sluice").expect("a report");
    println!("{}", report.summary());
    println!("(suite ran in {:.1} s)", took.as_secs_f64());
    let unexpected: Vec<String> = report
        .not_passed()
        .filter(|case| !DECLINED.iter().any(|(id, _)| case.id == *id))
        .map(|case| {
            format!(
                "{} {} / close {}",
                case.id, case.behavior, case.behavior_close
            )
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "cases that are neither OK nor INFORMATIONAL:\n{}",
        unexpected.join("\n")
    );
}
