//! `basic-auth`: lets a WebSocket in when its upgrade request carries HTTP
//! Basic credentials (`authorization: Basic base64(user:password)`) of a
//! user listed in the config.
//!
//! Config:
//! - `users = { testuser = "testpass" }` (required, at least one user): user
//!   names and their passwords. Write a password as `{ env = "WS_PASSWORD" }`
//!   to take it from the environment; the host substitutes it before the
//!   plugin starts. User names may not contain `:`; passwords may not be
//!   empty (an empty one usually means an unset variable).
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

use std::collections::BTreeMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use sluice_sdk::{Authenticator, Config, Decision, Handshake, Principal, channel, headers};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    users: BTreeMap<String, String>,
    #[serde(default = "default_realm")]
    realm: String,
    #[serde(default)]
    channels: BTreeMap<String, Vec<String>>,
}

fn default_realm() -> String {
    "sluice".to_owned()
}

struct Account {
    user: String,
    user_hash: [u8; 32],
    password_hash: [u8; 32],
    channels: Option<Vec<String>>,
}

struct BasicAuth {
    accounts: Vec<Account>,
    challenge: String,
}

impl Authenticator for BasicAuth {
    fn new(config: &Config) -> Result<Self, String> {
        let mut settings: Settings = config.parse()?;
        if settings.users.is_empty() {
            return Err(
                "users is empty: list at least one, e.g. users = { alice = \"secret\" }".into(),
            );
        }
        if let Some(c) = settings
            .realm
            .chars()
            .find(|&c| c == '"' || c == '\\' || c.is_control())
        {
            return Err(format!("realm {:?} may not contain {c:?}", settings.realm));
        }
        if let Some(user) = settings
            .channels
            .keys()
            .find(|u| !settings.users.contains_key(*u))
        {
            return Err(format!("channels lists user {user:?}, who is not in users"));
        }
        let mut accounts = Vec::with_capacity(settings.users.len());
        for (user, password) in settings.users {
            if user.is_empty() {
                return Err("users has an empty user name".into());
            }
            if user.contains(':') {
                return Err(format!(
                    "user name {user:?} contains ':', which HTTP Basic cannot carry"
                ));
            }
            if password.is_empty() {
                return Err(format!(
                    "password of user {user:?} is empty (an unset environment variable?)"
                ));
            }
            let channels = settings.channels.remove(&user);
            for channel in channels.iter().flatten() {
                channel::validate(channel)
                    .map_err(|e| format!("channels of user {user:?}: {e}"))?;
            }
            accounts.push(Account {
                user_hash: sha256(&user),
                password_hash: sha256(&password),
                user,
                channels,
            });
        }
        Ok(BasicAuth {
            accounts,
            challenge: format!("Basic realm=\"{}\"", settings.realm),
        })
    }

    fn authenticate(&mut self, request: Handshake) -> Decision {
        let Some(value) = headers::find(&request.headers, "authorization") else {
            return Decision::unauthorized(&self.challenge, "missing credentials");
        };
        let Some(credentials) = headers::parse_basic_auth(value) else {
            return Decision::unauthorized(&self.challenge, "malformed credentials");
        };
        let user_hash = sha256(&credentials.user);
        let password_hash = sha256(&credentials.password);
        let mut found = Choice::from(0);
        let mut index = 0u32;
        for (i, account) in self.accounts.iter().enumerate() {
            let hit =
                account.user_hash.ct_eq(&user_hash) & account.password_hash.ct_eq(&password_hash);
            index.conditional_assign(&(i as u32), hit);
            found |= hit;
        }
        if !bool::from(found) {
            return Decision::unauthorized(&self.challenge, "invalid credentials");
        }
        let account = &self.accounts[index as usize];
        Decision::allow(Principal {
            channels: account.channels.clone(),
            ..Principal::new(account.user.clone())
        })
    }
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

sluice_sdk::export_authenticator!(BasicAuth);
