//! `native:basic-auth`: the `basic-auth` plugin (plugins/basic-auth) in
//! Rust. Same config (`users`, `realm`, `channels`), same decisions and
//! reasons, same constant-time check: the SHA-256 of the given user name
//! and password are compared with those of every configured user, with no
//! early exit.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::channel;
use crate::plugin::{Decision, Denial, Handshake, Header, Principal};

/// Its `config` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Settings {
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

/// A configured Basic authenticator.
pub struct BasicAuth {
    accounts: Vec<Account>,
    challenge: String,
}

impl BasicAuth {
    pub(super) fn new(mut settings: Settings) -> Result<Self, String> {
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
        Ok(Self {
            accounts,
            challenge: format!("Basic realm=\"{}\"", settings.realm),
        })
    }

    /// Allows a listed user with the right password; otherwise a 401 with
    /// the challenge and `missing credentials`, `malformed credentials` or
    /// `invalid credentials`.
    pub fn authenticate(&self, request: &Handshake) -> Decision {
        let value = request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("authorization"))
            .map(|h| h.value.as_slice());
        let Some(value) = value else {
            return self.unauthorized("missing credentials");
        };
        let Some((user, password)) = parse_basic(value) else {
            return self.unauthorized("malformed credentials");
        };
        let (user_hash, password_hash) = (sha256(&user), sha256(&password));
        let mut found = Choice::from(0);
        let mut index = 0u32;
        for (i, account) in self.accounts.iter().enumerate() {
            let hit =
                account.user_hash.ct_eq(&user_hash) & account.password_hash.ct_eq(&password_hash);
            index.conditional_assign(&(i as u32), hit);
            found |= hit;
        }
        if !bool::from(found) {
            return self.unauthorized("invalid credentials");
        }
        let account = &self.accounts[index as usize];
        Decision::Allow(Principal {
            id: account.user.clone(),
            claims: "{}".to_owned(),
            channels: account.channels.clone(),
        })
    }

    fn unauthorized(&self, reason: &str) -> Decision {
        Decision::Deny(Denial {
            status: 401,
            reason: reason.to_owned(),
            headers: vec![Header {
                name: "www-authenticate".to_owned(),
                value: self.challenge.as_bytes().to_vec(),
            }],
        })
    }
}

/// `Basic base64(user:password)` (scheme in any case) into its parts.
fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}
