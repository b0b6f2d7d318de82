//! On-disk cache of compiled components, keyed by the component's content
//! hash and the engine's settings, so a restart (or a reload of an unchanged
//! plugin) skips Cranelift entirely.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::Engine;
use wasmtime::component::Component;

/// A directory of `<content-hash>-<engine-hash>.cwasm` files.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    engine_key: String,
}

impl CompileCache {
    /// A cache in `dir` (created if missing) for artifacts of `engine`.
    pub fn new(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_owned(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    /// The default location: `$XDG_CACHE_HOME/sluice/compiled`, else
    /// `$HOME/.cache/sluice/compiled`, else the system temp dir.
    pub fn default_dir() -> PathBuf {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        base.join("sluice").join("compiled")
    }

    fn path_for(&self, hash: &str) -> PathBuf {
        self.dir.join(format!("{hash}-{}.cwasm", self.engine_key))
    }

    /// A compiled component from the cache, if present and loadable. A file
    /// that fails to load is removed and treated as a miss.
    pub fn load(&self, engine: &Engine, hash: &str) -> Option<Component> {
        let path = self.path_for(hash);
        if !path.exists() {
            return None;
        }
        // SAFETY: wasmtime trusts the code in a serialized artifact. The
        // files here are written only by `store` below, from components this
        // process compiled itself, into a directory the operator controls;
        // the name carries the engine-settings hash, and wasmtime checks the
        // version and settings again while loading.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Some(component),
            Err(error) => {
                tracing::warn!(path = %path.display(), %error, "Dropping unreadable compiled plugin from the cache.");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a compiled component. Written to a temporary file and renamed,
    /// so a concurrent reader never sees half a file. Failures only cost
    /// the next start a compile, so they are logged, not returned.
    pub fn store(&self, hash: &str, component: &Component) {
        let path = self.path_for(hash);
        let result = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| {
                // Unique per process and call, so concurrent stores never share a temp file.
                static NEXT: AtomicU64 = AtomicU64::new(0);
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
                std::fs::write(&tmp, bytes)
                    .and_then(|()| std::fs::rename(&tmp, &path))
                    .map_err(|e| e.to_string())
            });
        if let Err(error) = result {
            tracing::warn!(path = %path.display(), %error, "Could not cache a compiled plugin.");
        }
    }
}
