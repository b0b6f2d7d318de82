//! The Autobahn TestSuite (`wstest -m fuzzingclient`, from
//! `scripts/install-autobahn.sh`) against a WebSocket server, and a summary
//! of its report.
//!
//! wstest exits 0 whatever happened (even when it could not connect), so
//! the report is the only verdict: [`Report::read`] fails when it names no
//! case at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The path of the wstest wrapper: `SLUICE_WSTEST`, or where
/// `scripts/install-autobahn.sh` puts it.
pub fn wstest() -> Result<PathBuf> {
    crate::installed_tool(
        "SLUICE_WSTEST",
        "autobahn/bin/wstest",
        "scripts/install-autobahn.sh",
    )
}

/// Runs every case in `cases` (wstest's patterns, such as `"*"` or
/// `"6.4.*"`) against `url` as agent `agent`, writing the report under
/// `outdir`; returns how long the suite took.
pub fn run(url: &str, agent: &str, cases: &[&str], outdir: &Path) -> Result<Duration> {
    let spec = serde_json::json!({
        "outdir": outdir,
        "servers": [{ "agent": agent, "url": url }],
        "cases": cases,
        "exclude-cases": [],
        "exclude-agent-cases": {},
    });
    std::fs::create_dir_all(outdir)?;
    let spec_path = outdir.join("fuzzingclient.json");
    std::fs::write(&spec_path, serde_json::to_vec_pretty(&spec)?)?;
    let started = Instant::now();
    let output = Command::new(wstest()?)
        .args(["-m", "fuzzingclient", "-s"])
        .arg(&spec_path)
        .current_dir(outdir)
        .output()
        .context("starting wstest")?;
    if !output.status.success() {
        bail!(
            "wstest failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(started.elapsed())
}

/// One case's outcome.
#[derive(Debug, Clone)]
pub struct Case {
    /// Its id, such as `6.4.1`.
    pub id: String,
    /// wstest's verdict on the exchange: `OK`, `NON-STRICT`,
    /// `INFORMATIONAL`, `UNIMPLEMENTED`, `FAILED`, ...
    pub behavior: String,
    /// Its verdict on the closing handshake.
    pub behavior_close: String,
    /// How long the case took.
    pub duration_ms: u64,
    /// The close code the server sent, if any.
    pub remote_close_code: Option<u16>,
    /// The case's description and wstest's reason for its verdict, from
    /// the case's own report file.
    pub description: String,
    /// What wstest expected and what it saw.
    pub result: String,
}

impl std::fmt::Display for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} / close {} (code {:?}): {}\n      {}",
            self.id,
            self.behavior,
            self.behavior_close,
            self.remote_close_code,
            self.description,
            self.result
        )
    }
}

/// A whole report: every case, in numeric id order.
#[derive(Debug)]
pub struct Report {
    /// The cases.
    pub cases: Vec<Case>,
}

impl Report {
    /// Reads `outdir/index.json` and each case's report file for `agent`.
    pub fn read(outdir: &Path, agent: &str) -> Result<Self> {
        let index: serde_json::Value = serde_json::from_slice(
            &std::fs::read(outdir.join("index.json")).context("reading the report's index.json")?,
        )?;
        let Some(cases) = index.get(agent).and_then(|a| a.as_object()) else {
            bail!("the report has no results for {agent}: wstest could not reach the server");
        };
        let mut out = Vec::new();
        for (id, entry) in cases {
            let text = |key: &str| entry[key].as_str().unwrap_or_default().to_owned();
            // Details for the cases worth explaining only (wstest's
            // Python 2 writes some files that are not strict JSON: broken
            // surrogate escapes from the UTF-8 cases).
            let passed = |v: &str| matches!(v, "OK" | "INFORMATIONAL");
            let detail: serde_json::Value = match entry["reportfile"].as_str() {
                Some(file) if !passed(&text("behavior")) || !passed(&text("behaviorClose")) => {
                    let bytes = std::fs::read(outdir.join(file))?;
                    serde_json::from_slice(&bytes).unwrap_or_else(
                        |error| serde_json::json!({ "description": format!("({file}: {error})") }),
                    )
                }
                _ => serde_json::Value::Null,
            };
            out.push(Case {
                id: id.clone(),
                behavior: text("behavior"),
                behavior_close: text("behaviorClose"),
                duration_ms: entry["duration"].as_u64().unwrap_or_default(),
                remote_close_code: entry["remoteCloseCode"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok()),
                description: detail["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                result: detail["result"].as_str().unwrap_or_default().to_owned(),
            });
        }
        if out.is_empty() {
            bail!("the report lists no cases");
        }
        out.sort_by_key(|case| sort_key(&case.id));
        Ok(Self { cases: out })
    }

    /// How many cases got each (behavior, close behavior).
    pub fn counts(&self) -> BTreeMap<(String, String), usize> {
        let mut counts = BTreeMap::new();
        for case in &self.cases {
            *counts
                .entry((case.behavior.clone(), case.behavior_close.clone()))
                .or_default() += 1;
        }
        counts
    }

    /// A printable summary: counts per verdict and time per case group.
    pub fn summary(&self) -> String {
        let mut text = format!("Autobahn TestSuite: {} cases\n", self.cases.len());
        for ((behavior, close), count) in self.counts() {
            text += &format!("  {count:4}  {behavior} / close {close}\n");
        }
        let mut groups: BTreeMap<u32, (usize, u64)> = BTreeMap::new();
        for case in &self.cases {
            let group = sort_key(&case.id)[0];
            let entry = groups.entry(group).or_default();
            entry.0 += 1;
            entry.1 += case.duration_ms;
        }
        text += "  time per group:";
        for (group, (count, ms)) in groups {
            text += &format!(" {group}.*={count}/{:.1}s", ms as f64 / 1000.0);
        }
        text += "\n";
        text
    }

    /// Cases whose exchange or close is neither OK nor INFORMATIONAL.
    pub fn not_passed(&self) -> impl Iterator<Item = &Case> {
        let passed = |verdict: &str| matches!(verdict, "OK" | "INFORMATIONAL");
        self.cases
            .iter()
            .filter(move |c| !passed(&c.behavior) || !passed(&c.behavior_close))
    }
}

/// `"6.4.10"` -> `[6, 4, 10]` (string order would put 10.* before 2.*).
fn sort_key(id: &str) -> Vec<u32> {
    id.split('.')
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_read_sorted_and_summarised() {
        let dir = tempfile::tempdir().unwrap();
        let index = serde_json::json!({ "sluice": {
            "10.1.1": { "behavior": "OK", "behaviorClose": "OK", "duration": 5,
                        "remoteCloseCode": 1000, "reportfile": "a.json" },
            "2.1": { "behavior": "NON-STRICT", "behaviorClose": "OK", "duration": 7,
                     "remoteCloseCode": null, "reportfile": "b.json" },
            "2.10": { "behavior": "INFORMATIONAL", "behaviorClose": "INFORMATIONAL",
                      "duration": 1, "remoteCloseCode": 1000, "reportfile": "c.json" }
        }});
        std::fs::write(dir.path().join("index.json"), index.to_string()).unwrap();
        for (file, description) in [("a.json", "ten"), ("b.json", "two"), ("c.json", "ten too")] {
            let detail = serde_json::json!({ "description": description, "result": "why" });
            std::fs::write(dir.path().join(file), detail.to_string()).unwrap();
        }
        let report = Report::read(dir.path(), "sluice").unwrap();
        let ids: Vec<&str> = report.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["2.1", "2.10", "10.1.1"]);
        let failing: Vec<&str> = report.not_passed().map(|c| c.id.as_str()).collect();
        assert_eq!(failing, ["2.1"]);
        let summary = report.summary();
        assert!(summary.contains("3 cases"), "{summary}");
        let first = report.not_passed().next().unwrap().to_string();
        assert!(
            first.starts_with("2.1 NON-STRICT / close OK (code None): two"),
            "{first}"
        );
        assert!(summary.contains("2.*=2/0.0s 10.*=1/0.0s"), "{summary}");
        assert!(Report::read(dir.path(), "other").is_err());
    }
}
