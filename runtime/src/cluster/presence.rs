//! Presence: which connections every other node of the cluster has, as
//! their own presence records told us (this node's own come from the
//! registry, never from here).
//!
//! A node states changes as they happen and restates all its connections
//! every interval (one round, in parts). A connection not restated in a
//! round that ended is gone (a change that was lost cannot outlive the next
//! round); a node silent for [`MISSED_ROUNDS`] intervals is gone with all
//! its connections (a process that was killed); a node that says `bye` is
//! gone at once.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::wire::{Member, PresenceUpdate, Sender};

/// Intervals a node may stay silent before it is taken for dead.
const MISSED_ROUNDS: u32 = 3;

/// The other nodes' connections.
#[derive(Debug)]
pub struct Presence {
    nodes: Mutex<HashMap<u16, NodeState>>,
    /// Per pipeline, the channels with a subscriber on another node:
    /// rebuilt on every change, read for every record a shared-mode node
    /// routes (by `&str`, without allocating).
    subscribed: arc_swap::ArcSwap<HashMap<String, HashSet<String>>>,
    interval: Duration,
}

#[derive(Debug)]
struct NodeState {
    incarnation: u64,
    last_heard: Instant,
    /// The latest round it started.
    round: u64,
    /// Its connections, with the round each was last stated in.
    members: HashMap<u64, (Member, u64)>,
}

impl NodeState {
    fn new(incarnation: u64, now: Instant) -> Self {
        Self {
            incarnation,
            last_heard: now,
            round: 0,
            members: HashMap::new(),
        }
    }
}

impl Presence {
    /// Nodes restate their connections every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            nodes: Mutex::default(),
            subscribed: arc_swap::ArcSwap::default(),
            interval,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u16, NodeState>> {
        self.nodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How long a silent node is kept.
    pub fn expiry(&self) -> Duration {
        self.interval * MISSED_ROUNDS
    }

    /// Notes that `sender` was heard from; returns whether it is new (or a
    /// new run of a known node id, whose old connections are dropped).
    pub fn heard(&self, sender: Sender, now: Instant) -> bool {
        let mut nodes = self.lock();
        match nodes.get_mut(&sender.node) {
            Some(state) if state.incarnation == sender.incarnation => {
                state.last_heard = now;
                false
            }
            _ => {
                let replaced = nodes.insert(sender.node, NodeState::new(sender.incarnation, now));
                if replaced.is_some() {
                    self.index(&nodes);
                }
                true
            }
        }
    }

    /// Rebuilds the (pipeline, channel) index from `nodes`.
    fn index(&self, nodes: &HashMap<u16, NodeState>) {
        let mut subscribed: HashMap<String, HashSet<String>> = HashMap::new();
        for (member, _) in nodes.values().flat_map(|state| state.members.values()) {
            subscribed
                .entry(member.pipeline.clone())
                .or_default()
                .extend(member.channels.iter().cloned());
        }
        self.subscribed.store(std::sync::Arc::new(subscribed));
    }

    /// Applies a presence update from `sender` (heard first).
    pub fn apply(&self, sender: Sender, update: PresenceUpdate, now: Instant) {
        self.heard(sender, now);
        let mut nodes = self.lock();
        let Some(state) = nodes.get_mut(&sender.node) else {
            return;
        };
        state.round = state.round.max(update.round);
        for id in update.remove {
            state.members.remove(&id);
        }
        for member in update.upsert {
            state.members.insert(member.id, (member, update.round));
        }
        if update.snapshot && update.last {
            state.members.retain(|_, (_, round)| *round >= update.round);
        }
        self.index(&nodes);
    }

    /// Forgets `node` (it said `bye`).
    pub fn forget(&self, sender: Sender) {
        let mut nodes = self.lock();
        if nodes
            .get(&sender.node)
            .is_some_and(|s| s.incarnation == sender.incarnation)
        {
            nodes.remove(&sender.node);
            self.index(&nodes);
        }
    }

    /// Forgets the nodes silent for longer than [`Self::expiry`]; returns them.
    pub fn sweep(&self, now: Instant) -> Vec<u16> {
        let expiry = self.expiry();
        let mut gone = Vec::new();
        let mut nodes = self.lock();
        nodes.retain(|node, state| {
            let alive = now.saturating_duration_since(state.last_heard) <= expiry;
            if !alive {
                gone.push(*node);
            }
            alive
        });
        if !gone.is_empty() {
            self.index(&nodes);
        }
        gone
    }

    /// The other nodes heard from, in order.
    pub fn nodes(&self) -> Vec<u16> {
        let mut nodes: Vec<u16> = self.lock().keys().copied().collect();
        nodes.sort_unstable();
        nodes
    }

    /// Every connection of the other nodes that `keep` accepts, with its
    /// node, by id.
    pub fn members(&self, keep: impl Fn(&Member) -> bool) -> Vec<(u16, Member)> {
        let mut all: Vec<(u16, Member)> = self
            .lock()
            .iter()
            .flat_map(|(node, state)| {
                state
                    .members
                    .values()
                    .filter(|(m, _)| keep(m))
                    .map(|(m, _)| (*node, m.clone()))
            })
            .collect();
        all.sort_by_key(|(_, m)| m.id);
        all
    }

    /// How many connections of the other nodes `keep` accepts.
    pub fn count(&self, keep: impl Fn(&Member) -> bool) -> usize {
        self.lock()
            .values()
            .map(|state| state.members.values().filter(|(m, _)| keep(m)).count())
            .sum()
    }

    /// The node that has connection `id`, if another node does.
    pub fn find(&self, id: u64) -> Option<(u16, Member)> {
        self.lock()
            .iter()
            .find_map(|(node, state)| state.members.get(&id).map(|(m, _)| (*node, m.clone())))
    }

    /// Whether another node has a subscriber of `pipeline`'s `channel`.
    pub fn elsewhere(&self, pipeline: &str, channel: &str) -> bool {
        self.subscribed
            .load()
            .get(pipeline)
            .is_some_and(|channels| channels.contains(channel))
    }
}

/// What this node last told the others about its connections, to state
/// only what changed.
#[derive(Debug, Default)]
pub struct Stated {
    members: HashMap<u64, Member>,
}

impl Stated {
    /// The update that brings the others from what was stated to `now`
    /// (empty when nothing changed); `now` becomes what was stated.
    pub fn changes(&mut self, now: Vec<Member>, round: u64) -> PresenceUpdate {
        let mut current: HashMap<u64, Member> = now.into_iter().map(|m| (m.id, m)).collect();
        let mut remove: Vec<u64> = self
            .members
            .keys()
            .filter(|id| !current.contains_key(id))
            .copied()
            .collect();
        remove.sort_unstable();
        let mut upsert: Vec<Member> = current
            .values()
            .filter(|m| self.members.get(&m.id) != Some(m))
            .cloned()
            .collect();
        upsert.sort_by_key(|m| m.id);
        std::mem::swap(&mut self.members, &mut current);
        PresenceUpdate {
            round,
            upsert,
            remove,
            ..PresenceUpdate::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u64, channels: &[&str]) -> Member {
        Member {
            id,
            pipeline: "chat".into(),
            principal: None,
            channels: channels.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    const A: Sender = Sender {
        node: 1,
        incarnation: 10,
    };

    #[test]
    fn changes_and_rounds_keep_the_table_true() {
        let presence = Presence::new(Duration::from_secs(5));
        let now = Instant::now();
        let mut stated = Stated::default();
        let first = stated.changes(vec![member(1, &["r"]), member(2, &["r"])], 0);
        assert_eq!(first.upsert.len(), 2);
        presence.apply(A, first, now);
        assert_eq!(presence.count(|m| m.channels.iter().any(|c| c == "r")), 2);
        assert!(presence.elsewhere("chat", "r"));

        // 2 leaves the room, 1 closes: only that is stated.
        let change = stated.changes(vec![member(2, &["s"])], 0);
        assert_eq!(change.remove, vec![1]);
        assert_eq!(change.upsert, vec![member(2, &["s"])]);
        presence.apply(A, change, now);
        assert!(!presence.elsewhere("chat", "r"));
        assert_eq!(presence.find(2).map(|(n, _)| n), Some(1));
        assert!(stated.changes(vec![member(2, &["s"])], 0).upsert.is_empty());

        // A change that was lost (3 opened) is repaired by the next round,
        // and what the round does not restate (2) goes.
        let round = PresenceUpdate {
            round: 1,
            snapshot: true,
            last: true,
            upsert: vec![member(3, &[])],
            remove: vec![],
        };
        presence.apply(A, round, now);
        assert_eq!(presence.members(|_| true).len(), 1);
        assert_eq!(presence.members(|_| true)[0].1.id, 3);
    }

    #[test]
    fn silent_killed_and_restarted_nodes_leave() {
        let presence = Presence::new(Duration::from_secs(5));
        let start = Instant::now();
        let update = |ids: &[u64]| PresenceUpdate {
            upsert: ids.iter().map(|id| member(*id, &["r"])).collect(),
            ..PresenceUpdate::default()
        };
        presence.apply(A, update(&[1]), start);
        let b = Sender {
            node: 2,
            incarnation: 20,
        };
        presence.apply(b, update(&[2]), start);
        // Within the expiry both stay; after it the silent one goes.
        presence.heard(b, start + Duration::from_secs(14));
        assert!(presence.sweep(start + Duration::from_secs(15)).is_empty());
        assert_eq!(presence.sweep(start + Duration::from_secs(16)), vec![1]);
        assert_eq!(presence.nodes(), vec![2]);
        // A new run of node 2 starts empty; a `bye` of the old run is ignored.
        let b2 = Sender {
            node: 2,
            incarnation: 21,
        };
        assert!(presence.heard(b2, start + Duration::from_secs(16)));
        assert_eq!(presence.count(|_| true), 0);
        presence.forget(b);
        assert_eq!(presence.nodes(), vec![2]);
        presence.forget(b2);
        assert!(presence.nodes().is_empty());
    }
}
