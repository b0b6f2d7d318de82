//! `scheduled = [...]`: messages sent to every connection every
//! `interval_ms`, driven by the host's ticks.
//!
//! Time is the `now_ms` the host passes to on_tick, never the clock, so a
//! test can drive it. The first tick starts each schedule: it first fires
//! one interval after that tick. The host may tick more often than
//! `interval_ms` (the schedule fires at the first tick at or after it is
//! due, keeping its phase) or less often (it fires at most once per tick;
//! missed firings are dropped, not sent in a burst).

use serde_json::Value;
use sluice_sdk::Action;

use crate::placeholder::Scope;
use crate::table::Table;
use crate::template::{Ctx, Template};

pub struct Schedule {
    interval_ms: u64,
    message: Template,
    /// When it fires next; `None` until the first tick.
    next_due: Option<u64>,
}

impl Schedule {
    /// The `scheduled` array of the config (empty when absent).
    pub fn parse_all(config: &Table) -> Result<Vec<Self>, String> {
        let Some(items) = config.array("scheduled")? else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .enumerate()
            .map(|(i, item)| Self::parse(item, &format!("scheduled[{i}]")))
            .collect()
    }

    fn parse(value: &Value, path: &str) -> Result<Self, String> {
        let table = Table::of(value, path)?;
        table.only(&["interval_ms", "message"])?;
        let interval_ms = table
            .uint("interval_ms", 1, u64::from(u32::MAX))?
            .ok_or_else(|| table.missing("interval_ms"))?;
        Ok(Schedule {
            interval_ms,
            message: table.required_template("message", Scope::SCHEDULE)?,
            next_due: None,
        })
    }

    /// Whether the schedule fires at this tick; advances it if so.
    fn due(&mut self, now_ms: u64) -> bool {
        let restart = now_ms.saturating_add(self.interval_ms);
        let Some(next) = self.next_due else {
            self.next_due = Some(restart);
            return false;
        };
        if next > restart {
            // Time went backwards: start again from now rather than wait.
            self.next_due = Some(restart);
            return false;
        }
        if now_ms < next {
            return false;
        }
        let following = next.saturating_add(self.interval_ms);
        self.next_due = Some(if following > now_ms {
            following
        } else {
            restart
        });
        true
    }
}

/// The `send` actions of every schedule due at `now_ms`: each message is
/// rendered once per firing and sent to every connection.
pub fn on_tick(schedules: &mut [Schedule], now_ms: u64, connections: &[u64]) -> Vec<Action> {
    let ctx = Ctx {
        now_ms,
        message: None,
        params: None,
        state: None,
        conn_id: None,
        connection_count: Some(connections.len()),
    };
    let mut actions = Vec::new();
    for schedule in schedules {
        if schedule.due(now_ms) && !connections.is_empty() {
            let message = schedule.message.message(&ctx);
            actions.extend(
                connections
                    .iter()
                    .map(|&id| Action::Send((id, message.clone()))),
            );
        }
    }
    actions
}
