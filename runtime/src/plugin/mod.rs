//! The plugin host: loads WebAssembly components, keeps them compiled and
//! pre-linked, and runs calls into them under a memory cap and a deadline.
//!
//! - [`PluginHost`]: the process's one engine, linker, epoch ticker and
//!   compile cache.
//! - [`LoadedPlugin`]: a compiled, type-checked component for one role, with
//!   its config and limits; cheap to clone, shared by every worker.
//! - [`PluginInstance`]: one live instance, used by one thread at a time.
//!   A trap, timeout, memory overrun or invalid return fails that call with
//!   a [`PluginError`], and the instance is rebuilt for the next call.
//!
//! Calls are synchronous and must not run on a tokio worker thread: WASI's
//! stdio blocks on an ambient runtime. Pipelines call plugins from their own
//! threads.

mod bindings;
mod budget;
mod cache;
mod engine;
mod error;
mod instance;
mod limits;
mod native;
mod pool;
mod roles;
mod state;
mod stdio;

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

pub use bindings::auth::{Decision, Denial, Handshake};
pub use bindings::routing::Route;
pub use bindings::session::{Action, Publish};
pub use bindings::transform::{Context as TransformContext, Direction, Outcome};
pub use bindings::types::{Connection, FrameKind, Header, Message, Principal};
pub use budget::CpuBudget;
// The plugin vocabulary is the pipeline file's: a file names roles, limits
// and built-ins, and config checks them without depending on this host.
pub use crate::config::{Limits, NATIVE_PREFIX, Native, Role, content_hash};
pub use cache::CompileCache;
pub use engine::Allocator;
pub use error::{FaultKind, PluginError, PluginId};
pub use instance::PluginInstance;
pub use pool::{AffinePool, PluginPool, PoolError};

use crate::config::{PluginCheck, PluginConfig};
use engine::EpochTicker;
use state::PluginState;

/// Settings of the plugin host.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// How instances get memory.
    pub allocator: Allocator,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            cache_dir: Some(CompileCache::default_dir()),
            allocator: Allocator::OnDemand,
        }
    }
}

/// Everything needed to load one plugin.
#[derive(Debug, Clone)]
pub struct PluginSpec {
    /// Who it is (for errors and logs).
    pub id: PluginId,
    /// Its role in the pipeline.
    pub role: Role,
    /// The component's bytes.
    pub bytes: Arc<[u8]>,
    /// Its config table as a JSON object, env references resolved.
    pub config_json: String,
    /// Its limits.
    pub limits: Limits,
}

impl PluginSpec {
    /// What loading `plugin`, as `pipeline` of `tenant` names it, takes.
    pub fn of(plugin: &PluginConfig, pipeline: &str, tenant: &str) -> Self {
        Self {
            id: PluginId {
                plugin: plugin.name.clone(),
                pipeline: pipeline.to_owned(),
                tenant: tenant.to_owned(),
            },
            role: plugin.role,
            bytes: plugin.bytes.clone(),
            config_json: plugin.config_json.clone(),
            limits: plugin.limits,
        }
    }
}

/// The process's plugin host.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<PluginState>,
    cache: Option<CompileCache>,
    _ticker: EpochTicker,
}

impl PluginHost {
    /// Builds the engine, the linker and the epoch ticker.
    pub fn new(options: HostOptions) -> anyhow::Result<Self> {
        let engine = engine::build_engine(options.allocator)?;
        let linker = engine::build_linker(&engine)?;
        let cache = match &options.cache_dir {
            Some(dir) => match CompileCache::new(dir, &engine) {
                Ok(cache) => Some(cache),
                Err(error) => {
                    tracing::warn!(dir = %dir.display(), %error, "Compile cache unavailable; compiling plugins every time.");
                    None
                }
            },
            None => None,
        };
        let ticker = EpochTicker::start(engine.clone());
        Ok(Self {
            engine,
            linker,
            cache,
            _ticker: ticker,
        })
    }

    /// Compiles a component (or loads it from the cache).
    fn compile(
        &self,
        id: &Arc<PluginId>,
        bytes: &[u8],
        hash: &str,
    ) -> Result<Component, PluginError> {
        if let Some(component) = self.cache.as_ref().and_then(|c| c.load(&self.engine, hash)) {
            return Ok(component);
        }
        let component = Component::new(&self.engine, bytes).map_err(|e| {
            let reason = if !looks_like_component(bytes) {
                "not a WebAssembly component (a core module or another file?)".to_owned()
            } else {
                format!("{e:#}")
            };
            PluginError::new(id, FaultKind::Compile(reason))
        })?;
        if let Some(cache) = &self.cache {
            cache.store(hash, &component);
        }
        Ok(component)
    }

    /// The role interfaces a component exports, for `sluice validate`.
    pub fn exported_roles(&self, id: &PluginId, bytes: &[u8]) -> Result<Vec<Role>, PluginError> {
        let id = Arc::new(id.clone());
        let component = self.compile(&id, bytes, &content_hash(bytes))?;
        Ok(roles_of(&export_names(&self.engine, &component)))
    }

    /// What a component exports and imports, for `sluice plugin build`.
    /// Fails when it does not compile or imports something the host does
    /// not offer; exporting no role is for the caller to judge.
    pub fn inspect(&self, id: &PluginId, bytes: &[u8]) -> Result<Inspection, PluginError> {
        let id = Arc::new(id.clone());
        let component = self.compile(&id, bytes, &content_hash(bytes))?;
        self.linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::new(&id, FaultKind::Instantiate(format!("{e:#}"))))?;
        let exports = export_names(&self.engine, &component);
        let imports = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        Ok(Inspection {
            roles: roles_of(&exports),
            exports,
            imports,
        })
    }

    /// Compiles, type-checks and pre-links a plugin, then instantiates it
    /// once and runs its `init` so a bad config fails here, at load time.
    pub fn load(&self, spec: PluginSpec) -> Result<LoadedPlugin, PluginError> {
        self.load_within(spec, None)
    }

    /// [`Self::load`], with every call of the plugin charged to `budget`
    /// (its tenant's plugin CPU time).
    pub fn load_within(
        &self,
        spec: PluginSpec,
        budget: Option<Arc<CpuBudget>>,
    ) -> Result<LoadedPlugin, PluginError> {
        let id = Arc::new(spec.id);
        let hash = content_hash(&spec.bytes);
        let component = self.compile(&id, &spec.bytes, &hash)?;
        let exports = export_names(&self.engine, &component);
        if !exports.iter().any(|e| e == spec.role.export()) {
            return Err(PluginError::new(
                &id,
                FaultKind::WrongWorld {
                    expected: spec.role.export(),
                    role: spec.role.name(),
                    world: spec.role.name(),
                    found: if exports.is_empty() {
                        "nothing".into()
                    } else {
                        exports.join(", ")
                    },
                },
            ));
        }
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::new(&id, FaultKind::Instantiate(format!("{e:#}"))))?;
        let settings = (spec.role, spec.config_json, spec.limits);
        LoadedPlugin::assemble(id, settings, (hash, Body::Wasm(pre)), budget)
    }

    /// Loads a plugin as a pipeline names it: a component, or a built-in
    /// (`native:`), its calls charged to `budget` if given.
    pub fn load_configured(
        &self,
        plugin: &PluginConfig,
        (pipeline, tenant): (&str, &str),
        budget: Option<Arc<CpuBudget>>,
    ) -> Result<LoadedPlugin, PluginError> {
        let spec = PluginSpec::of(plugin, pipeline, tenant);
        match plugin.native() {
            Some(native) => LoadedPlugin::native_within(native, spec, budget),
            None => self.load_within(spec, budget),
        }
    }

    /// The engine (for benchmarks and diagnostics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// The checks of `sluice validate` and of every reload.
impl PluginCheck for PluginHost {
    fn exported_roles(
        &self,
        plugin: &PluginConfig,
        pipeline: &str,
        tenant: &str,
    ) -> Result<Vec<Role>, String> {
        let spec = PluginSpec::of(plugin, pipeline, tenant);
        PluginHost::exported_roles(self, &spec.id, &spec.bytes).map_err(|e| e.kind.to_string())
    }

    fn init(&self, plugin: &PluginConfig, pipeline: &str, tenant: &str) -> Result<(), String> {
        self.load_configured(plugin, (pipeline, tenant), None)
            .map(drop)
            .map_err(|e| e.kind.to_string())
    }
}

/// What [`PluginHost::inspect`] found in a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The roles whose interface it exports (one, for a well-built plugin).
    pub roles: Vec<Role>,
    /// Every interface it exports, e.g. `sluice:plugin/routing@0.1.0`.
    pub exports: Vec<String>,
    /// Every interface it imports, e.g. `sluice:plugin/host@0.1.0`.
    pub imports: Vec<String>,
}

fn roles_of(exports: &[String]) -> Vec<Role> {
    Role::ALL
        .into_iter()
        .filter(|r| exports.iter().any(|e| e == r.export()))
        .collect()
}

fn export_names(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(engine)
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// A component starts with the wasm magic and a version field whose layer
/// byte is 1 (core modules have 0).
fn looks_like_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0]
}

/// A compiled, type-checked plugin, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct LoadedPlugin {
    inner: Arc<LoadedInner>,
}

struct LoadedInner {
    id: Arc<PluginId>,
    role: Role,
    hash: String,
    body: Body,
    config_json: Arc<str>,
    limits: Limits,
    metrics: crate::metrics::PluginMetrics,
    /// Its tenant's plugin CPU time, when it is counted.
    budget: Option<Arc<CpuBudget>>,
    /// What its instances' `presence` calls ask (a handler of a running
    /// pipeline; set once, before its pool starts).
    presence: std::sync::OnceLock<Arc<dyn Presence>>,
}

/// The answers to a handler's `presence` calls, for its pipeline (the
/// cluster gives them for every node).
pub trait Presence: Send + Sync {
    /// Open connections of the pipeline.
    fn connection_count(&self) -> u32;
    /// Its connections subscribed to `channel`.
    fn channel_count(&self, channel: &str) -> u32;
    /// At most `limit` of those, by id.
    fn channel_members(&self, channel: &str, limit: u32) -> Vec<PresenceMember>;
}

/// One connection as [`Presence::channel_members`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceMember {
    /// Its id.
    pub id: u64,
    /// Its principal's id, if authenticated.
    pub principal: Option<String>,
    /// The node it is open on.
    pub node: u16,
}

/// What runs a plugin's calls.
enum Body {
    /// A pre-linked component.
    Wasm(InstancePre<PluginState>),
    /// A built-in plugin.
    Native(Native),
}

impl LoadedPlugin {
    /// A built-in plugin (`plugin = "native:<name>"`) in place of `role`,
    /// with its config checked as a component's `init` would. `spec.bytes`
    /// are not read; its content hash is that of the name.
    pub fn native(native: Native, spec: PluginSpec) -> Result<Self, PluginError> {
        Self::native_within(native, spec, None)
    }

    /// [`Self::native`], with every call charged to `budget` (its tenant's
    /// plugin CPU time), as [`PluginHost::load_within`] does for components.
    pub fn native_within(
        native: Native,
        spec: PluginSpec,
        budget: Option<Arc<CpuBudget>>,
    ) -> Result<Self, PluginError> {
        let id = Arc::new(spec.id);
        if native.role() != spec.role {
            return Err(PluginError::new(
                &id,
                FaultKind::WrongRole {
                    called: spec.role.name(),
                    actual: native.role().name(),
                },
            ));
        }
        let hash = content_hash(format!("{NATIVE_PREFIX}{}", native.name()).as_bytes());
        let settings = (spec.role, spec.config_json, spec.limits);
        Self::assemble(id, settings, (hash, Body::Native(native)), budget)
    }

    /// Puts a loaded plugin together (role, config and limits from its
    /// spec) and proves it instantiates and accepts its config.
    fn assemble(
        id: Arc<PluginId>,
        (role, config_json, limits): (Role, String, Limits),
        (hash, body): (String, Body),
        budget: Option<Arc<CpuBudget>>,
    ) -> Result<Self, PluginError> {
        let metrics = crate::metrics::global().plugin(&id.tenant, &id.pipeline, &id.plugin);
        let plugin = LoadedPlugin {
            inner: Arc::new(LoadedInner {
                id,
                role,
                hash,
                body,
                config_json: Arc::from(config_json),
                limits,
                metrics,
                budget,
                presence: std::sync::OnceLock::new(),
            }),
        };
        plugin.instantiate()?;
        Ok(plugin)
    }

    /// Who it is.
    pub fn id(&self) -> &PluginId {
        &self.inner.id
    }

    /// Its role.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// SHA-256 of its component bytes.
    pub fn content_hash(&self) -> &str {
        &self.inner.hash
    }

    /// Its limits.
    pub fn limits(&self) -> Limits {
        self.inner.limits
    }

    /// Answers its instances' `presence` calls from `presence` from now on
    /// (instances made before keep answering nobody; a second call is
    /// ignored: a plugin serves one pipeline).
    pub fn answer_presence_with(&self, presence: Arc<dyn Presence>) {
        let _ = self.inner.presence.set(presence);
    }

    /// A new instance with `init` already run.
    pub fn instantiate(&self) -> Result<PluginInstance, PluginError> {
        PluginInstance::new(self.clone())
    }
}
