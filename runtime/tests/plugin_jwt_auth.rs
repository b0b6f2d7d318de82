//! The `jwt-auth` plugin, built and loaded into the real host, judging
//! tokens signed here with `jsonwebtoken` (HS256, RS256, ES256) and the
//! fixed test keys in `fixtures/`.

mod support;

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header as JwtHeader};
use serde_json::{Value, json};
use sluice_runtime::plugin::{
    Decision, FaultKind, Handshake, Header, LoadedPlugin, PluginError, PluginInstance, Principal,
    Role,
};

const SECRET: &str = "a test secret of at least 32 bytes!";
const RSA_PRIVATE: &str = include_str!("fixtures/jwt_rsa_private.pem");
const RSA_PUBLIC: &str = include_str!("fixtures/jwt_rsa_public.pem");
const EC_PRIVATE: &str = include_str!("fixtures/jwt_ec_private.pem");
const EC_PUBLIC: &str = include_str!("fixtures/jwt_ec_public.pem");
const EC_OTHER_PRIVATE: &str = include_str!("fixtures/jwt_ec_other_private.pem");
const ISSUER: &str = "https://issuer.test";
/// base64url of `{"alg":"none","typ":"JWT"}`.
const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

fn load(config: &Value) -> Result<LoadedPlugin, PluginError> {
    support::plugins::load("jwt-auth", Role::Authenticator, &config.to_string())
}

/// The plugin with `key` (e.g. `{"secret": ...}`), the test issuer and
/// audience, and `extra` settings.
fn start(key: Value, extra: Value) -> PluginInstance {
    let mut config = json!({"issuer": ISSUER, "audience": "sluice"});
    let fields = key
        .as_object()
        .unwrap()
        .iter()
        .chain(extra.as_object().unwrap());
    for (name, value) in fields {
        config[name] = value.clone();
    }
    load(&config)
        .expect("load jwt-auth")
        .instantiate()
        .expect("instantiate")
}

fn hs() -> PluginInstance {
    start(json!({"secret": SECRET}), json!({}))
}

fn init_error(config: Value) -> String {
    match load(&config)
        .err()
        .expect("the config must be refused")
        .kind
    {
        FaultKind::Init(reason) => reason,
        other => panic!("expected an init error, got {other:?}"),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Valid claims for `alice`, with `changes` applied (`null` removes a claim).
fn claims(changes: Value) -> Value {
    let mut claims =
        json!({"sub": "alice", "iss": ISSUER, "aud": "sluice", "iat": now(), "exp": now() + 600});
    for (name, value) in changes.as_object().unwrap() {
        match value {
            Value::Null => {
                claims.as_object_mut().unwrap().remove(name);
            }
            _ => claims[name] = value.clone(),
        }
    }
    claims
}

/// A token for `claims` signed with the test key of `alg`'s family.
fn sign(alg: Algorithm, claims: &Value) -> String {
    let key = match alg {
        Algorithm::HS256 | Algorithm::HS384 => EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        _ => EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
    };
    sign_with(&key, alg, claims)
}

fn sign_with(key: &EncodingKey, alg: Algorithm, claims: &Value) -> String {
    jsonwebtoken::encode(&JwtHeader::new(alg), claims, key).expect("sign")
}

fn hs256(changes: Value) -> String {
    sign(Algorithm::HS256, &claims(changes))
}

fn request(headers: &[(&str, &str)], query: &str) -> Handshake {
    Handshake {
        path: "/channel1".into(),
        query: query.into(),
        headers: headers
            .iter()
            .map(|(name, value)| Header {
                name: (*name).into(),
                value: value.as_bytes().to_vec(),
            })
            .collect(),
        remote_addr: "127.0.0.1:50000".into(),
        params: Vec::new(),
    }
}

fn bearer(token: &str) -> Handshake {
    request(&[("authorization", &format!("Bearer {token}"))], "")
}

fn allowed(instance: &mut PluginInstance, request: &Handshake) -> Principal {
    match instance.authenticate(request).expect("authenticate") {
        Decision::Allow(principal) => principal,
        Decision::Deny(denial) => panic!("denied: {} {}", denial.status, denial.reason),
    }
}

/// Asserts a 401 with `reason` and the matching challenge.
fn assert_denied(instance: &mut PluginInstance, request: &Handshake, reason: &str) {
    let Decision::Deny(denial) = instance.authenticate(request).expect("authenticate") else {
        panic!("allowed, expected a denial for {reason:?}");
    };
    assert_eq!((denial.status, denial.reason.as_str()), (401, reason));
    let challenge = match reason {
        "missing bearer token" => r#"Bearer realm="sluice""#.to_owned(),
        _ => {
            format!(r#"Bearer realm="sluice", error="invalid_token", error_description="{reason}""#)
        }
    };
    assert_eq!(denial.headers.len(), 1);
    assert_eq!(denial.headers[0].name, "www-authenticate");
    assert_eq!(String::from_utf8_lossy(&denial.headers[0].value), challenge);
}

/// Asserts that HS256 tokens with these claim changes get these reasons.
fn assert_claims_denied(instance: &mut PluginInstance, cases: &[(Value, &str)]) {
    for (changes, reason) in cases {
        assert_denied(instance, &bearer(&hs256(changes.clone())), reason);
    }
}

#[test]
fn valid_tokens_of_each_algorithm_let_their_subject_in() {
    let token_claims = claims(json!({"channels": ["room1", "room2"], "role": "admin"}));
    let cases = [
        (Algorithm::HS256, json!({"secret": SECRET})),
        (Algorithm::RS256, json!({"public_key": RSA_PUBLIC})),
        (Algorithm::ES256, json!({"public_key": EC_PUBLIC})),
    ];
    for (alg, key) in cases {
        let mut plugin = start(key, json!({}));
        let principal = allowed(&mut plugin, &bearer(&sign(alg, &token_claims)));
        assert_eq!(principal.id, "alice", "{alg:?}");
        let seen: Value = serde_json::from_str(&principal.claims).unwrap();
        assert_eq!(seen, token_claims, "the whole claims object is passed on");
        let channels = principal.channels.expect("a channel list");
        assert_eq!(channels, ["room1", "room2"]);
    }
    let principal = allowed(&mut hs(), &bearer(&hs256(json!({}))));
    assert_eq!(principal.channels, None, "no channels claim: any channel");
}

#[test]
fn a_request_without_a_bearer_token_gets_a_bare_challenge() {
    let mut plugin = hs();
    let token = hs256(json!({}));
    for (authorization, query) in [
        (None, String::new()),
        (Some("Basic dTpw"), String::new()),
        (Some("Bearer "), String::new()),
        // A query parameter counts only when configured.
        (None, format!("token={token}")),
    ] {
        let headers: Vec<_> = authorization
            .map(|v| ("authorization", v))
            .into_iter()
            .collect();
        assert_denied(
            &mut plugin,
            &request(&headers, &query),
            "missing bearer token",
        );
    }
}

#[test]
fn the_token_may_come_from_a_configured_query_parameter() {
    let mut plugin = start(
        json!({"secret": SECRET}),
        json!({"query_param": "access_token"}),
    );
    let query = format!("x=1&access_token={}", hs256(json!({"sub": "bob"})));
    assert_eq!(allowed(&mut plugin, &request(&[], &query)).id, "bob");
    // The header wins over the query.
    let header = format!("Bearer {}", hs256(json!({})));
    let both = request(&[("authorization", &header)], &query);
    assert_eq!(allowed(&mut plugin, &both).id, "alice");
    let bad = request(&[], "access_token=expired");
    assert_denied(&mut plugin, &bad, "malformed token");
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused_beyond_the_leeway() {
    let mut plugin = hs();
    assert_claims_denied(
        &mut plugin,
        &[
            (json!({"exp": now() - 3600}), "token expired"),
            (json!({"nbf": now() + 3600}), "token not yet valid"),
            // exp is required unless configured otherwise, and is a number.
            (json!({"exp": null}), "token has no exp claim"),
            (json!({"exp": "tomorrow"}), "exp claim is not a number"),
            (json!({"nbf": "now"}), "nbf claim is not a number"),
        ],
    );
    // Default leeway: 30 seconds.
    allowed(&mut plugin, &bearer(&hs256(json!({"exp": now() - 10}))));
    allowed(&mut plugin, &bearer(&hs256(json!({"nbf": now() + 10}))));
    let mut strict = start(json!({"secret": SECRET}), json!({"leeway_seconds": 0}));
    assert_claims_denied(
        &mut strict,
        &[
            (json!({"exp": now() - 10}), "token expired"),
            (json!({"nbf": now() + 10}), "token not yet valid"),
        ],
    );
    let mut lax = start(json!({"secret": SECRET}), json!({"require_exp": false}));
    allowed(&mut lax, &bearer(&hs256(json!({"exp": null}))));
}

#[test]
fn issuer_and_audience_must_match() {
    let mut plugin = hs();
    assert_claims_denied(
        &mut plugin,
        &[
            (json!({"iss": "https://evil.test"}), "wrong issuer"),
            (json!({"iss": null}), "token has no iss claim"),
            (json!({"aud": "other-service"}), "wrong audience"),
            (json!({"aud": ["other-service"]}), "wrong audience"),
            (json!({"aud": null}), "token has no aud claim"),
        ],
    );
    let token = hs256(json!({"aud": ["other-service", "sluice"]}));
    allowed(&mut plugin, &bearer(&token));
    // Without `audience`, a token meant for some audience is refused.
    let mut anyone = load(&json!({"secret": SECRET}))
        .unwrap()
        .instantiate()
        .unwrap();
    allowed(
        &mut anyone,
        &bearer(&hs256(json!({"aud": null, "iss": "x"}))),
    );
    assert_denied(&mut anyone, &bearer(&hs256(json!({}))), "wrong audience");
}

#[test]
fn tampered_or_foreign_signatures_are_refused() {
    let mut plugin = hs();
    let token = hs256(json!({}));
    let parts: Vec<&str> = token.split('.').collect();
    let flipped = if parts[2].starts_with('A') { "B" } else { "A" };
    let tampered = format!("{}.{}.{flipped}{}", parts[0], parts[1], &parts[2][1..]);
    assert_denied(&mut plugin, &bearer(&tampered), "bad signature");
    // Alice's header and signature around a payload that says mallory.
    let mallory = hs256(json!({"sub": "mallory"}));
    let mallory = mallory.split('.').nth(1).unwrap();
    let forged = format!("{}.{mallory}.{}", parts[0], parts[2]);
    assert_denied(&mut plugin, &bearer(&forged), "bad signature");
    let wrong_secret = EncodingKey::from_secret(b"another secret of at least 32 bytes");
    let foreign = sign_with(&wrong_secret, Algorithm::HS256, &claims(json!({})));
    assert_denied(&mut plugin, &bearer(&foreign), "bad signature");
    let mut ec = start(json!({"public_key": EC_PUBLIC}), json!({}));
    let other_key = EncodingKey::from_ec_pem(EC_OTHER_PRIVATE.as_bytes()).unwrap();
    let foreign = sign_with(&other_key, Algorithm::ES256, &claims(json!({})));
    assert_denied(&mut ec, &bearer(&foreign), "bad signature");
}

#[test]
fn algorithms_outside_the_allow_list_are_refused() {
    let mut plugin = hs();
    let payload = hs256(json!({})).split('.').nth(1).unwrap().to_owned();
    let unsigned = format!("{NONE_HEADER}.{payload}.");
    assert_denied(
        &mut plugin,
        &bearer(&unsigned),
        "algorithm none is not allowed",
    );
    let rs = sign(Algorithm::RS256, &claims(json!({})));
    assert_denied(&mut plugin, &bearer(&rs), "algorithm RS256 is not allowed");
    let hs384 = sign(Algorithm::HS384, &claims(json!({})));
    assert_denied(
        &mut plugin,
        &bearer(&hs384),
        "algorithm HS384 is not allowed",
    );
    let both = json!({"algorithms": ["HS256", "HS384"]});
    allowed(&mut start(json!({"secret": SECRET}), both), &bearer(&hs384));
    // Key confusion: an HS256 token keyed with the RSA public key.
    let mut rsa = start(json!({"public_key": RSA_PUBLIC}), json!({}));
    let confused = EncodingKey::from_secret(RSA_PUBLIC.as_bytes());
    let token = sign_with(&confused, Algorithm::HS256, &claims(json!({})));
    assert_denied(&mut rsa, &bearer(&token), "algorithm HS256 is not allowed");
    assert_denied(
        &mut rsa,
        &bearer(&unsigned),
        "algorithm none is not allowed",
    );
    // A hostile `alg` cannot break the quoting of the challenge.
    let quoted = format!("eyJhbGciOiJhXCJiIn0.{payload}.x"); // {"alg":"a\"b"}
    assert_denied(&mut plugin, &bearer(&quoted), "algorithm ab is not allowed");
    let quote = format!("eyJhbGciOiJcIiJ9.{payload}.x"); // {"alg":"\""}
    assert_denied(&mut plugin, &bearer(&quote), "algorithm is not allowed");
}

#[test]
fn malformed_tokens_and_unusable_claims_are_refused() {
    let mut plugin = hs();
    for token in ["abc", "a.b", "a.b.c.d", "x.y.z", "eyJ0eXAiOiJKV1QifQ.e30.x"] {
        assert_denied(&mut plugin, &bearer(token), "malformed token");
    }
    let not_channels = "channels claim is not an array of channel names";
    assert_claims_denied(
        &mut plugin,
        &[
            (json!({"sub": null}), "token has no sub claim"),
            (json!({"channels": "room1"}), not_channels),
            (json!({"channels": [1]}), not_channels),
            (json!({"channels": [""]}), not_channels),
            (json!({"channels": ["a\nb"]}), not_channels),
        ],
    );
    let numeric = allowed(&mut plugin, &bearer(&hs256(json!({"sub": 42}))));
    assert_eq!(numeric.id, "42");

    let extra = json!({"principal_claim": "email", "channels_claim": "rooms"});
    let mut custom = start(json!({"secret": SECRET}), extra);
    let token = hs256(json!({"email": "a@example.test", "rooms": ["r1"], "channels": 7}));
    let principal = allowed(&mut custom, &bearer(&token));
    assert_eq!(principal.id, "a@example.test");
    assert_eq!(principal.channels.expect("a channel list"), ["r1"]);
    assert_claims_denied(
        &mut custom,
        &[
            (json!({}), "token has no email claim"),
            (json!({"email": {"id": 1}}), "email claim is not a string"),
        ],
    );
}

#[test]
fn bad_config_is_refused_at_load_with_a_clear_reason() {
    let both = json!({"secret": SECRET, "public_key": RSA_PUBLIC});
    let cases = [
        (
            json!({}),
            "set `secret` (for HS256) or `public_key` (a PEM public key, for RS256 or ES256)",
        ),
        (
            both,
            "set only one of `secret` (HS256) and `public_key` (RS256, ES256), not both",
        ),
        (
            json!({"secret": ""}),
            "secret is empty (an unset environment variable?)",
        ),
        (
            json!({"public_key": RSA_PRIVATE}),
            "public_key holds a private key: give the public half (`openssl pkey -pubout`)",
        ),
        (
            json!({"public_key": "not a key"}),
            "public_key is not a PEM-encoded RSA or EC public key (expected -----BEGIN PUBLIC KEY-----)",
        ),
        (
            json!({"secret": SECRET, "algorithms": ["none"]}),
            "algorithms: \"none\" is not supported (supported: HS256, HS384, HS512, RS256, RS384, \
             RS512, PS256, PS384, PS512, ES256, ES384)",
        ),
        (
            json!({"secret": SECRET, "algorithms": ["RS256"]}),
            "algorithms: RS256 does not fit the configured secret (HS256, HS384, HS512)",
        ),
        (
            json!({"public_key": EC_PUBLIC, "algorithms": ["ES384"]}),
            "public_key is not a valid key for ES384 (ES256 needs a P-256 key, ES384 a P-384 key)",
        ),
        (
            json!({"secret": SECRET, "algorithms": []}),
            "algorithms is empty: no token could pass",
        ),
        (
            json!({"secret": SECRET, "realm": "a\"b"}),
            "realm \"a\\\"b\" may not contain '\"'",
        ),
        (
            json!({"secret": SECRET, "query_param": ""}),
            "query_param must not be empty",
        ),
    ];
    for (config, reason) in cases {
        assert_eq!(init_error(config.clone()), reason, "{config}");
    }
    let reason = init_error(json!({"secret": SECRET, "audiences": ["x"]}));
    assert!(
        reason.starts_with("invalid config: unknown field `audiences`"),
        "{reason}"
    );
    let reason = init_error(json!({"secret": SECRET, "leeway_seconds": -1}));
    assert!(
        reason.starts_with("invalid config: invalid value: integer `-1`"),
        "{reason}"
    );
}
