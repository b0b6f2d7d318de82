//! librdkafka's log lines and client errors, forwarded to `tracing`.
//!
//! rdkafka's default context logs through the `log` crate, which this process
//! does not collect; every context of ours forwards here instead.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError as RdKafkaError;

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

/// Client errors (broker down, unknown topic, ...) repeat while the cause
/// lasts, often alternating (transport failure, all brokers down, ...): the
/// first of each kind in a failure streak is a warning, its repeats are
/// DEBUG (a warning again after [`REPEAT_WARNING`]), and the end of the
/// streak, when data flows again, is logged once.
#[derive(Debug, Default)]
pub(crate) struct ErrorLog {
    failing: AtomicBool,
    seen: Mutex<Vec<(String, Instant)>>,
}

impl ErrorLog {
    /// Logs a client error.
    pub(crate) fn report(&self, client: &str, owner: &str, error: &RdKafkaError, reason: &str) {
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
                tracing::debug!(client, owner, %error, reason, "Kafka client error (repeated).");
            }
            known => {
                tracing::warn!(client, owner, %error, reason, "Kafka client error; librdkafka keeps retrying.");
                match known {
                    Some((_, warned)) => *warned = now,
                    None => seen.push((kind, now)),
                }
            }
        }
        self.failing.store(true, Ordering::Release);
    }

    /// The client works again (it received or delivered something).
    pub(crate) fn recovered(&self, client: &str, owner: &str) {
        if !self.failing.swap(false, Ordering::AcqRel) {
            return;
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if !seen.is_empty() {
            let kinds: Vec<&str> = seen.iter().map(|(kind, _)| kind.as_str()).collect();
            tracing::info!(client, owner, errors = %kinds.join(", "), "Kafka client works again.");
            seen.clear();
        }
    }
}
