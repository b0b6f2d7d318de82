//! The `authenticator` role: who may open a WebSocket.

use sluice_rules::http;

use crate::{Config, Decision, Denial, Handshake, Header, Principal};

impl Handshake {
    /// The first request header called `name` (case-insensitive), as UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::headers::find_str(&self.headers, name)
    }

    /// A path-template parameter, e.g. `channel` for `/{channel}`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A query-string parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        crate::headers::query_param(&self.query, name)
    }
}

impl Principal {
    /// A principal with no claims that may join any channel.
    pub fn new(id: impl Into<String>) -> Self {
        Principal {
            id: id.into(),
            claims: "{}".to_owned(),
            channels: None,
        }
    }
}

impl Decision {
    /// Allow, as `principal`.
    pub fn allow(principal: Principal) -> Self {
        Decision::Allow(principal)
    }

    /// Deny with a status and a short reason.
    pub fn deny(status: u16, reason: impl Into<String>) -> Self {
        Decision::Deny(Denial {
            status,
            reason: reason.into(),
            headers: Vec::new(),
        })
    }

    /// Deny with 401 and a `WWW-Authenticate` challenge.
    pub fn unauthorized(challenge: &str, reason: impl Into<String>) -> Self {
        Decision::Deny(Denial {
            status: http::UNAUTHORIZED,
            reason: reason.into(),
            headers: vec![Header {
                name: http::WWW_AUTHENTICATE.to_owned(),
                value: challenge.as_bytes().to_vec(),
            }],
        })
    }
}

/// An authenticator plugin. Implement it and call
/// [`export_authenticator!`](crate::export_authenticator).
pub trait Authenticator: Sized + 'static {
    /// Builds the authenticator from its configuration.
    fn new(config: &Config) -> Result<Self, String>;

    /// Judges one handshake.
    fn authenticate(&mut self, request: Handshake) -> Decision;
}

/// Exports an [`Authenticator`] implementation as the component's
/// `authenticator` world.
#[macro_export]
macro_rules! export_authenticator {
    ($plugin:ty) => {
        const _: () = {
            struct SluiceExport;
            impl $crate::bindings::authenticator::exports::sluice::plugin::auth::Guest for SluiceExport {
                fn init() -> ::core::result::Result<(), ::std::string::String> {
                    let config = $crate::Config::load()?;
                    $crate::__state::install(<$plugin as $crate::Authenticator>::new(&config)?);
                    Ok(())
                }
                fn authenticate(request: $crate::Handshake) -> $crate::Decision {
                    $crate::__state::with(|p: &mut $plugin| $crate::Authenticator::authenticate(p, request))
                }
            }
            $crate::bindings::authenticator::__export_authenticator_world!(SluiceExport with_types_in $crate::bindings::authenticator);
        };
    };
}
