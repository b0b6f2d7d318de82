//! A real browser for end-to-end tests: headless Chromium (Debian's
//! `chromium`, from `scripts/install-browser.sh`), driven without
//! chromedriver or a DevTools client.
//!
//! The test serves its own page from a [`PageServer`] on 127.0.0.1 and
//! points a [`Chromium`] at it. The page does whatever the test is about
//! with the browser's own APIs (`new WebSocket(...)`) and tells the test
//! what happened by calling `report(event, fields)`, which POSTs
//! `{"event": event, ...fields}` as JSON back to the same server; the test
//! waits for those reports with [`PageServer::wait_for`].
//!
//! ```no_run
//! use sluice_tests::browser::{Chromium, PageServer};
//! use std::time::Duration;
//!
//! let mut pages = PageServer::start()?;
//! pages.page("/", "report('hello', { answer: 42 });");
//! let mut chromium = Chromium::launch(&pages.url("127.0.0.1", "/"))?;
//! let hello = pages.wait_for(&mut chromium, "hello", Duration::from_secs(60))?;
//! assert_eq!(hello["answer"], 42);
//! assert_eq!(hello["origin"], format!("http://127.0.0.1:{}", pages.port()));
//! # Ok::<(), anyhow::Error>(())
//! ```
//!
//! Everything here blocks the calling thread. Chromium's stdout and stderr
//! (mostly D-Bus noise, plus the page's `console.*` lines) go to a file in
//! its temporary directory; errors from [`PageServer::wait_for`] include
//! the reports so far and the tail of that file.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tempfile::TempDir;

/// Where Debian's `chromium` package puts its launcher.
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// Chromium's log file, in its temporary directory.
const LOG_FILE: &str = "chromium.log";
/// How many log lines error messages show.
const LOG_TAIL_LINES: usize = 40;
/// How long a connection to the page server may stay silent (browsers open
/// speculative connections that never send a request).
const IDLE_CONNECTION: Duration = Duration::from_secs(10);
/// The largest report body the page server accepts.
const MAX_REPORT: usize = 1 << 20;
/// How often a wait checks that the browser is still running.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// How long [`Chromium::kill`] waits for the helper processes to go.
const HELPERS_EXIT: Duration = Duration::from_secs(10);

/// The script every page starts with: `report(event, fields)` POSTs
/// `{...fields, event, seq, origin: location.origin}` to `/report` on the
/// page's own origin. Reports are sent one after another, so the test sees
/// them in the order the page made them. Uncaught errors and rejections are
/// reported as `page-error`.
pub const REPORT_JS: &str = r#"
const report = (() => {
  let seq = 0;
  let chain = Promise.resolve();
  return (event, fields = {}) => {
    const body = JSON.stringify(Object.assign({}, fields, { event, seq: seq++, origin: location.origin }));
    chain = chain
      .then(() => fetch('/report', { method: 'POST', body, cache: 'no-store' }))
      .catch((error) => console.error('report failed', error));
    return chain;
  };
})();
window.addEventListener('error', (e) =>
  report('page-error', { message: String(e.message), line: e.lineno }));
window.addEventListener('unhandledrejection', (e) =>
  report('page-error', { message: String(e.reason) }));
"#;

/// The path of the Chromium launcher: `SLUICE_CHROMIUM`, or
/// `/usr/bin/chromium` where `scripts/install-browser.sh` installs it.
pub fn chromium_binary() -> Result<PathBuf> {
    let hint = "run `bash scripts/install-browser.sh` (or `bash scripts/test.sh`, \
                which runs it and exports SLUICE_CHROMIUM)";
    if let Some(path) = std::env::var_os("SLUICE_CHROMIUM").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("SLUICE_CHROMIUM={} does not exist: {hint}", path.display());
        }
        return Ok(path);
    }
    let path = PathBuf::from(DEFAULT_CHROMIUM);
    if path.is_file() {
        return Ok(path);
    }
    bail!("SLUICE_CHROMIUM is not set and {DEFAULT_CHROMIUM} does not exist: {hint}")
}

/// A tiny HTTP/1.1 server on 127.0.0.1 that serves the test's pages and
/// collects what they report. Stopped when dropped.
///
/// It answers on any host name that reaches 127.0.0.1, so one server can
/// serve the same page from two origins: `http://127.0.0.1:PORT` and
/// `http://localhost:PORT`.
pub struct PageServer {
    addr: SocketAddr,
    pages: Arc<Mutex<HashMap<String, String>>>,
    reports: Receiver<Value>,
    seen: Vec<Value>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl PageServer {
    /// Starts the server on a port the OS picks.
    pub fn start() -> Result<PageServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .context("binding the page server to 127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let pages = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (sender, reports) = channel();
        let accept = {
            let pages = Arc::clone(&pages);
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("page-server".into())
                .spawn(move || accept_loop(listener, pages, sender, stop))
                .context("spawning the page server's thread")?
        };
        Ok(PageServer {
            addr,
            pages,
            reports,
            seen: Vec::new(),
            stop,
            accept: Some(accept),
        })
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://{host}:{port}{path}`; `host` is `127.0.0.1` or `localhost`
    /// (both reach the server, as two different origins).
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port())
    }

    /// Serves, at `path` (no query string), an HTML page whose only content
    /// is a script: [`REPORT_JS`] followed by `script`. `script` must not
    /// contain `</script>`. Replaces any page already at `path`.
    pub fn page(&self, path: &str, script: &str) {
        let html = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
             <title>sluice browser test</title><link rel=\"icon\" href=\"data:,\"></head>\n\
             <body><script>\n{REPORT_JS}\n{script}\n</script></body></html>\n"
        );
        self.pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_owned(), html);
    }

    /// Serves, at `path`, an HTML page like [`Self::page`] whose `script`
    /// is an ES module (it may `import` what [`Self::asset`] serves);
    /// `report` is defined before it runs.
    pub fn module_page(&self, path: &str, script: &str) {
        let html = format!(
            "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
             <title>sluice browser test</title><link rel=\"icon\" href=\"data:,\"></head>\n\
             <body><script>\n{REPORT_JS}\n</script>\n<script type=\"module\">\n{script}\n</script></body></html>\n"
        );
        self.insert(path, html);
    }

    /// Serves `body` at `path` as it is; a path ending in `.js` as
    /// JavaScript (for a module page to import).
    pub fn asset(&self, path: &str, body: &str) {
        self.insert(path, body.to_owned());
    }

    fn insert(&self, path: &str, body: String) {
        self.pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path.to_owned(), body);
    }

    /// The next report, waiting at most `timeout`; `Ok(None)` if none came.
    pub fn next_report(&mut self, timeout: Duration) -> Option<Value> {
        match self.reports.recv_timeout(timeout) {
            Ok(report) => {
                self.seen.push(report.clone());
                Some(report)
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// Reads reports until one whose `event` is `event` and returns it.
    /// Fails if `browser` exits or `timeout` passes first (a hang guard),
    /// with the reports so far and the tail of the browser's log.
    pub fn wait_for(
        &mut self,
        browser: &mut Chromium,
        event: &str,
        timeout: Duration,
    ) -> Result<Value> {
        self.wait_for_any(browser, &[event], timeout)
    }

    /// Reads reports until one whose `event` is any of `events` and returns
    /// it: wait for `["open", "close"]` to learn at once that a WebSocket
    /// failed instead of waiting out the timeout for an `open`. Fails like
    /// [`PageServer::wait_for`].
    pub fn wait_for_any(
        &mut self,
        browser: &mut Chromium,
        events: &[&str],
        timeout: Duration,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if let Some(report) = self.next_report(left.min(POLL_SLICE)) {
                if events.iter().any(|event| report["event"] == *event) {
                    return Ok(report);
                }
                continue;
            }
            if let Err(error) = browser.check_running() {
                bail!(
                    "waiting for a report of {events:?}: {error:#}\n{}",
                    self.explain(browser)
                );
            }
            if left.is_zero() {
                bail!(
                    "no report of {events:?} within {timeout:?}\n{}",
                    self.explain(browser)
                );
            }
        }
    }

    /// Every report read so far, in order.
    pub fn reports(&self) -> &[Value] {
        &self.seen
    }

    /// Whether a report named `event` has been read.
    pub fn reported(&self, event: &str) -> bool {
        self.seen.iter().any(|r| r["event"] == event)
    }

    /// The reports so far and the tail of the browser's log, for failure
    /// messages.
    pub fn explain(&self, browser: &Chromium) -> String {
        let mut text = String::from("reports so far:\n");
        if self.seen.is_empty() {
            text.push_str("  (none)\n");
        }
        for report in &self.seen {
            text.push_str(&format!("  {report}\n"));
        }
        text.push_str(&format!(
            "chromium log ({}), last lines without D-Bus noise:\n{}",
            browser.log_path().display(),
            browser.log_tail(LOG_TAIL_LINES)
        ));
        text
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    pages: Arc<Mutex<HashMap<String, String>>>,
    reports: Sender<Value>,
    stop: Arc<AtomicBool>,
) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(stream) = stream else { continue };
        let pages = Arc::clone(&pages);
        let reports = reports.clone();
        thread::spawn(move || {
            let _ = serve(stream, &pages, &reports);
        });
    }
}

/// Answers one request and closes the connection.
fn serve(
    stream: TcpStream,
    pages: &Mutex<HashMap<String, String>>,
    reports: &Sender<Value>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IDLE_CONNECTION))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line)? == 0 {
        return Ok(());
    }
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            content_length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();

    let mut stream = stream;
    match (method, path) {
        ("POST", "/report") => {
            if content_length > MAX_REPORT {
                return respond(&mut stream, "413 Payload Too Large", "text/plain", "");
            }
            let mut body = vec![0; content_length];
            reader.read_exact(&mut body)?;
            let report = serde_json::from_slice(&body).unwrap_or_else(
                |_| json!({ "event": "bad-report", "body": String::from_utf8_lossy(&body) }),
            );
            let _ = reports.send(report);
            respond(&mut stream, "204 No Content", "text/plain", "")
        }
        ("GET", path) => {
            let page = pages
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(path)
                .cloned();
            let content_type = if path.ends_with(".js") {
                "text/javascript; charset=utf-8"
            } else {
                "text/html; charset=utf-8"
            };
            match page {
                Some(body) => respond(&mut stream, "200 OK", content_type, &body),
                None => respond(&mut stream, "404 Not Found", "text/plain", "not found"),
            }
        }
        _ => respond(
            &mut stream,
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed",
        ),
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

/// A headless Chromium showing one URL, with a fresh profile in its own
/// temporary directory; killed when dropped.
///
/// Chromium's helper processes (zygotes, renderers, GPU, network service,
/// crashpad) exit by themselves once the browser process is gone, but not
/// at once: [`Chromium::kill`] waits for them, so the temporary directory
/// they write to can be removed.
pub struct Chromium {
    child: Option<Child>,
    dir: TempDir,
    exited: Option<String>,
}

impl Chromium {
    /// Starts Chromium on `url`: `--headless --no-sandbox` (the tests run as
    /// root), no GPU, no QUIC, no proxy, none of the background services
    /// that would reach the network, a fresh `--user-data-dir`, and `HOME`
    /// and the XDG directories pointing into the temporary directory too
    /// (crashpad writes under `~/.config/chromium` whatever the profile).
    pub fn launch(url: &str) -> Result<Chromium> {
        let binary = chromium_binary()?;
        let dir = tempfile::Builder::new()
            .prefix("sluice-chromium-")
            .tempdir()
            .context("creating Chromium's temporary directory")?;
        let profile = dir.path().join("profile");
        let home = dir.path().join("home");
        fs::create_dir_all(&profile)?;
        fs::create_dir_all(&home)?;
        let log = File::create(dir.path().join(LOG_FILE)).context("creating Chromium's log")?;
        let child = Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-proxy-server",
                // Puts the page's console messages into the log.
                "--enable-logging=stderr",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {}", binary.display()))?;
        Ok(Chromium {
            child: Some(child),
            dir,
            exited: None,
        })
    }

    /// Fails if the browser process has exited (it should run until killed).
    pub fn check_running(&mut self) -> Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait()?
        {
            self.child = None;
            self.exited = Some(status.to_string());
        }
        match &self.exited {
            Some(status) => bail!("chromium exited on its own: {status}"),
            None => Ok(()),
        }
    }

    /// Kills the browser (SIGKILL), waits for it, then waits (at most 10 s)
    /// until no process names this browser's temporary directory on its
    /// command line any more (every helper does: `--user-data-dir`,
    /// crashpad's `--database`). Does nothing if it is not running.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = child.kill();
        let _ = child.wait();
        let deadline = Instant::now() + HELPERS_EXIT;
        while mentioned_on_a_command_line(self.dir.path()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// The file holding Chromium's stdout and stderr.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join(LOG_FILE)
    }

    /// The last `lines` lines of Chromium's log, leaving out its D-Bus
    /// complaints (there is no bus in a container; every run has dozens).
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log_path(), lines)
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a running process has `path` in its command line (read from
/// `/proc`; zombies have an empty one).
fn mentioned_on_a_command_line(path: &Path) -> bool {
    let needle = path.as_os_str().as_bytes();
    let Ok(entries) = fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let is_pid = entry.file_name().as_bytes().iter().all(u8::is_ascii_digit);
        is_pid
            && fs::read(entry.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline.windows(needle.len()).any(|w| w == needle))
    })
}

fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(bytes) = fs::read(path) else {
        return format!("(no log at {})", path.display());
    };
    let text = String::from_utf8_lossy(&bytes);
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| !line.contains("dbus/") && !line.contains("D-Bus"))
        .collect();
    let start = kept.len().saturating_sub(lines);
    let mut tail = kept[start..].join("\n");
    if tail.is_empty() {
        tail.push_str("(empty)");
    }
    tail
}
