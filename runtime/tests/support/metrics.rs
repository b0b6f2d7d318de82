//! Reading `/metrics` in end-to-end tests: samples by full series, and a
//! wait for a series to reach a value (a hang guard, not a timing).

use std::collections::HashMap;
use std::time::Duration;

/// Samples by full series (`name{labels}`), from the OpenMetrics text.
pub async fn scrape(admin: &str) -> HashMap<String, f64> {
    let (status, body) = super::http_get(admin, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// One series' value (0 when absent).
pub fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// Scrapes until `done` holds for the samples (at most ~20 s); returns them.
pub async fn wait_until(
    admin: &str,
    what: &str,
    done: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    for _ in 0..200 {
        let samples = scrape(admin).await;
        if done(&samples) {
            return samples;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never true: {what}");
}
