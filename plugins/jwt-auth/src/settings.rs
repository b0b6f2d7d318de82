//! The plugin's config, checked and turned into a key and a validation.

use std::collections::HashSet;
use std::str::FromStr;

use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use sluice_sdk::Config;

/// Algorithm names the plugin accepts in `algorithms`.
const SUPPORTED: &str =
    "HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    secret: Option<String>,
    public_key: Option<String>,
    algorithms: Option<Vec<String>>,
    issuer: Option<String>,
    audience: Option<String>,
    #[serde(default = "default_leeway")]
    leeway_seconds: u32,
    #[serde(default = "default_true")]
    require_exp: bool,
    query_param: Option<String>,
    #[serde(default = "default_principal_claim")]
    principal_claim: String,
    #[serde(default = "default_channels_claim")]
    channels_claim: String,
    #[serde(default = "default_realm")]
    realm: String,
}

fn default_leeway() -> u32 {
    30
}
fn default_true() -> bool {
    true
}
fn default_principal_claim() -> String {
    "sub".into()
}
fn default_channels_claim() -> String {
    "channels".into()
}
fn default_realm() -> String {
    "sluice".into()
}

/// Everything `authenticate` needs, built once by `init`.
pub struct Checks {
    pub key: DecodingKey,
    /// The allow-list, as the names tokens carry in their `alg`.
    pub algorithms: Vec<&'static str>,
    /// Signature, algorithm, `iss` and `aud` (time is checked separately).
    pub validation: Validation,
    pub leeway_seconds: f64,
    pub require_exp: bool,
    pub query_param: Option<String>,
    pub principal_claim: String,
    pub channels_claim: String,
    /// `Bearer realm="..."`.
    pub challenge: String,
}

pub fn load(config: &Config) -> Result<Checks, String> {
    let settings: Settings = config.parse()?;
    let key = match (settings.secret, settings.public_key) {
        (Some(secret), None) => {
            if secret.is_empty() {
                return Err("secret is empty (an unset environment variable?)".into());
            }
            if secret.len() < 32 {
                sluice_sdk::log::warn(&format!(
                    "jwt-auth: secret is {} bytes; RFC 7518 asks for at least 32 for HS256",
                    secret.len()
                ));
            }
            DecodingKey::from_secret(secret.as_bytes())
        }
        (None, Some(pem)) => public_key(&pem)?,
        (Some(_), Some(_)) => {
            return Err(
                "set only one of `secret` (HS256) and `public_key` (RS256, ES256), not both".into(),
            );
        }
        (None, None) => {
            return Err(
                "set `secret` (for HS256) or `public_key` (a PEM public key, for RS256 or ES256)"
                    .into(),
            );
        }
    };
    let family = key.family();
    let names = settings
        .algorithms
        .unwrap_or_else(|| vec![default_algorithm(family).into()]);
    if names.is_empty() {
        return Err("algorithms is empty: no token could pass".into());
    }
    let mut algorithms = Vec::with_capacity(names.len());
    let mut allowed = Vec::with_capacity(names.len());
    for name in &names {
        let (algorithm, name) = parse_algorithm(name)?;
        if algorithm.family() != family {
            return Err(format!(
                "algorithms: {name} does not fit the configured {}",
                key_kind(family)
            ));
        }
        if family == AlgorithmFamily::Ec
            && jsonwebtoken::crypto::verify("", b"", &key, algorithm).is_err()
        {
            return Err(format!(
                "public_key is not a valid key for {name} (ES256 needs a P-256 key, ES384 a P-384 key)"
            ));
        }
        algorithms.push(algorithm);
        allowed.push(name);
    }

    let mut validation = Validation::new(algorithms[0]);
    validation.algorithms = algorithms;
    // exp and nbf are checked against the host's clock by the plugin.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.required_spec_claims = HashSet::new();
    if let Some(issuer) = &settings.issuer {
        validation.set_issuer(&[issuer]);
        validation.required_spec_claims.insert("iss".into());
    }
    // Without an audience, jsonwebtoken refuses every token that has `aud`.
    if let Some(audience) = &settings.audience {
        validation.set_audience(&[audience]);
        validation.required_spec_claims.insert("aud".into());
    }

    header_safe("realm", &settings.realm)?;
    header_safe("principal_claim", &settings.principal_claim)?;
    header_safe("channels_claim", &settings.channels_claim)?;
    if settings.query_param.as_deref() == Some("") {
        return Err("query_param must not be empty".into());
    }
    Ok(Checks {
        key,
        algorithms: allowed,
        validation,
        leeway_seconds: f64::from(settings.leeway_seconds),
        require_exp: settings.require_exp,
        query_param: settings.query_param,
        principal_claim: settings.principal_claim,
        channels_claim: settings.channels_claim,
        challenge: format!("Bearer realm=\"{}\"", settings.realm),
    })
}

/// An RSA or EC public key in PEM (SPKI `PUBLIC KEY`, or PKCS#1 `RSA
/// PUBLIC KEY`).
fn public_key(pem: &str) -> Result<DecodingKey, String> {
    if pem.contains("PRIVATE KEY") {
        return Err(
            "public_key holds a private key: give the public half (`openssl pkey -pubout`)".into(),
        );
    }
    DecodingKey::from_rsa_pem(pem.as_bytes())
        .or_else(|_| DecodingKey::from_ec_pem(pem.as_bytes()))
        .map_err(|_| {
            "public_key is not a PEM-encoded RSA or EC public key \
             (expected -----BEGIN PUBLIC KEY-----)"
                .to_owned()
        })
}

/// The algorithm and its canonical name, from a name in the config.
fn parse_algorithm(name: &str) -> Result<(Algorithm, &'static str), String> {
    let known = SUPPORTED.split(", ").find(|s| *s == name);
    match (known, Algorithm::from_str(name)) {
        (Some(known), Ok(algorithm)) => Ok((algorithm, known)),
        _ => Err(format!(
            "algorithms: {name:?} is not supported (supported: {SUPPORTED})"
        )),
    }
}

fn default_algorithm(family: AlgorithmFamily) -> &'static str {
    match family {
        AlgorithmFamily::Rsa => "RS256",
        AlgorithmFamily::Ec => "ES256",
        _ => "HS256",
    }
}

fn key_kind(family: AlgorithmFamily) -> &'static str {
    match family {
        AlgorithmFamily::Rsa => "RSA public_key (RS256, RS384, RS512, PS256, PS384, PS512)",
        AlgorithmFamily::Ec => "EC public_key (ES256, ES384)",
        _ => "secret (HS256, HS384, HS512)",
    }
}

/// Values that end up in the `www-authenticate` header must not break its
/// quoting.
fn header_safe(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    match value
        .chars()
        .find(|&c| c == '"' || c == '\\' || c.is_control())
    {
        Some(c) => Err(format!("{field} {value:?} may not contain {c:?}")),
        None => Ok(()),
    }
}
