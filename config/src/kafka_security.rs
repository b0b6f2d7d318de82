//! `security = { ... }` and `compression = "..."` of `[kafka]` and of a
//! tenant's `kafka`: how Sluice reaches a secured cluster and compresses
//! what it produces, as typed keys (checked here) rather than raw
//! librdkafka properties. `kafka::security` maps them onto properties.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_spanned::Spanned;

use super::diagnostics::{Problem, Report};
use super::secret::Secret;

/// `security = { protocol = "sasl_ssl", mechanism = "scram-sha-512", ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityDef {
    /// `protocol = "sasl_ssl"`: `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl` (absent:
    /// `sasl_ssl` with a `mechanism`, `ssl` without)
    pub protocol: Option<Spanned<SecurityProtocol>>,
    /// `mechanism = "scram-sha-512"`: `plain`, `scram-sha-256`, `scram-sha-512` or `oauthbearer`
    pub mechanism: Option<Spanned<SaslMechanism>>,
    /// `username = "sluice"` (or `{ env = "KAFKA_USERNAME" }`): for `plain` and `scram-*`
    pub username: Option<Spanned<String>>,
    /// `password = { env = "KAFKA_PASSWORD" }`: for `plain` and `scram-*`
    pub password: Option<Spanned<String>>,
    /// `token = { env = "KAFKA_TOKEN" }`: the OAUTHBEARER token Sluice hands to the brokers
    pub token: Option<Spanned<String>>,
    /// `principal = "sluice"`: the OAUTHBEARER principal name (default `sluice`)
    pub principal: Option<Spanned<String>>,
    /// `ca = "certs/kafka-ca.pem"`: the CA certificates that vouch for the brokers (PEM;
    /// absent: the system's trust store)
    pub ca: Option<Spanned<String>>,
    /// `cert = "certs/client.pem"`: a client certificate chain for mutual TLS (PEM; needs `key`)
    pub cert: Option<Spanned<String>>,
    /// `key = "certs/client-key.pem"`: the client certificate's private key (PEM; needs `cert`)
    pub key: Option<Spanned<String>>,
    /// `key_password = { env = "KAFKA_KEY_PASSWORD" }`: if the private key is encrypted
    pub key_password: Option<Spanned<String>>,
    /// `verify_hostname = true`: the broker's certificate must name the host connected to
    /// (default true)
    pub verify_hostname: Option<Spanned<bool>>,
}

/// `security.protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// No TLS, no SASL.
    Plaintext,
    /// TLS, no SASL.
    Ssl,
    /// SASL without TLS.
    SaslPlaintext,
    /// SASL over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether the connection is TLS.
    pub fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    /// Whether the client authenticates with SASL.
    pub fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// `sasl.mechanism`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SaslMechanism {
    /// `PLAIN`: username and password (use it over TLS only).
    #[serde(rename = "plain")]
    Plain,
    /// `SCRAM-SHA-256`.
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// `SCRAM-SHA-512`.
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    /// `OAUTHBEARER` with a token the host supplies.
    #[serde(rename = "oauthbearer")]
    Oauthbearer,
}

/// `compression = "zstd"`: how Sluice's producers (sinks, handler
/// publishes, dead letters, `sluice produce`) compress record batches.
/// Consumers read every codec whatever this says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Uncompressed.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// Snappy.
    Snappy,
    /// LZ4.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// librdkafka's name for it (`compression.codec`).
    pub fn codec(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Gzip => "gzip",
            Self::Snappy => "snappy",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }
}

/// Checked security settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Security {
    /// The protocol.
    pub protocol: SecurityProtocol,
    /// How the client authenticates, with a SASL protocol.
    pub sasl: Option<Sasl>,
    /// TLS settings, with a TLS protocol.
    pub tls: Option<KafkaTls>,
}

/// SASL credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sasl {
    /// `PLAIN` or `SCRAM-*`: a username and a password.
    Password {
        /// Which mechanism.
        mechanism: SaslMechanism,
        /// The user.
        username: String,
        /// The password.
        password: Secret,
    },
    /// `OAUTHBEARER`: a token and the principal it names.
    OAuthBearer {
        /// The token.
        token: Secret,
        /// The principal.
        principal: String,
    },
}

/// TLS to the brokers (paths resolved against the pipeline file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaTls {
    /// CA certificates; `None`: the system's store.
    pub ca: Option<PathBuf>,
    /// A client certificate and its key, for mutual TLS.
    pub client: Option<(PathBuf, PathBuf)>,
    /// The password of an encrypted key.
    pub key_password: Option<Secret>,
    /// Whether the broker's certificate must name its host.
    pub verify_hostname: bool,
}

/// Checks `security`; `None` if anything is wrong (each problem reported).
pub(super) fn check(
    def: &Spanned<SecurityDef>,
    base: &Path,
    report: &mut Report<'_>,
) -> Option<Security> {
    let span = def.span();
    let def = def.get_ref();
    let mut ok = true;
    let mut fail = |span: std::ops::Range<usize>, message: String, report: &mut Report<'_>| {
        report.error(span, Problem::Invalid(message));
        ok = false;
    };
    let protocol = match (&def.protocol, &def.mechanism) {
        (Some(p), _) => *p.get_ref(),
        (None, Some(_)) => SecurityProtocol::SaslSsl,
        (None, None) => SecurityProtocol::Ssl,
    };
    let protocol_span = def.protocol.as_ref().map_or(span.clone(), Spanned::span);

    let sasl = match (protocol.sasl(), &def.mechanism) {
        (true, None) => {
            let message = "a SASL protocol needs a `mechanism`: plain, scram-sha-256, scram-sha-512 or oauthbearer";
            fail(protocol_span.clone(), message.to_owned(), report);
            None
        }
        (false, Some(m)) => {
            let message =
                "`mechanism` needs protocol `sasl_ssl` or `sasl_plaintext` (or no `protocol`)";
            fail(m.span(), message.to_owned(), report);
            None
        }
        (false, None) => None,
        (true, Some(m)) => match *m.get_ref() {
            SaslMechanism::Oauthbearer => {
                for (key, given) in [("username", &def.username), ("password", &def.password)] {
                    if let Some(given) = given {
                        let message =
                            format!("`{key}` is not used by `oauthbearer` (it takes `token`)");
                        fail(given.span(), message, report);
                    }
                }
                match &def.token {
                    Some(token) => Some(Sasl::OAuthBearer {
                        token: Secret::new(token.get_ref().clone()),
                        principal: def
                            .principal
                            .as_ref()
                            .map_or_else(|| "sluice".to_owned(), |p| p.get_ref().clone()),
                    }),
                    None => {
                        let message = "`oauthbearer` needs a `token` (e.g. `token = { env = \"KAFKA_TOKEN\" }`)";
                        fail(m.span(), message.to_owned(), report);
                        None
                    }
                }
            }
            mechanism => {
                for (key, given) in [("token", &def.token), ("principal", &def.principal)] {
                    if let Some(given) = given {
                        let message = format!("`{key}` is only used by `oauthbearer`");
                        fail(given.span(), message, report);
                    }
                }
                match (&def.username, &def.password) {
                    (Some(username), Some(password)) => Some(Sasl::Password {
                        mechanism,
                        username: username.get_ref().clone(),
                        password: Secret::new(password.get_ref().clone()),
                    }),
                    _ => {
                        let message = "this mechanism needs `username` and `password`";
                        fail(m.span(), message.to_owned(), report);
                        None
                    }
                }
            }
        },
    };

    let tls = if protocol.tls() {
        let mut file = |path: &Spanned<String>, what: &str, report: &mut Report<'_>| {
            let resolved = base.join(path.get_ref());
            if !resolved.is_file() {
                let message = format!(
                    "Kafka TLS {what} file `{}` does not exist",
                    resolved.display()
                );
                fail(path.span(), message, report);
            }
            resolved
        };
        let ca = def.ca.as_ref().map(|ca| file(ca, "CA", report));
        let client = match (&def.cert, &def.key) {
            (Some(cert), Some(key)) => {
                Some((file(cert, "certificate", report), file(key, "key", report)))
            }
            (Some(only), None) | (None, Some(only)) => {
                let message = "a client certificate needs both `cert` and `key`";
                fail(only.span(), message.to_owned(), report);
                None
            }
            (None, None) => None,
        };
        if let (Some(password), None) = (&def.key_password, &def.key) {
            fail(
                password.span(),
                "`key_password` needs `key`".to_owned(),
                report,
            );
        }
        Some(KafkaTls {
            ca,
            client,
            key_password: def
                .key_password
                .as_ref()
                .map(|p| Secret::new(p.get_ref().clone())),
            verify_hostname: def.verify_hostname.as_ref().is_none_or(|v| *v.get_ref()),
        })
    } else {
        let tls_keys = [
            ("ca", def.ca.as_ref().map(Spanned::span)),
            ("cert", def.cert.as_ref().map(Spanned::span)),
            ("key", def.key.as_ref().map(Spanned::span)),
            ("key_password", def.key_password.as_ref().map(Spanned::span)),
            (
                "verify_hostname",
                def.verify_hostname.as_ref().map(Spanned::span),
            ),
        ];
        for (key, given) in tls_keys {
            if let Some(given) = given {
                let message = format!("`{key}` needs a TLS protocol: `ssl` or `sasl_ssl`");
                fail(given, message, report);
            }
        }
        None
    };
    ok.then_some(Security {
        protocol,
        sasl,
        tls,
    })
}
