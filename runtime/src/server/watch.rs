//! Asks for a live reload when the pipeline file, or a plugin component it
//! loads from a file, changes. Directories are watched rather than files,
//! so an editor's save-by-rename and a rebuilt component are both seen.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::admin::{Reloads, Trigger};
use crate::config::{Config, PluginSource};

/// Waits this long after the last change before reloading, so a file
/// written in several steps (or a plugin and the file together) is read
/// once, whole.
const SETTLE: Duration = Duration::from_millis(300);

/// The watcher; dropping it stops the reloads on change.
pub struct FileWatch {
    watcher: Mutex<notify::RecommendedWatcher>,
    files: Arc<Mutex<HashSet<PathBuf>>>,
    dirs: Mutex<HashSet<PathBuf>>,
}

impl FileWatch {
    /// Watches `config`'s file and plugin files; a change asks `reloads`
    /// for a reload once it settles. Call from a tokio runtime.
    pub fn start(config: &Config, reloads: Reloads) -> Result<Self, notify::Error> {
        let files: Arc<Mutex<HashSet<PathBuf>>> = Arc::default();
        let (changed, mut changes) = mpsc::unbounded_channel::<()>();
        let watched = files.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if event.kind.is_access() {
                return;
            }
            let files = watched.lock().unwrap_or_else(|e| e.into_inner());
            if event.paths.iter().any(|p| files.contains(p)) {
                let _ = changed.send(());
            }
        })?;
        tokio::spawn(async move {
            while changes.recv().await.is_some() {
                // Quiet for SETTLE: then read the file.
                while let Ok(Some(())) = tokio::time::timeout(SETTLE, changes.recv()).await {}
                tracing::info!("The pipeline file or a plugin changed: reloading.");
                reloads.ask(Trigger::FileChange);
            }
        });
        let watch = Self {
            watcher: Mutex::new(watcher),
            files,
            dirs: Mutex::default(),
        };
        watch.follow(config);
        Ok(watch)
    }

    /// Watches the files of `config` (after a reload: its plugins may be
    /// other files now).
    pub fn follow(&self, config: &Config) {
        let files = watched_files(config);
        let dirs: HashSet<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(Path::to_path_buf))
            .collect();
        let mut watcher = self.watcher.lock().unwrap_or_else(|e| e.into_inner());
        let mut watching = self.dirs.lock().unwrap_or_else(|e| e.into_inner());
        for dir in watching.difference(&dirs) {
            let _ = watcher.unwatch(dir);
        }
        for dir in dirs.difference(&watching) {
            if let Err(error) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
                tracing::warn!(dir = %dir.display(), %error, "Cannot watch for changes; reload with SIGHUP or the admin API.");
            }
        }
        *watching = dirs;
        *self.files.lock().unwrap_or_else(|e| e.into_inner()) = files;
    }
}

/// The pipeline file and every plugin loaded from a file, as absolute
/// paths (what the watcher reports).
fn watched_files(config: &Config) -> HashSet<PathBuf> {
    let plugin_files = config
        .pipelines
        .iter()
        .flat_map(|p| p.plugins())
        .filter_map(|(_, plugin)| match &plugin.source {
            PluginSource::File(path) => Some(path.clone()),
            PluginSource::Builtin(_) | PluginSource::Native(_) => None,
        });
    std::iter::once(config.file.clone())
        .chain(plugin_files)
        .filter_map(|path| std::path::absolute(path).ok())
        .collect()
}
