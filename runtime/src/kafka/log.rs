//! librdkafka's log lines and client errors, forwarded to `tracing`.
//!
//! rdkafka's default context logs through the `log` crate, which this process
//! does not collect; every context of ours forwards here instead.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};

/// How long a client error of one kind is DEBUG after its warning.
pub(crate) const REPEAT_WARNING: Duration = Duration::from_secs(60);

/// Logs one librdkafka line. `client` names the client (`consumer`,
/// `producer`, `embedded broker`), `owner` the pipeline or broker it serves.
pub(crate) fn forward(client: &str, owner: &str, level: RDKafkaLogLevel, fac: &str, line: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error
            if fac != "FAIL" =>
        {
            tracing::error!(target: "librdkafka", client, owner, fac, "{line}")
        }
        RDKafkaLogLevel::Warning => {
            tracing::warn!(target: "librdkafka", client, owner, fac, "{line}")
        }
        RDKafkaLogLevel::Notice => {
            tracing::info!(target: "librdkafka", client, owner, fac, "{line}")
        }
        // `FAIL` lines (connection failures) are also client errors, which
        // `ErrorLog` reports without the repeats.
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error
        | RDKafkaLogLevel::Info
        | RDKafkaLogLevel::Debug => {
            tracing::debug!(target: "librdkafka", client, owner, fac, "{line}")
        }
    }
}

/// What kind of failure a client error is, as the metrics and `/readyz`
/// name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// The brokers refused the credentials (SASL).
    Authentication,
    /// The TLS handshake failed (an untrusted or wrong certificate, ...).
    Tls,
    /// The broker speaks another protocol than `security.protocol` says
    /// (TLS to a plaintext listener or the reverse).
    ProtocolMismatch,
    /// The brokers cannot be reached.
    Transport,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Sorts an error by its code and librdkafka's words for it.
    pub fn of(error: &RdKafkaError, reason: &str) -> Self {
        let code = error.rdkafka_error_code();
        let reason = reason.to_ascii_lowercase();
        if [
            "security.protocol",
            "wrong version number",
            "plaintext broker",
            "ssl listener",
        ]
        .iter()
        .any(|words| reason.contains(words))
        {
            Self::ProtocolMismatch
        } else if matches!(
            code,
            Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed)
        ) || reason.contains("sasl authentication")
        {
            Self::Authentication
        } else if code == Some(RDKafkaErrorCode::SSL)
            // A refused or unverifiable certificate also comes as a
            // transport failure with OpenSSL's words in it.
            || ["ssl handshake", "ssl routines", "ssl alert", "certificate"]
                .iter()
                .any(|words| reason.contains(words))
        {
            Self::Tls
        } else if matches!(
            code,
            Some(RDKafkaErrorCode::BrokerTransportFailure | RDKafkaErrorCode::AllBrokersDown)
        ) {
            Self::Transport
        } else {
            Self::Other
        }
    }

    /// The label value (`authentication`, `tls`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authentication => "authentication",
            Self::Tls => "tls",
            Self::ProtocolMismatch => "protocol_mismatch",
            Self::Transport => "transport",
            Self::Other => "other",
        }
    }

    /// What to check, for the log line and `/readyz`.
    fn hint(self) -> &'static str {
        match self {
            Self::Authentication => {
                "the brokers refused the credentials: check `security` (mechanism, username, password or token)"
            }
            Self::Tls => {
                "the TLS handshake failed: check `security.ca` (or the system store), the broker's certificate and `cert`/`key`"
            }
            Self::ProtocolMismatch => {
                "the brokers speak another protocol: check `security.protocol` (ssl vs plaintext) against the listener"
            }
            Self::Transport => "the brokers cannot be reached",
            Self::Other => "Kafka client error",
        }
    }

    /// Whether the failure is in the configuration rather than the
    /// network: these lines are errors, not warnings.
    fn is_configuration(self) -> bool {
        matches!(
            self,
            Self::Authentication | Self::Tls | Self::ProtocolMismatch
        )
    }
}

/// Client errors (broker down, unknown topic, ...) repeat while the cause
/// lasts, often alternating (transport failure, all brokers down, ...): the
/// first of each kind in a failure streak is a warning, its repeats are
/// DEBUG (a warning again after [`REPEAT_WARNING`]), and the end of the
/// streak, when data flows again, is logged once.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    failing: AtomicBool,
    seen: Mutex<Vec<(String, Instant)>>,
    /// The failure of the current streak, for `/readyz`: the latest one,
    /// unless it only says the brokers are down after one that said why.
    problem: Mutex<Option<(ErrorKind, String)>>,
}

impl ErrorLog {
    /// Logs a client error; returns its kind.
    pub(crate) fn report(
        &self,
        client: &str,
        owner: &str,
        error: &RdKafkaError,
        reason: &str,
    ) -> ErrorKind {
        let class = ErrorKind::of(error, reason);
        let kind_label = class.as_str();
        {
            let mut problem = self.problem.lock().unwrap_or_else(|e| e.into_inner());
            let keep = problem
                .as_ref()
                .is_some_and(|(kind, _)| kind.is_configuration() && !class.is_configuration());
            if !keep {
                *problem = Some((class, format!("{}: {reason}", class.hint())));
            }
        }
        // Keyed by code: the same failure reaches us as a client error and
        // as a polling error, with different wording.
        let kind = match error.rdkafka_error_code() {
            Some(code) => format!("{code:?}"),
            None => error.to_string(),
        };
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match seen.iter_mut().find(|(known, _)| *known == kind) {
            Some((_, warned)) if now.duration_since(*warned) < REPEAT_WARNING => {
                tracing::debug!(client, owner, kind = kind_label, %error, reason, "Kafka client error (repeated).");
            }
            known => {
                if class.is_configuration() {
                    tracing::error!(client, owner, kind = kind_label, %error, reason,
                        "{}; librdkafka keeps retrying, the admin API's GET /health says why.", class.hint());
                } else {
                    tracing::warn!(client, owner, kind = kind_label, %error, reason, "Kafka client error; librdkafka keeps retrying.");
                }
                match known {
                    Some((_, warned)) => *warned = now,
                    None => seen.push((kind, now)),
                }
            }
        }
        self.failing.store(true, Ordering::Release);
        class
    }

    /// A protocol mismatch found outside librdkafka (which reports it only
    /// as "all brokers are down"): the streak's problem from now on.
    pub(crate) fn protocol_mismatch(&self, reason: &str) {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((ErrorKind::ProtocolMismatch, reason.to_owned()));
        self.failing.store(true, Ordering::Release);
    }

    /// Whether the current streak's failure is one of configuration.
    pub(crate) fn misconfigured(&self) -> bool {
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|(kind, _)| kind.is_configuration())
    }

    /// The latest failure, while the client is failing.
    pub(crate) fn problem(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(_, text)| text.clone())
    }

    /// The client works again (it received or delivered something).
    pub(crate) fn recovered(&self, client: &str, owner: &str) {
        if !self.failing.swap(false, Ordering::AcqRel) {
            return;
        }
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.is_empty() {
            let kinds: Vec<&str> = seen.iter().map(|(kind, _)| kind.as_str()).collect();
            tracing::info!(client, owner, errors = %kinds.join(", "), "Kafka client works again.");
            seen.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(code: RDKafkaErrorCode, reason: &str) -> ErrorKind {
        ErrorKind::of(&RdKafkaError::Global(code), reason)
    }

    #[test]
    fn failures_are_sorted_by_code_and_words() {
        assert_eq!(
            kind(
                RDKafkaErrorCode::Authentication,
                "SASL authentication error: Authentication failed"
            ),
            ErrorKind::Authentication
        );
        assert_eq!(
            kind(
                RDKafkaErrorCode::SSL,
                "SSL handshake failed: certificate verify failed"
            ),
            ErrorKind::Tls
        );
        assert_eq!(
            kind(
                RDKafkaErrorCode::BrokerTransportFailure,
                "Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration (connecting to a SSL listener?)"
            ),
            ErrorKind::ProtocolMismatch
        );
        assert_eq!(
            kind(
                RDKafkaErrorCode::SSL,
                "SSL handshake failed: error:0A00010B:SSL routines::wrong version number"
            ),
            ErrorKind::ProtocolMismatch
        );
        assert_eq!(
            kind(RDKafkaErrorCode::AllBrokersDown, "2/2 brokers are down"),
            ErrorKind::Transport
        );
    }

    #[test]
    fn the_problem_lasts_until_the_client_works_again() {
        let log = ErrorLog::default();
        assert_eq!(log.problem(), None);
        let error = RdKafkaError::Global(RDKafkaErrorCode::Authentication);
        assert_eq!(
            log.report("consumer", "p", &error, "bad password"),
            ErrorKind::Authentication
        );
        let problem = log.problem().unwrap();
        assert!(
            problem.contains("refused the credentials") && problem.ends_with("bad password"),
            "{problem}"
        );
        log.recovered("consumer", "p");
        assert_eq!(log.problem(), None);
    }

    #[test]
    fn a_refused_client_certificate_is_a_tls_failure() {
        assert_eq!(
            kind(
                RDKafkaErrorCode::BrokerTransportFailure,
                "Receive failed: error:0A00045C:SSL routines::tlsv13 alert certificate required"
            ),
            ErrorKind::Tls
        );
    }

    #[test]
    fn the_cause_outlives_the_brokers_down_that_follows_it() {
        let log = ErrorLog::default();
        let tls = RdKafkaError::Global(RDKafkaErrorCode::SSL);
        let down = RdKafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        log.report(
            "consumer",
            "p",
            &tls,
            "SSL handshake failed: certificate verify failed",
        );
        log.report("consumer", "p", &down, "1/1 brokers are down");
        assert!(log.problem().unwrap().contains("certificate verify failed"));
        assert!(log.misconfigured());
        log.recovered("consumer", "p");
        log.report("consumer", "p", &down, "1/1 brokers are down");
        assert!(
            log.problem().unwrap().contains("cannot be reached"),
            "a new streak"
        );
        assert!(!log.misconfigured());
    }
}
