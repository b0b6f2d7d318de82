//! Handshakes per client IP, with a kept rate limiter (governor).

use std::net::IpAddr;
use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateDef;

/// A per-IP handshake rate limit.
pub struct PerIpLimit {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl PerIpLimit {
    /// A limit of `rate.per_second`, with bursts of `rate.burst`.
    pub fn new(rate: RateDef) -> Self {
        let per_second = NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
        }
    }

    /// Takes one handshake from `ip`'s allowance; false when it has none left.
    pub fn allow(&self, ip: IpAddr) -> bool {
        let allowed = self.limiter.check_key(&ip).is_ok();
        // Keep the key map from growing without bound under many IPs.
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        allowed
    }
}
