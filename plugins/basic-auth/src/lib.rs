//! `basic-auth`: lets a WebSocket in when its upgrade request carries HTTP
//! Basic credentials (`authorization: Basic base64(user:password)`) of a
//! user listed in the config.
//!
//! Config:
//! - `users = { testuser = "testpass" }`: user names and their passwords.
//!   Write a password as `{ env = "WS_PASSWORD" }` to take it from the
//!   environment; the host substitutes it before the plugin starts. User
//!   names may not contain `:`; passwords may not be empty (an empty one
//!   usually means an unset variable).
//! - `username = { env = "WS_USERNAME" }`, `password = { env = "WS_PASSWORD" }`:
//!   one more user, whose name may come from the environment too (a key of
//!   `users` cannot). At least one user in all.
//! - `realm = "sluice"` (optional, the default): the realm of the
//!   `www-authenticate: Basic realm="..."` challenge sent with a denial.
//! - `channels = { testuser = ["channel1"] }` (optional): the channels a
//!   user may subscribe to. A user not listed here may subscribe to any.
//!
//! An allowed connection's principal has the user name as its id, no
//! claims (`{}`), and the user's channel list, if any.
//!
//! A denial is a 401 with the challenge and one of these reasons:
//! `missing credentials` (no `authorization` header), `malformed
//! credentials` (not `Basic`, bad base64, no `:`, not UTF-8) or `invalid
//! credentials` (unknown user or wrong password: deliberately the same).
//!
//! The check takes the same time whichever part is wrong: the SHA-256 of
//! the given user name and password are compared, in constant time, with
//! those of every configured user, with no early exit.
//!
//! The logic is `sluice_rules::basic_auth`, which the host's
//! `native:basic-auth` runs too; this crate only puts it behind the
//! authenticator world.

use sluice_rules::basic_auth::{Accounts, CLAIMS};
use sluice_rules::http::AUTHORIZATION;
use sluice_sdk::{Authenticator, Config, Decision, Handshake, Principal, headers};

struct BasicAuth(Accounts);

impl Authenticator for BasicAuth {
    fn new(config: &Config) -> Result<Self, String> {
        Accounts::new(config.parse()?).map(BasicAuth)
    }

    fn authenticate(&mut self, request: Handshake) -> Decision {
        match self.0.check(headers::find(&request.headers, AUTHORIZATION)) {
            Ok(account) => Decision::allow(Principal {
                id: account.user().to_owned(),
                claims: CLAIMS.to_owned(),
                channels: account.channels().map(<[String]>::to_vec),
            }),
            Err(refusal) => Decision::unauthorized(self.0.challenge(), refusal.reason()),
        }
    }
}

sluice_sdk::export_authenticator!(BasicAuth);
