//! TCP connections accepted but not upgraded yet (a TLS handshake or an
//! HTTP request head still to come), counted per client IP so that one
//! address cannot hold a listener's sockets open with idle connections.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The pending connections of one listener, by client IP.
pub struct Pending {
    per_ip: usize,
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One pending connection's place; given back when dropped.
pub struct PendingGuard {
    pending: Arc<Pending>,
    ip: IpAddr,
}

impl Pending {
    /// At most `per_ip` pending connections per client IP.
    pub fn new(per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            per_ip,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// A place for a connection from `ip`, unless it holds its share.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<PendingGuard> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(ip).or_default();
        if *count >= self.per_ip {
            return None;
        }
        *count += 1;
        Some(PendingGuard {
            pending: self.clone(),
            ip,
        })
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let mut counts = self
            .pending
            .counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_ip_gets_its_share_back_when_a_connection_ends() {
        let pending = Pending::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = pending.enter(a).unwrap();
        let _second = pending.enter(a).unwrap();
        assert!(pending.enter(a).is_none());
        assert!(pending.enter(b).is_some(), "another IP is not held back");
        drop(first);
        assert!(pending.enter(a).is_some());
        drop(_second);
        assert!(
            pending.counts.lock().unwrap().len() <= 1,
            "empty entries go"
        );
    }
}
