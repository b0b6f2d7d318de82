//! `{{name}}`: a Sluice authenticator. A client opens a WebSocket with a
//! token, as `Authorization: Bearer <token>` or as `?token=<token>` in the
//! URL; the pipeline file gives each user's token.

use std::collections::HashMap;

use serde::Deserialize;
use sluice_sdk::{Authenticator, Config, Decision, Handshake, Principal};

/// This plugin's `config` table in `pipeline.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// user id -> token. Keep real tokens out of the file with
    /// `users = { alice = { env = "ALICE_TOKEN" } }`.
    users: HashMap<String, String>,
}

struct TokenAuth {
    users: HashMap<String, String>,
}

impl TokenAuth {
    /// The token the client sent, from the header or the query string.
    fn token(request: &Handshake) -> Option<String> {
        let bearer = request
            .header("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::to_owned);
        bearer.or_else(|| request.query_param("token"))
    }
}

impl Authenticator for TokenAuth {
    fn new(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if settings.users.is_empty() {
            return Err("`users` is empty: nobody could connect".into());
        }
        Ok(TokenAuth {
            users: settings.users,
        })
    }

    fn authenticate(&mut self, request: Handshake) -> Decision {
        let token = Self::token(&request);
        let user = self
            .users
            .iter()
            .find(|(_, known)| token.as_deref() == Some(known.as_str()));
        match user {
            Some((user, _)) => Decision::allow(Principal::new(user.clone())),
            None => Decision::unauthorized("Bearer realm=\"sluice\"", "unknown or missing token"),
        }
    }
}

sluice_sdk::export_authenticator!(TokenAuth);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_sdk::Header;

    fn auth() -> TokenAuth {
        let config = Config::from_json(r#"{"users": {"alice": "s3cret"}}"#).unwrap();
        TokenAuth::new(&config).unwrap()
    }

    fn handshake(query: &str, headers: &[(&str, &str)]) -> Handshake {
        Handshake {
            path: "/feed".into(),
            query: query.into(),
            headers: headers
                .iter()
                .map(|(name, value)| Header {
                    name: name.to_string(),
                    value: value.as_bytes().to_vec(),
                })
                .collect(),
            remote_addr: "127.0.0.1:50000".into(),
            params: Vec::new(),
        }
    }

    #[test]
    fn a_known_bearer_token_lets_its_user_in() {
        let decision = auth().authenticate(handshake("", &[("authorization", "Bearer s3cret")]));
        assert!(matches!(decision, Decision::Allow(p) if p.id == "alice"));
    }

    #[test]
    fn a_token_in_the_query_string_works_too() {
        let decision = auth().authenticate(handshake("token=s3cret", &[]));
        assert!(matches!(decision, Decision::Allow(p) if p.id == "alice"));
    }

    #[test]
    fn an_unknown_token_gets_401() {
        let decision = auth().authenticate(handshake("token=guess", &[]));
        assert!(matches!(decision, Decision::Deny(d) if d.status == 401));
    }
}
