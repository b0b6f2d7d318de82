//! Connection slots: a cap on open connections that a listener, a
//! pipeline and a tenant each keep, and that a connection holds one of
//! for as long as it is open.

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
