//! Latency histograms, process memory, the file-descriptor limit, time.

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency a histogram holds, in microseconds (10 minutes); larger
/// values are recorded as this.
const MAX_US: u64 = 600_000_000;

/// A new microsecond histogram, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

/// Latency histograms shared by many tasks: each records into the shard
/// of its index, so tasks on different threads rarely meet on one lock.
pub struct Shards {
    shards: Box<[Mutex<Histogram<u64>>]>,
}

impl Shards {
    /// `count` shards (at least one).
    pub fn new(count: usize) -> Self {
        Self {
            shards: (0..count.max(1)).map(|_| Mutex::new(histogram())).collect(),
        }
    }

    /// Records `micros` into shard `index mod count`.
    pub fn record(&self, index: usize, micros: u64) {
        let shard = &self.shards[index % self.shards.len()];
        shard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saturating_record(micros.clamp(1, MAX_US));
    }

    /// All shards added together.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            all.add(&*shard).expect("same bounds");
        }
        all
    }
}

/// Percentiles of a microsecond histogram.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Smallest.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// Reads the percentiles of `histogram` (all zero when it is empty).
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            min: histogram.min(),
            mean: (histogram.mean() * 10.0).round() / 10.0,
            p50: histogram.value_at_quantile(0.5),
            p90: histogram.value_at_quantile(0.9),
            p99: histogram.value_at_quantile(0.99),
            p99_9: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }

    /// `p50 1.2 ms, p90 …` in milliseconds, for the human summary.
    pub fn human_ms(&self) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        format!(
            "p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms ({} samples)",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p99_9),
            ms(self.max),
            self.count
        )
    }
}

/// Resident memory of process `pid` in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// CPU time (user + system) process `pid` has used so far, in seconds
/// (fields 14 and 15 of /proc/PID/stat, in USER_HZ = 100 ticks per second
/// on Linux).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_seconds_of(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn cpu_seconds_of(stat: &str) -> Option<f64> {
    // The command name may contain spaces: fields start after its `)`.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // Field 3 (state) is fields[0], so utime (14) and stime (15) are 11 and 12.
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// Raises this process's soft RLIMIT_NOFILE to its hard limit; returns the
/// soft limit in force afterwards (`None` if unlimited or unknown).
pub fn raise_nofile_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

/// Nanoseconds since `start`.
pub fn since_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Now as RFC 3339 UTC with milliseconds (`2026-11-22T10:00:00.123Z`).
pub fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        let now = now_rfc3339();
        assert_eq!(now.len(), 24, "{now}");
        assert!(now.ends_with('Z'));
    }

    #[test]
    fn shards_merge() {
        let shards = Shards::new(4);
        for i in 0..100 {
            shards.record(i, 1000 + i as u64);
        }
        shards.record(0, 0);
        let p = Percentiles::of(&shards.merged());
        assert_eq!(p.count, 101);
        assert_eq!(p.min, 1);
        assert!(p.p50 >= 1040 && p.p50 <= 1060, "{p:?}");
    }

    #[test]
    fn own_rss_is_readable() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn cpu_time_is_user_plus_system_ticks() {
        // A command name with spaces and a `)`, then state, ppid, ...
        let stat = "42 (a b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 130 0 0 20 0 8 0 99 0";
        assert_eq!(cpu_seconds_of(stat), Some(3.8));
        assert_eq!(cpu_seconds_of("42 (x) S 1"), None);
        assert!(cpu_seconds(std::process::id()).is_some());
    }
}
