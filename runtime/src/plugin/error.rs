//! Typed plugin failures, each naming the plugin, pipeline and tenant.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Which plugin a failure belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PluginId {
    /// The plugin's name in the pipeline file (e.g. `key-router`).
    pub plugin: String,
    /// The pipeline that loaded it.
    pub pipeline: String,
    /// The tenant that owns the pipeline.
    pub tenant: String,
}

impl fmt::Display for PluginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin `{}` (pipeline `{}`, tenant `{}`)",
            self.plugin, self.pipeline, self.tenant
        )
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultKind {
    /// The bytes are not a WebAssembly component, or it failed to compile.
    #[error("cannot compile: {0}")]
    Compile(String),
    /// The component does not export the interface its role needs.
    #[error(
        "does not export `{expected}` (a {role} must target world `sluice:plugin/{world}`); it exports: {found}"
    )]
    WrongWorld {
        /// The interface that is missing.
        expected: &'static str,
        /// The role the pipeline gave it.
        role: &'static str,
        /// The world its role needs.
        world: &'static str,
        /// What it does export.
        found: String,
    },
    /// The component imports something the host does not offer (plugins get
    /// no filesystem, network or environment).
    #[error("cannot be instantiated: {0}")]
    Instantiate(String),
    /// The plugin's `init` returned an error (usually its config).
    #[error("refused its configuration: {0}")]
    Init(String),
    /// The guest trapped (a panic in Rust is a trap).
    #[error("trapped: {0}")]
    Trap(String),
    /// The call ran past its deadline and was interrupted.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The guest tried to grow its memory past its cap.
    #[error("exceeded its memory cap of {0} bytes")]
    MemoryExceeded(usize),
    /// The guest returned a value that breaks the contract.
    #[error("returned an invalid value: {0}")]
    InvalidReturn(String),
    /// The plugin was asked for a role it does not have.
    #[error("was called as a {called} but is a {actual}")]
    WrongRole {
        /// The role of the call.
        called: &'static str,
        /// The plugin's role.
        actual: &'static str,
    },
    /// Reading the component or the compile cache failed.
    #[error("i/o error: {0}")]
    Io(String),
}

/// A plugin failure: which plugin, and what went wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{id} {kind}")]
pub struct PluginError {
    /// The plugin.
    pub id: Arc<PluginId>,
    /// The failure.
    pub kind: FaultKind,
}

impl PluginError {
    pub(crate) fn new(id: &Arc<PluginId>, kind: FaultKind) -> Self {
        Self {
            id: id.clone(),
            kind,
        }
    }

    /// A short label for metrics and logs: `trap`, `timeout`, `memory`, ...
    pub fn label(&self) -> &'static str {
        match self.kind {
            FaultKind::Compile(_) => "compile",
            FaultKind::WrongWorld { .. } => "wrong_world",
            FaultKind::Instantiate(_) => "instantiate",
            FaultKind::Init(_) => "init",
            FaultKind::Trap(_) => "trap",
            FaultKind::Timeout(_) => "timeout",
            FaultKind::MemoryExceeded(_) => "memory",
            FaultKind::InvalidReturn(_) => "invalid_return",
            FaultKind::WrongRole { .. } => "wrong_role",
            FaultKind::Io(_) => "io",
        }
    }
}
