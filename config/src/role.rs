//! The plugin vocabulary of a pipeline file: the role a plugin's place
//! gives it, and the built-in plugins (`plugin = "native:<name>"`) it may
//! name instead of a component. The plugin host speaks the same words.

/// What a plugin does in its pipeline; each role is one WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Decides who may open a WebSocket (world `authenticator`).
    Authenticator,
    /// Decides which channels a record goes to (world `router`).
    Router,
    /// Changes, filters or validates messages (world `transformer`).
    Transformer,
    /// Drives interactive endpoints (world `handler`).
    Handler,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [
        Role::Authenticator,
        Role::Router,
        Role::Transformer,
        Role::Handler,
    ];

    /// The role's name, which is also its world's name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Authenticator => "authenticator",
            Role::Router => "router",
            Role::Transformer => "transformer",
            Role::Handler => "handler",
        }
    }

    /// The interface a component of this role exports.
    pub fn export(self) -> &'static str {
        match self {
            Role::Authenticator => "sluice:plugin/auth@0.1.0",
            Role::Router => "sluice:plugin/routing@0.1.0",
            Role::Transformer => "sluice:plugin/transform@0.1.0",
            Role::Handler => "sluice:plugin/session@0.1.0",
        }
    }
}

/// The prefix that selects a built-in plugin in `plugin = "..."`.
pub const NATIVE_PREFIX: &str = "native:";

/// A built-in plugin, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Native {
    /// `native:key-router`: the `key-router` plugin's routing.
    KeyRouter,
    /// `native:basic-auth`: the `basic-auth` plugin's authentication.
    BasicAuth,
}

impl Native {
    /// Every built-in plugin.
    pub const ALL: [Native; 2] = [Native::KeyRouter, Native::BasicAuth];

    /// The built-in named by a `plugin = "native:<name>"` value (`None`
    /// when the value has no `native:` prefix or names none).
    pub fn from_plugin_name(value: &str) -> Option<Self> {
        let name = value.strip_prefix(NATIVE_PREFIX)?;
        Self::ALL.into_iter().find(|n| n.name() == name)
    }

    /// Its name after `native:`.
    pub fn name(self) -> &'static str {
        match self {
            Native::KeyRouter => "key-router",
            Native::BasicAuth => "basic-auth",
        }
    }

    /// The role it plays.
    pub fn role(self) -> Role {
        match self {
            Native::KeyRouter => Role::Router,
            Native::BasicAuth => Role::Authenticator,
        }
    }
}
