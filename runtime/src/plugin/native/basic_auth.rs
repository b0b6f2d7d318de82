//! `native:basic-auth`: the `basic-auth` plugin (plugins/basic-auth)
//! without the Wasm boundary. Both run `sluice_rules::basic_auth`; this
//! file only turns its answers into the host's decision types.

use sluice_rules::basic_auth::{Accounts, CLAIMS, Settings};
use sluice_rules::http::{AUTHORIZATION, UNAUTHORIZED, WWW_AUTHENTICATE};

use crate::plugin::{Decision, Denial, Handshake, Header, Principal};

/// A configured Basic authenticator.
pub struct BasicAuth(Accounts);

impl BasicAuth {
    pub(super) fn new(settings: Settings) -> Result<Self, String> {
        Accounts::new(settings).map(Self)
    }

    /// Allows a listed user with the right password; otherwise a 401 with
    /// the challenge and `missing credentials`, `malformed credentials` or
    /// `invalid credentials`.
    pub fn authenticate(&self, request: &Handshake) -> Decision {
        let authorization = request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(AUTHORIZATION))
            .map(|h| h.value.as_slice());
        match self.0.check(authorization) {
            Ok(account) => Decision::Allow(Principal {
                id: account.user().to_owned(),
                claims: CLAIMS.to_owned(),
                channels: account.channels().map(<[String]>::to_vec),
            }),
            Err(refusal) => Decision::Deny(Denial {
                status: UNAUTHORIZED,
                reason: refusal.reason().to_owned(),
                headers: vec![Header {
                    name: WWW_AUTHENTICATE.to_owned(),
                    value: self.0.challenge().as_bytes().to_vec(),
                }],
            }),
        }
    }
}
