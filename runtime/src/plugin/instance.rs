//! One live plugin instance, its calls under limits, and recovery.

use wasmtime::Store;

use super::bindings::{auth, routing, session, transform};
use super::engine::TICK;
use super::error::{FaultKind, PluginError};
use super::native::NativeInstance;
use super::state::PluginState;
use super::{Body, LoadedPlugin, Role};

/// The typed exports of an instance, by role.
pub(crate) enum Guest {
    Auth(auth::Guest),
    Routing(routing::Guest),
    Transform(transform::Guest),
    Session(session::Guest),
}

struct Live {
    store: Store<PluginState>,
    guest: Guest,
}

/// A live instance of a [`LoadedPlugin`]. Not shared between threads; each
/// worker keeps its own.
pub struct PluginInstance {
    plugin: LoadedPlugin,
    /// `None` after a failed rebuild (the next call tries again), and for
    /// a built-in plugin.
    live: Option<Live>,
    /// A built-in plugin's state (it holds only its config: nothing to
    /// rebuild after a failed call).
    native: Option<NativeInstance>,
}

impl PluginInstance {
    pub(crate) fn new(plugin: LoadedPlugin) -> Result<Self, PluginError> {
        let (live, native) = match &plugin.inner.body {
            Body::Wasm(_) => (Some(build(&plugin)?), None),
            Body::Native(native) => {
                let native =
                    NativeInstance::new(*native, &plugin.inner.config_json).map_err(|reason| {
                        PluginError::new(&plugin.inner.id, FaultKind::Init(reason))
                    })?;
                (None, Some(native))
            }
        };
        Ok(Self {
            plugin,
            live,
            native,
        })
    }

    /// For a built-in plugin, runs `f` on it and checks and counts the
    /// result as [`Self::call`] does; `None` for a component.
    pub(crate) fn call_native<R>(
        &mut self,
        f: impl FnOnce(&NativeInstance) -> R,
        check: impl FnOnce(&R) -> Option<String>,
    ) -> Option<Result<R, PluginError>> {
        let native = self.native.as_ref()?;
        let started = std::time::Instant::now();
        let value = f(native);
        let result = match check(&value) {
            None => Ok(value),
            Some(reason) => Err(PluginError::new(
                &self.plugin.inner.id,
                FaultKind::InvalidReturn(reason),
            )),
        };
        self.plugin
            .inner
            .metrics
            .call(started.elapsed().as_secs_f64(), result.is_ok());
        Some(result)
    }

    /// The plugin this is an instance of.
    pub fn plugin(&self) -> &LoadedPlugin {
        &self.plugin
    }

    /// Runs `f` against the instance with the per-call deadline armed and
    /// the memory flag cleared. Any failure is classified, the instance is
    /// thrown away and rebuilt, and the typed error returned.
    ///
    /// `check` looks at what came back: `Some(reason)` makes it an invalid
    /// return. Each call is counted and timed in the plugin's metrics, and
    /// charged to its tenant's CPU budget, which may first make it wait.
    pub(crate) fn call<R>(
        &mut self,
        f: impl FnOnce(&mut Store<PluginState>, &Guest) -> wasmtime::Result<R>,
        check: impl FnOnce(&R) -> Option<String>,
    ) -> Result<R, PluginError> {
        let budget = self.plugin.inner.budget.clone();
        if let Some(budget) = &budget {
            budget.wait_turn();
        }
        let started = std::time::Instant::now();
        let result = self
            .call_unchecked(f)
            .and_then(|value| match check(&value) {
                None => Ok(value),
                Some(reason) => Err(self.fail(FaultKind::InvalidReturn(reason))),
            });
        let elapsed = started.elapsed();
        self.plugin
            .inner
            .metrics
            .call(elapsed.as_secs_f64(), result.is_ok());
        if let Some(budget) = &budget {
            budget.charge(elapsed);
        }
        result
    }

    fn call_unchecked<R>(
        &mut self,
        f: impl FnOnce(&mut Store<PluginState>, &Guest) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.live.is_none() {
            self.live = Some(build(&self.plugin)?);
        }
        let limits = self.plugin.inner.limits;
        let live = self.live.as_mut().expect("just rebuilt");
        live.store.data_mut().memory.exceeded = false;
        live.store.set_epoch_deadline(ticks(limits.deadline()));
        match f(&mut live.store, &live.guest) {
            Ok(value) => Ok(value),
            Err(error) => {
                let kind = classify(&error, live.store.data(), limits.deadline());
                Err(self.fail(kind))
            }
        }
    }

    /// Checks the instance serves `role`.
    pub(crate) fn expect_role(&self, role: Role) -> Result<(), PluginError> {
        let actual = self.plugin.role();
        if actual == role {
            Ok(())
        } else {
            Err(PluginError::new(
                &self.plugin.inner.id,
                FaultKind::WrongRole {
                    called: role.name(),
                    actual: actual.name(),
                },
            ))
        }
    }

    fn fail(&mut self, kind: FaultKind) -> PluginError {
        let error = PluginError::new(&self.plugin.inner.id, kind);
        tracing::debug!(%error, "Plugin call failed; rebuilding the instance.");
        // A guest that failed mid-call may hold broken state: start afresh.
        self.live = None;
        match build(&self.plugin) {
            Ok(live) => self.live = Some(live),
            Err(rebuild) => {
                tracing::warn!(error = %rebuild, "Rebuilding a plugin instance failed; will retry on the next call.");
            }
        }
        error
    }
}

fn ticks(deadline: std::time::Duration) -> u64 {
    (deadline.as_micros() / TICK.as_micros()).max(1) as u64 + 1
}

/// Instantiates the plugin in a fresh store and runs its `init`.
fn build(plugin: &LoadedPlugin) -> Result<Live, PluginError> {
    let inner = &plugin.inner;
    let id = &inner.id;
    let limits = inner.limits;
    let Body::Wasm(pre) = &inner.body else {
        unreachable!("built-in plugins have no component to instantiate")
    };
    let mut state = PluginState::new(id.clone(), inner.config_json.clone(), limits.memory_bytes);
    state.presence = inner.presence.get().cloned();
    let mut store = Store::new(pre.engine(), state);
    store.limiter(|s| &mut s.memory);
    store.epoch_deadline_trap();
    store.set_epoch_deadline(ticks(limits.init_deadline()));

    let fail = |store: &Store<PluginState>, error: wasmtime::Error| {
        let kind = match classify(&error, store.data(), limits.init_deadline()) {
            FaultKind::Trap(reason) => FaultKind::Instantiate(reason),
            other => other,
        };
        PluginError::new(id, kind)
    };
    let instance = match pre.instantiate(&mut store) {
        Ok(instance) => instance,
        Err(error) => return Err(fail(&store, error)),
    };
    let loaded = match inner.role {
        Role::Authenticator => auth::GuestIndices::new(pre)
            .and_then(|i| i.load(&mut store, &instance))
            .map(Guest::Auth),
        Role::Router => routing::GuestIndices::new(pre)
            .and_then(|i| i.load(&mut store, &instance))
            .map(Guest::Routing),
        Role::Transformer => transform::GuestIndices::new(pre)
            .and_then(|i| i.load(&mut store, &instance))
            .map(Guest::Transform),
        Role::Handler => session::GuestIndices::new(pre)
            .and_then(|i| i.load(&mut store, &instance))
            .map(Guest::Session),
    };
    let guest = match loaded {
        Ok(guest) => guest,
        Err(error) => return Err(fail(&store, error)),
    };
    let init = match &guest {
        Guest::Auth(g) => g.call_init(&mut store),
        Guest::Routing(g) => g.call_init(&mut store),
        Guest::Transform(g) => g.call_init(&mut store),
        Guest::Session(g) => g.call_init(&mut store),
    };
    match init {
        Ok(Ok(())) => Ok(Live { store, guest }),
        Ok(Err(reason)) => Err(PluginError::new(id, FaultKind::Init(reason))),
        Err(error) => {
            let kind = classify(&error, store.data(), limits.init_deadline());
            Err(PluginError::new(id, kind))
        }
    }
}

/// Turns a wasmtime error into what it means for the operator.
fn classify(
    error: &wasmtime::Error,
    state: &PluginState,
    deadline: std::time::Duration,
) -> FaultKind {
    if state.memory.exceeded {
        return FaultKind::MemoryExceeded(state.memory.cap);
    }
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => FaultKind::Timeout(deadline),
        Some(trap) => {
            // Rust guests print their panic message to stderr before the
            // abort that becomes this trap: it says far more than the trap.
            match state.stderr.take_recent() {
                Some(lines) => FaultKind::Trap(format!("{trap}; stderr: {lines}")),
                None => FaultKind::Trap(trap.to_string()),
            }
        }
        None => FaultKind::Trap(format!("{error:#}")),
    }
}
