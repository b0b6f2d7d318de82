//! Shared by the end-to-end tests: start the real `sluice` binary on a
//! pipeline file and learn where it serves.

#![allow(dead_code)]

pub mod cli;
pub mod http;
pub mod http_response;
pub mod metrics;
pub mod pipeline_file;
pub mod plugins;
pub mod probe;
pub mod raw;
pub mod scaffold;
pub mod ws;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `sluice run`, killed on drop.
pub struct Sluice {
    /// The process.
    pub child: Child,
    /// `ws://127.0.0.1:PORT` of its (first) listener.
    pub base: String,
    /// `host:port` of its admin API, when the file has `[admin]`.
    pub admin: Option<String>,
    /// `host:port` of its embedded Kafka broker, when the file uses one.
    pub embedded: Option<String>,
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sluice {
    /// Sends SIGTERM and waits (at most 30 s) for a clean exit.
    pub fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let exit = loop {
            if let Some(exit) = self.child.try_wait().unwrap() {
                break exit;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "sluice did not exit after SIGTERM"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        assert!(exit.success(), "sluice exited with {exit} after SIGTERM");
    }

    /// Writes `pipeline` to `dir/name.toml`, runs it, and waits for `ready`.
    pub fn start(
        dir: &std::path::Path,
        name: &str,
        pipeline: &str,
        env: &[(&str, &str)],
    ) -> Sluice {
        Self::start_with_args(dir, name, pipeline, env, &[])
    }

    /// [`Sluice::start`] with more arguments to `sluice run`.
    pub fn start_with_args(
        dir: &std::path::Path,
        name: &str,
        pipeline: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Sluice {
        let file = dir.join(format!("{name}.toml"));
        std::fs::write(&file, pipeline).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .args(["run", file.to_str().unwrap()])
            .args(args)
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let (mut base, mut admin, mut embedded) = (None, None, None);
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("embedded Kafka broker at ") {
                embedded = rest.split_whitespace().next().map(str::to_owned);
                continue;
            }
            if let Some(address) = line.strip_prefix("admin API: http://") {
                admin = Some(address.to_owned());
                continue;
            }
            if let Some((_, url)) = line.split_once(": ws://") {
                base = Some(format!("ws://{}", url.split('/').next().unwrap()));
            }
            if line == "ready" {
                break;
            }
        }
        Sluice {
            child,
            base: base.expect("sluice printed its address before `ready`"),
            admin,
            embedded,
        }
    }

    /// Resident memory of the process in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    }
}

/// A pipeline on `bootstrap` reading `topic` with key-router, served at
/// `/{channel}` on a free port; `keys` are more keys of the pipeline table
/// (`outbox = ...`), `extra` more of its sub-tables (`[pipelines.auth]`).
pub fn pipeline(
    bootstrap: &str,
    topic: &str,
    router_config: &str,
    keys: &str,
    extra: &str,
) -> String {
    format!(
        r#"
[kafka]
brokers = "{bootstrap}"

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[pipelines]]
name = "destination"
path = "/{{channel}}"
{keys}
[pipelines.source]
topics = ["{topic}"]
[pipelines.router]
plugin = "key-router"
config = {router_config}
{extra}
"#
    )
}

/// An example pipeline file from `examples/`, with each `(from, to)`
/// replacement applied (each `from` must occur: a stale test fails loudly).
pub fn example(name: &str, replacements: &[(&str, &str)]) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(name);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    for (from, to) in replacements {
        assert!(text.contains(from), "{name} has no {from:?}");
        text = text.replace(from, to);
    }
    text
}

/// A plain HTTP/1.1 GET on `addr` (`host:port`): status and body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(ws::PATIENCE, stream.read_to_end(&mut response))
        .await
        .expect("a response before the hang guard")
        .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
