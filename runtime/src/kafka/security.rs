//! A cluster's `security` and `compression` as librdkafka properties, and
//! the OAUTHBEARER tokens the host hands to librdkafka.
//!
//! Tokens come from a [`TokenProvider`]: [`StaticToken`] serves one from
//! the pipeline file (usually `{ env = ... }`); an OIDC or cloud-IAM
//! provider is another implementation, set with
//! [`super::ClientSettings::with_token_provider`], and no consumer or
//! producer code changes.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::client::OAuthToken;

use crate::config::{Compression, Sasl, SaslMechanism, Secret, Security, SecurityProtocol};

/// How long a static token is handed out for; librdkafka asks again at
/// about 80% of it, and gets the same token with a new lifetime.
pub const STATIC_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Supplies OAUTHBEARER tokens. Called on librdkafka's polling threads
/// when a client starts and before its token expires; a slow provider
/// delays only that client's (re)authentication.
pub trait TokenProvider: Send + Sync + 'static {
    /// A token, the principal it names, and when it expires.
    fn token(&self) -> Result<BearerToken, String>;
}

/// An OAUTHBEARER token.
#[derive(Clone)]
pub struct BearerToken {
    /// The token itself.
    pub token: Secret,
    /// The Kafka principal it names.
    pub principal: String,
    /// When it stops being valid.
    pub expires: SystemTime,
}

impl BearerToken {
    /// The form rdkafka's context hands to librdkafka.
    pub(crate) fn into_oauth(self) -> OAuthToken {
        let lifetime_ms = self
            .expires
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        OAuthToken {
            token: self.token.expose().to_owned(),
            principal_name: self.principal,
            lifetime_ms,
        }
    }
}

/// One token from the configuration, handed out again at every refresh.
pub struct StaticToken {
    token: Secret,
    principal: String,
}

impl StaticToken {
    /// A provider of `token` for `principal`.
    pub fn new(token: Secret, principal: impl Into<String>) -> Self {
        Self {
            token,
            principal: principal.into(),
        }
    }
}

impl TokenProvider for StaticToken {
    fn token(&self) -> Result<BearerToken, String> {
        Ok(BearerToken {
            token: self.token.clone(),
            principal: self.principal.clone(),
            expires: SystemTime::now() + STATIC_TOKEN_LIFETIME,
        })
    }
}

/// What a client context answers librdkafka's token refresh with.
pub(crate) fn refresh(
    provider: Option<&Arc<dyn TokenProvider>>,
) -> Result<OAuthToken, Box<dyn std::error::Error>> {
    let provider = provider.ok_or("OAUTHBEARER needs `security.token` or a token provider")?;
    Ok(provider.token()?.into_oauth())
}

/// The token provider `security` asks for, if it uses OAUTHBEARER.
pub(super) fn token_provider(security: Option<&Security>) -> Option<Arc<dyn TokenProvider>> {
    match security?.sasl.as_ref()? {
        Sasl::OAuthBearer { token, principal } => {
            Some(Arc::new(StaticToken::new(token.clone(), principal.clone())))
        }
        Sasl::Password { .. } => None,
    }
}

/// librdkafka properties for `security` (applied before the file's own
/// `properties`, which win).
pub(super) fn properties(security: &Security) -> Vec<(&'static str, String)> {
    let protocol = match security.protocol {
        SecurityProtocol::Plaintext => "plaintext",
        SecurityProtocol::Ssl => "ssl",
        SecurityProtocol::SaslPlaintext => "sasl_plaintext",
        SecurityProtocol::SaslSsl => "sasl_ssl",
    };
    let mut properties = vec![("security.protocol", protocol.to_owned())];
    match &security.sasl {
        Some(Sasl::Password {
            mechanism,
            username,
            password,
        }) => {
            let mechanism = match mechanism {
                SaslMechanism::Plain => "PLAIN",
                SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
                SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
                SaslMechanism::Oauthbearer => "OAUTHBEARER",
            };
            properties.push(("sasl.mechanism", mechanism.to_owned()));
            properties.push(("sasl.username", username.clone()));
            properties.push(("sasl.password", password.expose().to_owned()));
        }
        Some(Sasl::OAuthBearer { .. }) => {
            properties.push(("sasl.mechanism", "OAUTHBEARER".to_owned()));
        }
        None => {}
    }
    if let Some(tls) = &security.tls {
        let ca = match &tls.ca {
            Some(path) => path.display().to_string(),
            // librdkafka looks in the usual system locations.
            None => "probe".to_owned(),
        };
        properties.push(("ssl.ca.location", ca));
        if let Some((cert, key)) = &tls.client {
            properties.push(("ssl.certificate.location", cert.display().to_string()));
            properties.push(("ssl.key.location", key.display().to_string()));
        }
        if let Some(password) = &tls.key_password {
            properties.push(("ssl.key.password", password.expose().to_owned()));
        }
        let identification = if tls.verify_hostname { "https" } else { "none" };
        properties.push((
            "ssl.endpoint.identification.algorithm",
            identification.to_owned(),
        ));
    }
    properties
}

/// The producer property for `compression`.
pub(super) fn compression_property(compression: Compression) -> (&'static str, String) {
    ("compression.codec", compression.codec().to_owned())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::KafkaTls;

    fn get<'a>(properties: &'a [(&str, String)], key: &str) -> Option<&'a str> {
        properties
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn scram_over_tls_with_a_ca_file_and_a_client_certificate() {
        let security = Security {
            protocol: SecurityProtocol::SaslSsl,
            sasl: Some(Sasl::Password {
                mechanism: SaslMechanism::ScramSha512,
                username: "sluice".into(),
                password: Secret::new("pw"),
            }),
            tls: Some(KafkaTls {
                ca: Some(PathBuf::from("/certs/ca.pem")),
                client: Some(("/certs/c.pem".into(), "/certs/k.pem".into())),
                key_password: None,
                verify_hostname: true,
            }),
        };
        let p = properties(&security);
        assert_eq!(get(&p, "security.protocol"), Some("sasl_ssl"));
        assert_eq!(get(&p, "sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(get(&p, "sasl.username"), Some("sluice"));
        assert_eq!(get(&p, "sasl.password"), Some("pw"));
        assert_eq!(get(&p, "ssl.ca.location"), Some("/certs/ca.pem"));
        assert_eq!(get(&p, "ssl.certificate.location"), Some("/certs/c.pem"));
        assert_eq!(get(&p, "ssl.key.location"), Some("/certs/k.pem"));
        assert_eq!(
            get(&p, "ssl.endpoint.identification.algorithm"),
            Some("https")
        );
        assert_eq!(get(&p, "ssl.key.password"), None);
    }

    #[test]
    fn plain_sasl_without_tls_sets_no_tls_property() {
        let security = Security {
            protocol: SecurityProtocol::SaslPlaintext,
            sasl: Some(Sasl::Password {
                mechanism: SaslMechanism::Plain,
                username: "u".into(),
                password: Secret::new("p"),
            }),
            tls: None,
        };
        let p = properties(&security);
        assert_eq!(get(&p, "security.protocol"), Some("sasl_plaintext"));
        assert_eq!(get(&p, "sasl.mechanism"), Some("PLAIN"));
        assert!(p.iter().all(|(k, _)| !k.starts_with("ssl.")));
    }

    #[test]
    fn system_store_and_no_hostname_check_when_asked() {
        let security = Security {
            protocol: SecurityProtocol::Ssl,
            sasl: None,
            tls: Some(KafkaTls {
                ca: None,
                client: None,
                key_password: Some(Secret::new("kp")),
                verify_hostname: false,
            }),
        };
        let p = properties(&security);
        assert_eq!(get(&p, "ssl.ca.location"), Some("probe"));
        assert_eq!(get(&p, "ssl.key.password"), Some("kp"));
        assert_eq!(
            get(&p, "ssl.endpoint.identification.algorithm"),
            Some("none")
        );
        assert_eq!(get(&p, "sasl.mechanism"), None);
    }

    #[test]
    fn oauthbearer_sets_the_mechanism_and_a_static_token_provider() {
        let security = Security {
            protocol: SecurityProtocol::SaslSsl,
            sasl: Some(Sasl::OAuthBearer {
                token: Secret::new("eyJ.token"),
                principal: "svc".into(),
            }),
            tls: Some(KafkaTls {
                ca: None,
                client: None,
                key_password: None,
                verify_hostname: true,
            }),
        };
        let p = properties(&security);
        assert_eq!(get(&p, "sasl.mechanism"), Some("OAUTHBEARER"));
        assert_eq!(get(&p, "sasl.password"), None);
        let provider = token_provider(Some(&security)).expect("a provider");
        let before = SystemTime::now();
        let token = provider.token().unwrap().into_oauth();
        assert_eq!(token.token, "eyJ.token");
        assert_eq!(token.principal_name, "svc");
        let expires = UNIX_EPOCH + Duration::from_millis(token.lifetime_ms as u64);
        assert!(expires >= before + STATIC_TOKEN_LIFETIME - Duration::from_secs(1));
        assert!(token_provider(None).is_none());
    }
}
