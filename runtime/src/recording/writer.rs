//! The writer thread of one pipeline's recordings. Messages are streamed
//! to `<file>.part` as they come (memory stays flat however long a
//! connection lives); when the session ends the metadata goes last and the
//! file is renamed into place, so a finished name is always a whole
//! session. An existing file is never overwritten: `-1`, `-2`... is added.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Instant, SystemTime};

use tokio::sync::mpsc;

use super::session::{Entry, Metadata};
use super::{Event, Plan};

/// The id under which a whole run's file is kept.
const RUN: u64 = u64::MAX;

pub(super) struct Writer {
    plan: Plan,
    pipeline: String,
    queued: Arc<AtomicUsize>,
    files: HashMap<u64, Recording>,
}

/// One session file being written.
struct Recording {
    part: PathBuf,
    target: PathBuf,
    out: Option<BufWriter<File>>,
    started: Instant,
    recorded_at: SystemTime,
    count: u64,
    last_ms: u64,
    dropped: u64,
    path: Option<String>,
    connection: Option<u64>,
}

impl Writer {
    pub(super) fn new(plan: Plan, pipeline: String, queued: Arc<AtomicUsize>) -> Self {
        Self {
            plan,
            pipeline,
            queued,
            files: HashMap::new(),
        }
    }

    pub(super) fn run(mut self, mut events: mpsc::UnboundedReceiver<Event>) {
        let per_connection = self.plan.per_connection();
        while let Some(event) = events.blocking_recv() {
            match event {
                Event::Opened {
                    conn,
                    path,
                    at,
                    opened,
                } => {
                    let key = if per_connection { conn } else { RUN };
                    if !self.files.contains_key(&key) {
                        let file = self.open(per_connection.then_some((conn, path)), at, opened);
                        self.files.insert(key, file);
                    }
                }
                Event::Message {
                    conn,
                    at,
                    direction,
                    kind,
                    payload,
                } => {
                    self.queued.fetch_sub(1, Ordering::Relaxed);
                    let key = if per_connection { conn } else { RUN };
                    if let Some(file) = self.files.get_mut(&key) {
                        let ms = at.saturating_duration_since(file.started).as_millis() as u64;
                        let mut entry = Entry::new(ms, direction, kind, &payload);
                        entry.connection = (!per_connection).then_some(conn);
                        file.write(&entry);
                    }
                }
                Event::Closed { conn, dropped } => {
                    if per_connection {
                        if let Some(mut file) = self.files.remove(&conn) {
                            file.dropped += dropped;
                            file.finish(&self.pipeline);
                        }
                    } else if let Some(file) = self.files.get_mut(&RUN) {
                        file.dropped += dropped;
                    }
                }
                Event::Finish => break,
            }
        }
        for (_, file) in self.files.drain() {
            file.finish(&self.pipeline);
        }
    }

    fn open(
        &self,
        conn: Option<(u64, String)>,
        recorded_at: SystemTime,
        started: Instant,
    ) -> Recording {
        let date = crate::time::rfc3339(recorded_at).replace(':', "-");
        let name = self
            .plan
            .output
            .to_string_lossy()
            .replace("{pipeline}", &self.pipeline)
            .replace("{date}", &date)
            .replace(
                "{connection}",
                &conn
                    .as_ref()
                    .map_or(String::new(), |(id, _)| id.to_string()),
            );
        let (target, part, out) = match claim(Path::new(&name)) {
            Ok((target, part, out)) => (target, part, Some(out)),
            Err(error) => {
                tracing::warn!(pipeline = %self.pipeline, file = %name, %error, "Cannot write a recording; this session is not recorded.");
                let target = PathBuf::from(&name);
                (target.clone(), target, None)
            }
        };
        let (connection, path) = conn.map_or((None, None), |(id, path)| (Some(id), Some(path)));
        Recording {
            part,
            target,
            out,
            started,
            recorded_at,
            count: 0,
            last_ms: 0,
            dropped: 0,
            path,
            connection,
        }
    }
}

/// Creates `<path>.part`, or the `.part` of `path` with `-1`, `-2`...
/// before its extension when that name is taken (a finished file or one
/// being written, by this or another pipeline's writer: `create_new` makes
/// the claim atomic). Returns the final name, the part's name and the
/// part's writer, its opening already written.
fn claim(path: &Path) -> std::io::Result<(PathBuf, PathBuf, BufWriter<File>)> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    for n in 0u32.. {
        let target = if n == 0 {
            path.to_owned()
        } else {
            path.with_file_name(format!("{stem}-{n}{extension}"))
        };
        if target.exists() {
            continue;
        }
        let part = PathBuf::from(format!("{}.part", target.display()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)
        {
            Ok(file) => {
                let mut out = BufWriter::new(file);
                out.write_all(b"{\"messages\":[")?;
                return Ok((target, part, out));
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error),
        }
    }
    unreachable!("some suffix is free")
}

impl Recording {
    fn write(&mut self, entry: &Entry) {
        let Some(out) = &mut self.out else {
            return;
        };
        let separator: &[u8] = if self.count == 0 { b"\n" } else { b",\n" };
        let written = out
            .write_all(separator)
            .and_then(|()| serde_json::to_writer(&mut *out, entry).map_err(std::io::Error::from));
        match written {
            Ok(()) => {
                self.count += 1;
                self.last_ms = entry.timestamp_ms;
            }
            Err(error) => {
                tracing::warn!(file = %self.part.display(), %error, "A recording failed to write; the rest of this session is not recorded.");
                self.out = None;
            }
        }
    }

    /// The metadata last, then the file into place.
    fn finish(mut self, pipeline: &str) {
        let Some(mut out) = self.out.take() else {
            return;
        };
        let metadata = Metadata {
            recorded_at: crate::time::rfc3339(self.recorded_at),
            duration_ms: (self.started.elapsed().as_millis() as u64).max(self.last_ms),
            message_count: self.count,
            pipeline: Some(pipeline.to_owned()),
            path: self.path.take(),
            connection: self.connection,
            dropped: self.dropped,
        };
        let finished = out
            .write_all(b"\n],\"metadata\":")
            .and_then(|()| serde_json::to_writer(&mut out, &metadata).map_err(std::io::Error::from))
            .and_then(|()| out.write_all(b"}\n"))
            .and_then(|()| out.flush())
            .and_then(|()| std::fs::rename(&self.part, &self.target));
        match finished {
            Ok(()) => {
                tracing::debug!(file = %self.target.display(), messages = self.count, "Recording written.")
            }
            Err(error) => {
                tracing::warn!(file = %self.part.display(), %error, "A recording could not be finished.")
            }
        }
    }
}
