//! `jwt-auth`: lets a WebSocket in when its upgrade request carries a valid
//! JSON Web Token, as `authorization: Bearer <token>` or (if configured) a
//! query parameter.
//!
//! Config (one of `secret` and `public_key` is required):
//! - `secret = { env = "JWT_SECRET" }`: the HMAC secret (HS256 by default).
//! - `public_key = """-----BEGIN PUBLIC KEY-----..."""`: a PEM public key;
//!   an RSA key means RS256 by default, an EC P-256 key ES256.
//! - `algorithms = ["RS256"]`: the allow-list (default: the one above). All
//!   must fit the key: HS256/384/512 for a secret, RS256/384/512 and
//!   PS256/384/512 for an RSA key, ES256 (P-256) or ES384 (P-384) for an EC
//!   key. A token whose `alg` is not listed (`none` never is) is refused.
//! - `issuer = "https://issuer.example"`: `iss` must be present and equal.
//! - `audience = "sluice"`: `aud` (a string, or an array containing it)
//!   must be present and match. Without it, tokens that name any audience
//!   are refused (RFC 7519: a token with an audience is only for it).
//! - `leeway_seconds = 30` (the default): clock skew allowed for `exp`/`nbf`.
//! - `require_exp = true` (the default): refuse tokens without `exp`.
//! - `query_param = "token"`: also take the token from this query parameter
//!   when there is no `Bearer` authorization header (browsers cannot set
//!   headers on a WebSocket).
//! - `principal_claim = "sub"` (the default): the claim (a string or a
//!   number) that becomes the principal's id.
//! - `channels_claim = "channels"` (the default): the claim listing the
//!   channels the principal may subscribe to, an array of strings. A token
//!   without it may subscribe to any; one where it is anything else is
//!   refused.
//! - `realm = "sluice"` (the default): the realm of the challenge.
//!
//! Time comes from the host's clock. The whole claims object becomes the
//! principal's claims.
//!
//! Without a token the answer is 401 with `www-authenticate: Bearer
//! realm="sluice"` and reason `missing bearer token`. A token that fails a
//! check gets 401 with `Bearer realm="sluice", error="invalid_token",
//! error_description="<reason>"`, the reason (also the body) naming the
//! check: `malformed token`, `algorithm none is not allowed`, `bad
//! signature`, `wrong issuer`, `wrong audience`, `token has no aud claim`,
//! `token expired`, `token not yet valid`, `exp claim is not a number`,
//! `token has no sub claim`, `channels claim is not an array of channel
//! names`, ...

mod settings;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use serde_json::{Map, Value};
use sluice_sdk::{Authenticator, Config, Decision, Handshake, Principal, headers};

use settings::Checks;

struct JwtAuth(Checks);

impl Authenticator for JwtAuth {
    fn new(config: &Config) -> Result<Self, String> {
        settings::load(config).map(JwtAuth)
    }

    fn authenticate(&mut self, request: Handshake) -> Decision {
        let checks = &self.0;
        let from_header = headers::find(&request.headers, "authorization")
            .and_then(headers::parse_bearer)
            .map(str::to_owned);
        let from_query = || {
            checks
                .query_param
                .as_deref()
                .and_then(|name| request.query_param(name))
        };
        let Some(token) = from_header.or_else(from_query) else {
            return Decision::unauthorized(&checks.challenge, "missing bearer token");
        };
        match self.verify(&token) {
            Ok(principal) => Decision::allow(principal),
            Err(reason) => {
                let challenge = format!(
                    "{}, error=\"invalid_token\", error_description=\"{reason}\"",
                    checks.challenge
                );
                Decision::unauthorized(&challenge, reason)
            }
        }
    }
}

impl JwtAuth {
    /// Checks a token; the error is a reason safe to quote in a header.
    fn verify(&self, token: &str) -> Result<Principal, String> {
        let checks = &self.0;
        let alg = header_alg(token).ok_or("malformed token")?;
        if !checks.algorithms.contains(&alg.as_str()) {
            // Only a short alphanumeric rendering: the reason is quoted in a header.
            let shown: String = alg
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(16)
                .collect();
            return Err(if shown.is_empty() {
                "algorithm is not allowed".to_owned()
            } else {
                format!("algorithm {shown} is not allowed")
            });
        }
        let claims =
            jsonwebtoken::decode::<Map<String, Value>>(token, &checks.key, &checks.validation)
                .map_err(|e| reason(e.kind()))?
                .claims;
        self.check_time(&claims)?;
        let id = match claims.get(&checks.principal_claim) {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(format!("{} claim is not a string", checks.principal_claim)),
            None => return Err(format!("token has no {} claim", checks.principal_claim)),
        };
        let channels = match claims.get(&checks.channels_claim) {
            None => None,
            Some(value) => Some(channel_list(value).ok_or_else(|| {
                format!(
                    "{} claim is not an array of channel names",
                    checks.channels_claim
                )
            })?),
        };
        Ok(Principal {
            id,
            claims: Value::Object(claims).to_string(),
            channels,
        })
    }

    fn check_time(&self, claims: &Map<String, Value>) -> Result<(), String> {
        let checks = &self.0;
        let now = sluice_sdk::log::now_ms() as f64 / 1000.0;
        match claims.get("exp") {
            None if checks.require_exp => return Err("token has no exp claim".into()),
            None => {}
            Some(exp) => {
                let exp = exp.as_f64().ok_or("exp claim is not a number")?;
                if exp + checks.leeway_seconds < now {
                    return Err("token expired".into());
                }
            }
        }
        if let Some(nbf) = claims.get("nbf") {
            let nbf = nbf.as_f64().ok_or("nbf claim is not a number")?;
            if nbf > now + checks.leeway_seconds {
                return Err("token not yet valid".into());
            }
        }
        Ok(())
    }
}

/// The `alg` of a token's header, read before anything is trusted so that
/// an algorithm the library does not even know (`none`) gets a clear reason.
fn header_alg(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (header, _, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(header).ok()?;
    let header: Map<String, Value> = serde_json::from_slice(&bytes).ok()?;
    header.get("alg")?.as_str().map(str::to_owned)
}

/// What failed, in words (only library-defined text: header-safe).
fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "bad signature".into(),
        ErrorKind::InvalidAlgorithm => "algorithm is not allowed".into(),
        ErrorKind::InvalidIssuer => "wrong issuer".into(),
        ErrorKind::InvalidAudience => "wrong audience".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("token has no {claim} claim"),
        ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidKeyFormat => {
            sluice_sdk::log::warn("jwt-auth: the configured public_key could not verify a token");
            "token cannot be verified with the configured key".into()
        }
        _ => "malformed token".into(),
    }
}

/// An array of valid channel names.
fn channel_list(value: &Value) -> Option<Vec<String>> {
    let items = value.as_array()?;
    items
        .iter()
        .map(|item| {
            let name = item.as_str()?;
            sluice_sdk::channel::validate(name).ok()?;
            Some(name.to_owned())
        })
        .collect()
}

sluice_sdk::export_authenticator!(JwtAuth);
