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

/// A cap on open connections, shared by everything that counts against it.
#[derive(Debug)]
pub struct Slots {
    max: std::sync::atomic::AtomicUsize,
    open: std::sync::atomic::AtomicUsize,
}

/// One taken slot, given back when dropped (however the connection ends).
#[derive(Debug)]
pub struct Slot(std::sync::Arc<Slots>);

impl Slots {
    /// At most `max` open at once (`None`: no cap).
    pub fn new(max: Option<usize>) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            max: std::sync::atomic::AtomicUsize::new(max.unwrap_or(usize::MAX)),
            open: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Takes a slot if one is free.
    pub fn take(self: &std::sync::Arc<Self>) -> Option<Slot> {
        use std::sync::atomic::Ordering;
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < self.max.load(Ordering::Acquire)).then_some(open + 1)
            })
            .ok()
            .map(|_| Slot(self.clone()))
    }

    /// Changes the cap (a reload): connections already open over a lower
    /// cap stay; new ones wait until enough have closed.
    pub fn set_max(&self, max: Option<usize>) {
        self.max.store(
            max.unwrap_or(usize::MAX),
            std::sync::atomic::Ordering::Release,
        );
    }

    /// Slots taken now.
    pub fn open(&self) -> usize {
        self.open.load(std::sync::atomic::Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    #[test]
    fn slots_are_given_back_when_dropped() {
        let slots = Slots::new(Some(2));
        let a = slots.take().unwrap();
        let _b = slots.take().unwrap();
        assert!(slots.take().is_none());
        drop(a);
        assert_eq!(slots.open(), 1);
        assert!(slots.take().is_some());
    }
}
