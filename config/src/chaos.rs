//! Checks of `[pipelines.chaos]`: probabilities from 0 to 1, delays that
//! make sense, and a table that asks for something.

use std::time::Duration;

use serde_spanned::Spanned;

use super::bounds;
use super::diagnostics::{Problem, Report};
use super::schema::ChaosDef;

/// The faults a pipeline's connections get on purpose (seed 003's chaos
/// testing), all applied by the host to what it sends.
#[derive(Debug, Clone, PartialEq)]
pub struct Chaos {
    /// Seeds each connection's draws (with its id); `None`: random.
    pub seed: Option<u64>,
    /// Chance, before each outgoing message, of dropping the connection.
    pub disconnect: f64,
    /// Each outgoing message waits a random time in this range.
    pub delay: Option<(Duration, Duration)>,
    /// Chance an outgoing message is dropped.
    pub drop: f64,
    /// Chance an outgoing message is sent twice.
    pub duplicate: f64,
    /// Chance an outgoing message is held back and sent after the next.
    pub reorder: f64,
    /// A client that reads slowly.
    pub slow_consumer: Option<SlowConsumer>,
}

/// `slow_consumer`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowConsumer {
    /// Time between two messages written.
    pub delay: Duration,
    /// Messages waiting at most.
    pub buffer_size: usize,
    /// New messages are dropped when the buffer is full (else they wait in
    /// the outbox).
    pub drop_when_full: bool,
}

impl Chaos {
    /// Whether messages go one at a time, each when it is due.
    pub fn paced(&self) -> bool {
        self.delay.is_some() || self.slow_consumer.is_some()
    }
}

/// The checked chaos of a pipeline: `Ok(None)` when absent or disabled,
/// `Err(())` when something was reported.
pub(super) fn check(
    def: Option<&Spanned<ChaosDef>>,
    report: &mut Report<'_>,
) -> Result<Option<Chaos>, ()> {
    let Some(spanned) = def else {
        return Ok(None);
    };
    let def = spanned.get_ref();
    if !def.enabled {
        return Ok(None);
    }
    let mut ok = true;
    let mut rate = |value: &Option<Spanned<f64>>, key: &str| -> f64 {
        let Some(value) = value else {
            return 0.0;
        };
        let p = *value.get_ref();
        if !(0.0..=1.0).contains(&p) {
            report.error(
                value.span(),
                Problem::Invalid(format!(
                    "{key} {p} is not a probability: it must be from 0 to 1"
                )),
            );
            ok = false;
        }
        p
    };
    let disconnect = rate(&def.disconnect_probability, "disconnect_probability");
    let drop = rate(&def.message_drop_rate, "message_drop_rate");
    let duplicate = rate(&def.message_duplicate_rate, "message_duplicate_rate");
    let reorder = rate(&def.message_reorder_rate, "message_reorder_rate");
    let delay = def.delay.as_ref().map(|delay| {
        let d = delay.get_ref();
        if d.min_ms > d.max_ms || d.max_ms > 60_000 {
            report.error(
                delay.span(),
                Problem::Invalid(format!(
                    "delay from {} to {} ms: `min_ms` must be at most `max_ms`, which must be at most 60000",
                    d.min_ms, d.max_ms
                )),
            );
            ok = false;
        }
        (
            Duration::from_millis(d.min_ms),
            Duration::from_millis(d.max_ms),
        )
    });
    let slow_consumer = def
        .slow_consumer
        .as_ref()
        .filter(|s| s.get_ref().enabled)
        .and_then(|slow| {
            let s = slow.get_ref();
            let number = |n: u64| Spanned::new(slow.span(), n);
            let delay = bounds::number(
                Some(&number(s.delay_ms)),
                "slow_consumer.delay_ms",
                1..=60_000,
                0,
                report,
            );
            let buffer = bounds::number(
                Some(&number(s.buffer_size)),
                "slow_consumer.buffer_size",
                1..=1_000_000,
                0,
                report,
            );
            ok &= delay.is_some() && buffer.is_some();
            Some(SlowConsumer {
                delay: Duration::from_millis(delay?),
                buffer_size: buffer? as usize,
                drop_when_full: s.drop_when_full,
            })
        });
    let chaos = Chaos {
        seed: def.seed.as_ref().map(|s| *s.get_ref()),
        disconnect,
        delay,
        drop,
        duplicate,
        reorder,
        slow_consumer,
    };
    let nothing = chaos.disconnect == 0.0
        && chaos.drop == 0.0
        && chaos.duplicate == 0.0
        && chaos.reorder == 0.0
        && chaos.delay.is_none_or(|(_, max)| max.is_zero())
        && chaos.slow_consumer.is_none();
    if ok && nothing {
        report.error(
            spanned.span(),
            Problem::Invalid(
                "`[pipelines.chaos]` injects nothing: set a rate, a `delay` or a `slow_consumer` (or `enabled = false`)".into(),
            ),
        );
        ok = false;
    }
    if ok { Ok(Some(chaos)) } else { Err(()) }
}
