//! A tenant's plugin CPU budget: every call of every plugin of the tenant
//! is timed and charged to one bucket that refills at the tenant's share
//! of the machine. A thread about to call into a plugin while the bucket
//! is in debt waits until it is paid off, so a tenant over its share slows
//! its own plugin threads (its consumers read more slowly, its handler and
//! auth queues fill) and never another tenant's.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::metrics::{Quota, TenantMetrics};

/// The longest one wait lasts before the bucket is looked at again (so a
/// shutdown is not held up by a deep debt).
const MAX_WAIT: Duration = Duration::from_millis(100);

/// One tenant's plugin time: counted always, limited when it has a share.
#[derive(Debug)]
pub struct CpuBudget {
    /// Nanoseconds of plugin time per second of wall time (`None`: no limit).
    rate: Option<f64>,
    bucket: Mutex<Bucket>,
    metrics: TenantMetrics,
}

#[derive(Debug)]
struct Bucket {
    /// Nanoseconds that may still be spent; negative is debt.
    tokens: f64,
    last: Instant,
}

impl CpuBudget {
    /// A budget of `share` of the machine's CPU time (`None`: unlimited,
    /// only counted), with bursts of one second's worth.
    pub fn new(share: Option<f64>, metrics: TenantMetrics) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let rate = share.map(|s| s * cores * 1e9);
        Self {
            rate,
            bucket: Mutex::new(Bucket {
                tokens: rate.unwrap_or(0.0),
                last: Instant::now(),
            }),
            metrics,
        }
    }

    /// Whether calls are limited.
    pub fn is_limited(&self) -> bool {
        self.rate.is_some()
    }

    /// Blocks the calling (plugin) thread while the tenant is over its
    /// share. Counted as throttled once per delayed call.
    pub fn wait_turn(&self) {
        let Some(rate) = self.rate else { return };
        let mut waited = Duration::ZERO;
        loop {
            let debt = {
                let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
                refill(&mut bucket, rate);
                -bucket.tokens
            };
            if debt <= 0.0 {
                break;
            }
            let wait = Duration::from_nanos((debt / rate * 1e9) as u64)
                .clamp(Duration::from_millis(1), MAX_WAIT);
            std::thread::sleep(wait);
            waited += wait;
        }
        if !waited.is_zero() {
            self.metrics.throttled(Quota::PluginCpu, 1);
            self.metrics.waited(waited.as_secs_f64());
        }
    }

    /// Charges a call that took `elapsed`.
    pub fn charge(&self, elapsed: Duration) {
        self.metrics.plugin_time(elapsed.as_secs_f64());
        let Some(rate) = self.rate else { return };
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        refill(&mut bucket, rate);
        bucket.tokens -= elapsed.as_nanos() as f64;
    }
}

/// Adds what accrued since the last look, up to one second's worth.
fn refill(bucket: &mut Bucket, rate: f64) {
    let now = Instant::now();
    let accrued = now.duration_since(bucket.last).as_secs_f64() * rate;
    bucket.tokens = (bucket.tokens + accrued).min(rate);
    bucket.last = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debt_makes_the_next_call_wait_and_counts_it() {
        let metrics = crate::metrics::global().tenant("budget-unit-test");
        let budget = CpuBudget::new(Some(0.001), metrics);
        // The burst is one second of the share; charge far more.
        budget.charge(Duration::from_millis(50));
        {
            let bucket = budget.bucket.lock().unwrap();
            assert!(bucket.tokens < 0.0, "{}", bucket.tokens);
        }
        // Pay the debt off by hand rather than sleeping through it.
        budget.bucket.lock().unwrap().tokens = 0.0;
        budget.wait_turn();
        let text = crate::metrics::render();
        assert!(
            text.contains("tenant_plugin_seconds_total{tenant=\"budget-unit-test\"} 0.05"),
            "{text}"
        );
    }

    #[test]
    fn unlimited_budgets_only_count() {
        let metrics = crate::metrics::global().tenant("budget-unit-free");
        let budget = CpuBudget::new(None, metrics);
        budget.charge(Duration::from_secs(5));
        budget.wait_turn();
        assert!(!budget.is_limited());
    }
}
