//! Guest stdout/stderr, sent to the host log line by line, tagged with the
//! plugin. Nothing a plugin prints reaches the process's own stdout.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

use super::error::PluginId;

/// A line longer than this is logged in pieces.
const MAX_LINE: usize = 4096;

/// Which guest stream a line came from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// Line buffer shared by every handle the guest opens on one stream; also
/// keeps the last stderr line, which usually explains a trap (Rust prints
/// its panic message there just before aborting).
#[derive(Clone)]
pub(crate) struct LogSink {
    id: Arc<PluginId>,
    stream: Stream,
    inner: Arc<Mutex<SinkState>>,
}

/// How many recent lines explain a failure (a Rust panic prints a header
/// line, the message, then a note about backtraces).
const KEPT_LINES: usize = 4;

#[derive(Default)]
struct SinkState {
    partial: Vec<u8>,
    recent: std::collections::VecDeque<String>,
}

impl SinkState {
    fn keep(&mut self, line: String) {
        if self.recent.len() == KEPT_LINES {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }
}

impl LogSink {
    pub fn new(id: Arc<PluginId>, stream: Stream) -> Self {
        Self {
            id,
            stream,
            inner: Arc::default(),
        }
    }

    /// The last few lines written, joined, and forgotten (so they explain
    /// one failure only). Rust's hint about `RUST_BACKTRACE` is left out:
    /// plugins cannot set environment variables.
    pub fn take_recent(&self) -> Option<String> {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if !state.partial.is_empty() {
            let rest = std::mem::take(&mut state.partial);
            let line = String::from_utf8_lossy(&rest).into_owned();
            self.emit(&line);
            state.keep(line);
        }
        let lines: Vec<String> = state
            .recent
            .drain(..)
            .filter(|l| !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        (!lines.is_empty()).then(|| lines.join(" | "))
    }

    fn write(&self, bytes: &[u8]) {
        let mut state = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        state.partial.extend_from_slice(bytes);
        while let Some(pos) = state.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = state.partial.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            self.emit(&line);
            state.keep(line);
        }
        if state.partial.len() > MAX_LINE {
            let line = String::from_utf8_lossy(&std::mem::take(&mut state.partial)).into_owned();
            self.emit(&line);
            state.keep(line);
        }
    }

    fn emit(&self, line: &str) {
        let id = &self.id;
        match self.stream {
            Stream::Stdout => tracing::info!(
                plugin = %id.plugin, pipeline = %id.pipeline, tenant = %id.tenant,
                stream = "stdout", "{line}"
            ),
            Stream::Stderr => tracing::warn!(
                plugin = %id.plugin, pipeline = %id.pipeline, tenant = %id.tenant,
                stream = "stderr", "{line}"
            ),
        }
    }
}

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogSink {
    async fn ready(&mut self) {}
}

impl OutputStream for LogSink {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        LogSink::write(self, &bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogSink {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        LogSink::write(&self, buf);
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}
