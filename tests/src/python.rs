//! Independent clients: Python scripts from `tests/clients/`, run with the
//! test venv's interpreter, that print one JSON object per line on stdout.
//!
//! [`PyClient::spawn`] starts a script and lets the test read its events as
//! they come (e.g. wait for `{"event": "connected"}` before producing);
//! [`PyClient::finish`] waits for it to exit and returns every event.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use crate::installed_tool;

/// The venv's Python: `SLUICE_PYTHON`, or where
/// `scripts/install-test-clients.sh` puts it.
pub fn python() -> Result<PathBuf> {
    installed_tool(
        "SLUICE_PYTHON",
        "venv/bin/python",
        "scripts/install-test-clients.sh",
    )
}

/// The path of a client script in `tests/clients/`.
pub fn client_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("clients")
        .join(name)
}

/// What a finished client printed.
#[derive(Debug)]
pub struct Output {
    /// How the process exited.
    pub status: ExitStatus,
    /// Every JSON line it printed on stdout, in order.
    pub events: Vec<Value>,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Output {
    /// The events whose `"event"` field is `name`.
    pub fn events_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events.iter().filter(move |e| e["event"] == name)
    }

    /// The first event named `name`, or an error showing all the output.
    pub fn event(&self, name: &str) -> Result<&Value> {
        self.events
            .iter()
            .find(|e| e["event"] == name)
            .ok_or_else(|| anyhow!("no {name:?} event in the client's output:\n{self}"))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "exit: {}", self.status)?;
        for event in &self.events {
            writeln!(f, "stdout: {event}")?;
        }
        for line in self.stderr.lines() {
            writeln!(f, "stderr: {line}")?;
        }
        Ok(())
    }
}

/// Runs a client script to the end, killing it after `timeout`.
pub fn run<S: AsRef<OsStr>>(script: &str, args: &[S], timeout: Duration) -> Result<Output> {
    PyClient::spawn(script, args)?.finish(timeout)
}

/// A running client script.
pub struct PyClient {
    name: String,
    child: Child,
    lines: Receiver<String>,
    stderr: Option<JoinHandle<String>>,
    events: Vec<Value>,
}

impl PyClient {
    /// Starts `tests/clients/<script>` with these arguments.
    pub fn spawn<S: AsRef<OsStr>>(script: &str, args: &[S]) -> Result<PyClient> {
        let python = python()?;
        let path = client_script(script);
        if !path.is_file() {
            bail!("no client script {}", path.display());
        }
        let mut child = Command::new(&python)
            .arg("-u")
            .arg(&path)
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawning {} {}", python.display(), path.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (sender, lines) = channel();
        thread::spawn(move || forward_lines(stdout, sender));
        let stderr = thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Ok(PyClient {
            name: script.to_owned(),
            child,
            lines,
            stderr: Some(stderr),
            events: Vec::new(),
        })
    }

    /// Starts `ws_collect.py` on `url` to collect `count` messages within
    /// `timeout` (plus `extra` arguments, e.g. `--basic user:pw`), and
    /// waits until its handshake succeeded.
    pub fn connected_collector(
        url: &str,
        count: usize,
        timeout: Duration,
        extra: &[&str],
    ) -> Result<PyClient> {
        let mut args = vec![
            url.to_owned(),
            "--count".to_owned(),
            count.to_string(),
            "--timeout".to_owned(),
            timeout.as_secs().to_string(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        let mut client = PyClient::spawn("ws_collect.py", &args)?;
        client.wait_for("connected", Duration::from_secs(20))?;
        Ok(client)
    }

    /// The next event the script prints, waiting at most `timeout`;
    /// `Ok(None)` once its stdout is closed.
    pub fn next_event(&mut self, timeout: Duration) -> Result<Option<Value>> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                let event = self.parse(&line)?;
                self.events.push(event.clone());
                Ok(Some(event))
            }
            Err(RecvTimeoutError::Disconnected) => Ok(None),
            Err(RecvTimeoutError::Timeout) => bail!(
                "{}: no output within {timeout:?} (events so far: {:?})",
                self.name,
                self.events
            ),
        }
    }

    /// Reads events until one named `name` (`{"event": name, ...}`) and
    /// returns it; fails if the script ends or `timeout` passes first.
    pub fn wait_for(&mut self, name: &str, timeout: Duration) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_event(left) {
                Ok(Some(event)) if event["event"] == name => return Ok(event),
                Ok(Some(_)) => {}
                Ok(None) => bail!(
                    "{} ended without a {name:?} event (events: {:?})",
                    self.name,
                    self.events
                ),
                Err(error) => {
                    return Err(error.context(format!("waiting for {name:?} from {}", self.name)));
                }
            }
        }
    }

    /// Waits for the script to exit (killing it after `timeout`, which is an
    /// error) and returns everything it printed, including events already
    /// read with [`PyClient::next_event`].
    pub fn finish(mut self, timeout: Duration) -> Result<Output> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let event = self.parse(&line)?;
                    self.events.push(event);
                }
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    let status = self.child.wait()?;
                    let output = self.output(status);
                    bail!(
                        "{} still running after {timeout:?}; killed:\n{output}",
                        self.name
                    );
                }
            }
        }
        // Stdout is closed; the process exits right after (or already has).
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait()?;
            }
            thread::sleep(Duration::from_millis(10));
        };
        Ok(self.output(status))
    }

    fn output(&mut self, status: ExitStatus) -> Output {
        let stderr = self
            .stderr
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default();
        Output {
            status,
            events: std::mem::take(&mut self.events),
            stderr,
        }
    }

    fn parse(&self, line: &str) -> Result<Value> {
        serde_json::from_str(line)
            .with_context(|| format!("{} printed a line that is not JSON: {line:?}", self.name))
    }
}

impl Drop for PyClient {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn forward_lines(stdout: ChildStdout, sender: std::sync::mpsc::Sender<String>) {
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { return };
        if line.trim().is_empty() {
            continue;
        }
        if sender.send(line).is_err() {
            return;
        }
    }
}
