//! The `basic-auth` plugin's logic: an account table built from its
//! `config` table, and the check of an `Authorization` header against it.
//!
//! The check takes the same time whichever part is wrong: the SHA-256 of
//! the given user name and password are compared, in constant time, with
//! those of every account, with no early exit. An unknown user and a wrong
//! password get the same answer.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::{channel, http};

/// The realm of the challenge when the config names none.
pub const DEFAULT_REALM: &str = "sluice";

/// The claims of an allowed user's principal: none (a JSON object).
pub const CLAIMS: &str = "{}";

/// The plugin's `config` table.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// User names and their passwords (at least one, here or in
    /// `username`/`password`).
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// One more user, for a user name that comes from the environment
    /// (a key of `users` cannot): `username = { env = "WS_USERNAME" }`.
    #[serde(default)]
    pub username: Option<String>,
    /// That user's password (with `username`).
    #[serde(default)]
    pub password: Option<String>,
    /// The realm of the `Basic realm="..."` challenge.
    #[serde(default = "default_realm")]
    pub realm: String,
    /// The channels some users may subscribe to; a user not listed may
    /// subscribe to any.
    #[serde(default)]
    pub channels: BTreeMap<String, Vec<String>>,
}

fn default_realm() -> String {
    DEFAULT_REALM.to_owned()
}

/// One configured user.
pub struct Account {
    user: String,
    user_hash: [u8; 32],
    password_hash: [u8; 32],
    channels: Option<Vec<String>>,
}

impl Account {
    /// The user name: the principal's id.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The channels the user may subscribe to (`None`: any).
    pub fn channels(&self) -> Option<&[String]> {
        self.channels.as_deref()
    }
}

/// Why credentials were refused; every refusal is a 401
/// ([`http::UNAUTHORIZED`]) with the table's [`Accounts::challenge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `authorization` header.
    Missing,
    /// Not `Basic`, bad base64, no `:` or not UTF-8.
    Malformed,
    /// An unknown user or a wrong password (deliberately the same).
    Invalid,
}

impl Refusal {
    /// The denial's reason, as the client and the logs see it.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "missing credentials",
            Refusal::Malformed => "malformed credentials",
            Refusal::Invalid => "invalid credentials",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// The configured users, ready to check credentials against.
pub struct Accounts {
    accounts: Vec<Account>,
    challenge: String,
}

impl Accounts {
    /// Builds the table; `Err` says what is wrong with the config, in the
    /// words the operator sees at load time.
    pub fn new(settings: Settings) -> Result<Self, String> {
        let Settings {
            mut users,
            username,
            password,
            realm,
            mut channels,
        } = settings;
        match (username, password) {
            (Some(user), Some(password)) => {
                if users.insert(user.clone(), password).is_some() {
                    return Err(format!("user {user:?} is both `username` and in users"));
                }
            }
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err("username and password go together: give both or neither".into());
            }
        }
        if users.is_empty() {
            return Err(
                "no users: list at least one, e.g. users = { alice = \"secret\" }, or give username and password".into(),
            );
        }
        // The realm goes between quotes in a header value.
        if let Some(c) = realm
            .chars()
            .find(|&c| c == '"' || c == '\\' || c.is_control())
        {
            return Err(format!("realm {realm:?} may not contain {c:?}"));
        }
        if let Some(user) = channels.keys().find(|u| !users.contains_key(*u)) {
            return Err(format!("channels lists user {user:?}, who is not in users"));
        }
        let mut accounts = Vec::with_capacity(users.len());
        for (user, password) in users {
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
            let channels = channels.remove(&user);
            for name in channels.iter().flatten() {
                channel::validate(name).map_err(|e| format!("channels of user {user:?}: {e}"))?;
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
            challenge: format!("Basic realm=\"{realm}\""),
        })
    }

    /// The `www-authenticate` value sent with every refusal:
    /// `Basic realm="<realm>"`.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// The account whose credentials `authorization` (the request's first
    /// `authorization` header, if any) carries, or why there is none.
    pub fn check(&self, authorization: Option<&[u8]>) -> Result<&Account, Refusal> {
        let value = authorization.ok_or(Refusal::Missing)?;
        let credentials = http::parse_basic_auth(value).ok_or(Refusal::Malformed)?;
        let user_hash = sha256(&credentials.user);
        let password_hash = sha256(&credentials.password);
        // Every account is compared, and the match is picked without a
        // branch, so the time says nothing about which part was wrong.
        let mut found = Choice::from(0);
        let mut index = 0u32;
        for (i, account) in self.accounts.iter().enumerate() {
            let hit =
                account.user_hash.ct_eq(&user_hash) & account.password_hash.ct_eq(&password_hash);
            index.conditional_assign(&(i as u32), hit);
            found |= hit;
        }
        if bool::from(found) {
            Ok(&self.accounts[index as usize])
        } else {
            Err(Refusal::Invalid)
        }
    }
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    fn settings(users: &[(&str, &str)]) -> Settings {
        Settings {
            username: None,
            password: None,
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            realm: DEFAULT_REALM.into(),
            channels: BTreeMap::new(),
        }
    }

    fn basic(user_password: &str) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_password);
        format!("Basic {encoded}").into_bytes()
    }

    fn refused(accounts: &Accounts, value: Option<&[u8]>) -> Refusal {
        match accounts.check(value) {
            Ok(account) => panic!("{value:?} let {} in", account.user()),
            Err(refusal) => refusal,
        }
    }

    #[test]
    fn listed_users_get_in_with_their_channels() {
        let mut config = settings(&[("alice", "pw"), ("bob", "a:b")]);
        config.channels.insert("alice".into(), vec!["c1".into()]);
        let accounts = Accounts::new(config).unwrap();
        let alice = accounts.check(Some(&basic("alice:pw"))).unwrap();
        assert_eq!(
            (alice.user(), alice.channels()),
            ("alice", Some(&["c1".to_owned()][..]))
        );
        let bob = accounts.check(Some(&basic("bob:a:b"))).unwrap();
        assert_eq!((bob.user(), bob.channels()), ("bob", None));
    }

    #[test]
    fn a_username_and_password_pair_is_one_more_user() {
        let mut config = settings(&[("alice", "pw")]);
        config.username = Some("testuser".into());
        config.password = Some("testpass".into());
        let accounts = Accounts::new(config.clone()).unwrap();
        assert_eq!(
            accounts
                .check(Some(&basic("testuser:testpass")))
                .unwrap()
                .user(),
            "testuser"
        );
        assert_eq!(
            accounts.check(Some(&basic("alice:pw"))).unwrap().user(),
            "alice"
        );

        let alone = Settings {
            users: BTreeMap::new(),
            ..config.clone()
        };
        assert!(Accounts::new(alone).is_ok(), "users may be left out");
        let twice = Settings {
            username: Some("alice".into()),
            ..config.clone()
        };
        assert_eq!(
            Accounts::new(twice).err().unwrap(),
            "user \"alice\" is both `username` and in users"
        );
        let half = Settings {
            password: None,
            ..config
        };
        assert_eq!(
            Accounts::new(half).err().unwrap(),
            "username and password go together: give both or neither"
        );
    }

    #[test]
    fn every_refusal_has_its_reason() {
        let accounts = Accounts::new(settings(&[("alice", "pw")])).unwrap();
        assert_eq!(refused(&accounts, None), Refusal::Missing);
        for value in [&b"Bearer x"[..], b"Basic !!!", &basic("alice")] {
            assert_eq!(refused(&accounts, Some(value)), Refusal::Malformed);
        }
        for value in [basic("alice:nope"), basic("eve:pw"), basic("alice:pw ")] {
            assert_eq!(refused(&accounts, Some(&value)), Refusal::Invalid);
        }
        let reasons =
            [Refusal::Missing, Refusal::Malformed, Refusal::Invalid].map(|r| r.to_string());
        assert_eq!(
            reasons,
            [
                "missing credentials",
                "malformed credentials",
                "invalid credentials"
            ]
        );
        assert_eq!(accounts.challenge(), "Basic realm=\"sluice\"");
    }

    #[test]
    fn the_realm_names_the_challenge_and_must_fit_in_quotes() {
        let mut config = settings(&[("a", "x")]);
        config.realm = "here".into();
        assert_eq!(
            Accounts::new(config.clone()).unwrap().challenge(),
            "Basic realm=\"here\""
        );
        for bad in ["a\"b", "a\\b", "a\nb"] {
            config.realm = bad.into();
            let error = Accounts::new(config.clone()).err().unwrap();
            assert!(error.starts_with("realm ") && error.contains("may not contain"));
        }
    }

    #[test]
    fn bad_tables_are_refused_with_the_operators_words() {
        let error = |config: Settings| Accounts::new(config).err().expect("refused");
        assert!(error(settings(&[])).starts_with("no users:"));
        assert_eq!(
            error(settings(&[("", "x")])),
            "users has an empty user name"
        );
        assert_eq!(
            error(settings(&[("a:b", "x")])),
            "user name \"a:b\" contains ':', which HTTP Basic cannot carry"
        );
        assert_eq!(
            error(settings(&[("a", "")])),
            "password of user \"a\" is empty (an unset environment variable?)"
        );
        let mut stranger = settings(&[("a", "x")]);
        stranger.channels.insert("b".into(), Vec::new());
        assert_eq!(
            error(stranger),
            "channels lists user \"b\", who is not in users"
        );
        let mut empty_channel = settings(&[("a", "x")]);
        empty_channel
            .channels
            .insert("a".into(), vec![String::new()]);
        assert_eq!(
            error(empty_channel),
            "channels of user \"a\": channel name is empty"
        );
    }
}
