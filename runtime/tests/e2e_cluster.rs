//! A cluster of three real `sluice` processes on one tansu broker process,
//! driven by real WebSocket clients and the admin API: rooms, admin
//! actions, presence and tenant isolation across nodes; a node killed with
//! SIGKILL; a bus that goes away. The handler is the test-only
//! `handler-probe` plugin (`join R`, `leave R`, `broadcast R TEXT`).

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_tests::Broker;
use support::Sluice;
use support::http::request;
use support::probe::{ask, text};
use support::ws::Client;
use tokio_tungstenite::tungstenite::Message;

const OPERATOR: &str = "operator-token-0123456789";
const ACME: &str = "acme-admin-token-0123456789";
const GLOBEX: &str = "globex-admin-token-0123456789";
/// `presence_interval_ms` of the test nodes: short, so a killed node
/// leaves quickly, but long enough that a node busy on a loaded CI machine
/// is not taken for dead (3 silent intervals).
const INTERVAL_MS: u64 = 2000;

/// What every node's file starts with: the admin API, Kafka on
/// `bootstrap`, node `node` of cluster `name`, and a listener.
fn preamble(bootstrap: &str, name: &str, node: u16) -> String {
    format!(
        r#"
[admin]
address = "127.0.0.1:0"
token = "{OPERATOR}"

[kafka]
brokers = "{bootstrap}"

[cluster]
name = "{name}"
node_id = {node}
presence_interval_ms = {INTERVAL_MS}

[[listeners]]
name = "public"
address = "127.0.0.1:0"
"#
    )
}

/// Node `node` of cluster `name` on `bootstrap`: two tenants, each with a
/// chat pipeline run by the probe handler.
fn node_file(bootstrap: &str, name: &str, node: u16) -> String {
    let probe = sluice_runtime::builtin::artifact("handler-probe").expect("probe is built");
    let preamble = preamble(bootstrap, name, node);
    format!(
        r#"{preamble}
[[tenants]]
name = "acme"
admin_token = "{ACME}"
path_prefix = "/acme"

[[tenants]]
name = "globex"
admin_token = "{GLOBEX}"
path_prefix = "/globex"

[[pipelines]]
name = "acme-chat"
tenant = "acme"
path = "/acme/rooms/{{channel}}"
[pipelines.handler]
plugin = "{probe}"

[[pipelines]]
name = "globex-chat"
tenant = "globex"
path = "/globex/rooms/{{channel}}"
[pipelines.handler]
plugin = "{probe}"
"#
    )
}

/// Three nodes of one cluster.
fn start_cluster(dir: &std::path::Path, broker: &Broker, name: &str) -> Vec<Sluice> {
    (1..=3)
        .map(|node| {
            let file = node_file(&broker.bootstrap(), name, node);
            Sluice::start(dir, &format!("node{node}"), &file, &[])
        })
        .collect()
}

/// A client of `tenant`'s chat on `node`, with its connection id.
async fn open(node: &Sluice, tenant: &str) -> (Client, u64) {
    support::probe::open(&format!("{}/{tenant}/rooms/lobby", node.base)).await
}

async fn admin(node: &Sluice, method: &str, path: &str, token: &str, body: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let response = request(
        node.admin.as_deref().expect("the node has an admin API"),
        method,
        path,
        &[("authorization", &auth), ("content-type", "text/plain")],
        body.as_bytes(),
    )
    .await;
    (response.status, response.json())
}

/// The ids `node` lists as members of `pipeline`'s `channel`.
async fn members(node: &Sluice, pipeline: &str, channel: &str, token: &str) -> Vec<u64> {
    let (status, body) = admin(
        node,
        "GET",
        &format!("/pipelines/{pipeline}/channels/{channel}"),
        token,
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<u64> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(body["count"].as_u64(), Some(ids.len() as u64), "{body}");
    ids
}

/// Waits (a hang guard, `within`) until every node lists exactly `want` in
/// `channel`.
async fn presence_agrees(nodes: &[&Sluice], channel: &str, want: &[u64], within: Duration) {
    let mut want = want.to_vec();
    want.sort_unstable();
    let deadline = Instant::now() + within;
    loop {
        let mut seen = Vec::new();
        for node in nodes {
            seen.push(members(node, "acme-chat", channel, OPERATOR).await);
        }
        if seen.iter().all(|ids| *ids == want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "presence of {channel} did not agree within {within:?}: want {want:?}, nodes list {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_admin_actions_and_tenants_span_three_nodes() {
    let broker = Broker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_cluster(dir.path(), &broker, "rooms");
    let all: Vec<&Sluice> = nodes.iter().collect();

    // 30 clients in 3 rooms, each room on every node.
    let mut clients = Vec::new();
    for i in 0..30 {
        let node = i % 3;
        let room = (i / 3) % 3;
        let (mut client, id) = open(&nodes[node], "acme").await;
        assert_eq!(id >> 36, node as u64 + 1, "the id carries its node");
        assert_eq!(
            ask(&mut client, &format!("join r{room}")).await,
            format!("joined r{room}")
        );
        clients.push((client, id, node, room));
    }
    for room in 0..3 {
        let ids: Vec<u64> = clients
            .iter()
            .filter(|c| c.3 == room)
            .map(|c| c.1)
            .collect();
        presence_agrees(&all, &format!("r{room}"), &ids, Duration::from_secs(20)).await;
    }
    // Handlers see the same, on every node.
    for node in 0..3 {
        let asker = clients.iter().position(|c| c.2 == node).unwrap();
        let answer = ask(&mut clients[asker].0, "presence r0").await;
        let (head, members) = answer.split_once(": ").unwrap();
        assert_eq!(head, "presence r0 12 of 30", "node {}", node + 1);
        for n in 1..=3 {
            assert_eq!(members.matches(&format!("@{n}")).count(), 4, "{answer}");
        }
    }

    // A globex client in a room of the same name, on node 2.
    let (mut outsider, outsider_id) = open(&nodes[1], "globex").await;
    assert_eq!(ask(&mut outsider, "join r1").await, "joined r1");

    // In each room, one member per node sends 20 messages and an end mark.
    let mut senders: HashMap<usize, Vec<u64>> = HashMap::new();
    for room in 0..3 {
        for node in 0..3 {
            let sender = clients
                .iter()
                .position(|c| c.3 == room && c.2 == node)
                .unwrap();
            senders.entry(room).or_default().push(clients[sender].1);
        }
    }
    for seq in 0..=20 {
        for (client, id, _, room) in clients.iter_mut() {
            if senders[room].contains(id) {
                let mark = if seq == 20 {
                    "end".to_owned()
                } else {
                    seq.to_string()
                };
                client
                    .send(Message::text(format!("broadcast r{room} {id}:{mark}")))
                    .await;
            }
        }
    }
    // Every member gets every message of its room once, in each sender's
    // order, and nothing of another room, whichever node each is on.
    for (client, id, node, room) in clients.iter_mut() {
        let mut next: HashMap<u64, u32> = senders[room].iter().map(|s| (*s, 0)).collect();
        let mut ended = 0;
        while ended < 3 {
            let message = text(client).await;
            let (sender, mark) = message
                .split_once(':')
                .and_then(|(s, m)| Some((s.parse::<u64>().ok()?, m)))
                .unwrap_or_else(|| panic!("client {id} (node {node}) got {message:?}"));
            let expected = next.get_mut(&sender).unwrap_or_else(|| {
                panic!("client {id} of r{room} got {message:?} from another room")
            });
            if mark == "end" {
                assert_eq!(*expected, 20, "client {id}: {sender} ended early");
                ended += 1;
            } else {
                assert_eq!(
                    mark,
                    expected.to_string(),
                    "client {id}: out of order or repeated"
                );
                *expected += 1;
            }
        }
    }

    // The other tenant's room of the same name saw none of it.
    let (mut globex_sender, _) = open(&nodes[2], "globex").await;
    assert_eq!(ask(&mut globex_sender, "join r1").await, "joined r1");
    presence_agrees_for(&all, "globex-chat", "r1", 2).await;
    globex_sender
        .send(Message::text("broadcast r1 globex-only"))
        .await;
    assert_eq!(text(&mut outsider).await, "globex-only");

    // Admin, through node 1 only: a message to a connection on node 2, a
    // close of one on node 3, a broadcast to a room on every node.
    let on_node = |n: usize, room: usize| {
        clients
            .iter()
            .position(|c| c.2 == n && c.3 == room)
            .unwrap()
    };
    let (target, doomed) = (on_node(1, 0), on_node(2, 0));

    // A handler's `send` reaches a connection of its pipeline on another
    // node (node 1 to node 3), and never one of another tenant's.
    let (from, to) = (on_node(0, 1), on_node(2, 1));
    let to_id = clients[to].1;
    clients[from]
        .0
        .send(Message::text(format!("send {to_id} psst")))
        .await;
    clients[from]
        .0
        .send(Message::text(format!("send {outsider_id} leak")))
        .await;
    assert_eq!(text(&mut clients[to].0).await, "psst");
    let (status, body) = admin(
        &nodes[0],
        "POST",
        &format!("/connections/{}/messages", clients[target].1),
        OPERATOR,
        "hello from node 1",
    )
    .await;
    assert_eq!((status, body["node"].as_u64()), (202, Some(2)), "{body}");
    assert_eq!(text(&mut clients[target].0).await, "hello from node 1");

    let (status, body) = admin(
        &nodes[0],
        "DELETE",
        &format!("/connections/{}?code=4001&reason=kicked", clients[doomed].1),
        OPERATOR,
        "",
    )
    .await;
    assert_eq!((status, body["node"].as_u64()), (202, Some(3)), "{body}");
    assert_eq!(
        clients[doomed].0.expect_close().await,
        (4001, "kicked".to_owned())
    );

    let (status, body) = admin(
        &nodes[0],
        "POST",
        "/pipelines/acme-chat/broadcast?channel=r1",
        OPERATOR,
        "all hands",
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["subscribers_elsewhere"].as_u64(), Some(6), "{body}");
    for (client, _, _, _) in clients.iter_mut().filter(|c| c.3 == 1) {
        assert_eq!(text(client).await, "all hands");
    }

    // The operator lists every node's connections; acme's token only
    // acme's, and another tenant's are answered as if they did not exist.
    let doomed_id = clients[doomed].1;
    let want = 29 + 2;
    let deadline = Instant::now() + Duration::from_secs(20);
    let listed = loop {
        let (_, list) = admin(&nodes[0], "GET", "/connections", OPERATOR, "").await;
        if list["count"].as_u64() == Some(want) {
            break list;
        }
        assert!(Instant::now() < deadline, "listed {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let on: Vec<u64> = listed["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["node"].as_u64().unwrap())
        .collect();
    for n in 1..=3 {
        assert!(on.contains(&n), "node {n} missing from {listed}");
    }
    assert!(!listed.to_string().contains(&format!("\"id\":{doomed_id},")));
    let (_, acme) = admin(&nodes[0], "GET", "/connections", ACME, "").await;
    assert_eq!(acme["count"].as_u64(), Some(29), "{acme}");
    for (method, path) in [
        ("GET", format!("/connections/{outsider_id}")),
        ("POST", format!("/connections/{outsider_id}/messages")),
        ("GET", "/pipelines/globex-chat/channels/r1".to_owned()),
    ] {
        let (status, body) = admin(&nodes[0], method, &path, ACME, "x").await;
        assert_eq!(status, 404, "{method} {path} with acme's token: {body}");
    }
    assert_eq!(
        members(&nodes[0], "globex-chat", "r1", GLOBEX).await.len(),
        2
    );
    // Nothing of acme's (the `send` above included) reached the outsider.
    globex_sender
        .send(Message::text("broadcast r1 globex-end"))
        .await;
    assert_eq!(text(&mut outsider).await, "globex-end");
}

/// Waits until every node lists `count` members of `pipeline`'s `channel`.
async fn presence_agrees_for(nodes: &[&Sluice], pipeline: &str, channel: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut counts = Vec::new();
        for node in nodes {
            counts.push(members(node, pipeline, channel, OPERATOR).await.len());
        }
        if counts.iter().all(|c| *c == count) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{pipeline}/{channel}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_leaves_presence_and_a_lost_bus_degrades_to_local_rooms() {
    let mut broker = Broker::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = start_cluster(dir.path(), &broker, "failures");
    let mut clients = Vec::new();
    for i in 0..6 {
        let (mut client, id) = open(&nodes[i % 3], "acme").await;
        assert_eq!(ask(&mut client, "join r").await, "joined r");
        clients.push((client, id));
    }
    let ids: Vec<u64> = clients.iter().map(|c| c.1).collect();
    presence_agrees(
        &nodes.iter().collect::<Vec<_>>(),
        "r",
        &ids,
        Duration::from_secs(20),
    )
    .await;

    // A leave reaches every node's presence.
    assert_eq!(ask(&mut clients[0].0, "leave r").await, "left r");
    presence_agrees(
        &nodes.iter().collect::<Vec<_>>(),
        "r",
        &ids[1..],
        Duration::from_secs(20),
    )
    .await;

    // Node 3 dies without a word: the others drop its members within the
    // documented bound (3 presence intervals, plus the 1 s sweep), with
    // a little slack for a loaded machine.
    let killed = nodes.pop().unwrap();
    drop(killed);
    let bound = Duration::from_millis(3 * INTERVAL_MS + 1000);
    let survivors: Vec<u64> = ids[1..]
        .iter()
        .copied()
        .filter(|id| id >> 36 != 3)
        .collect();
    let remaining: Vec<&Sluice> = nodes.iter().collect();
    presence_agrees(&remaining, "r", &survivors, bound + Duration::from_secs(3)).await;
    let (_, health) = admin(&nodes[0], "GET", "/health", OPERATOR, "").await;
    let acme_bus = health["cluster"]["buses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["tenant"] == "acme")
        .cloned()
        .unwrap();
    assert_eq!(acme_bus["nodes"], serde_json::json!([1, 2]), "{health}");

    // The others keep serving the room across nodes (clients 1 and 4 are
    // on node 2, 3 on node 1).
    clients[3]
        .0
        .send(Message::text("broadcast r still-here"))
        .await;
    assert_eq!(text(&mut clients[3].0).await, "still-here");
    assert_eq!(text(&mut clients[1].0).await, "still-here");
    assert_eq!(text(&mut clients[4].0).await, "still-here");

    // Without the broker, a node is ready but degraded, and rooms keep
    // working among its own clients.
    broker.stop();
    let ws = nodes[0].base.trim_start_matches("ws://").to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = support::http_get(&ws, "/readyz").await;
        if body.contains("degraded") {
            assert_eq!(status, 200, "{body}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "/readyz never said degraded: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (mut a, _) = open(&nodes[0], "acme").await;
    let (mut b, _) = open(&nodes[0], "acme").await;
    assert_eq!(ask(&mut a, "join local").await, "joined local");
    assert_eq!(ask(&mut b, "join local").await, "joined local");
    a.send(Message::text("broadcast local no-bus")).await;
    assert_eq!(text(&mut a).await, "no-bus");
    assert_eq!(text(&mut b).await, "no-bus");
    // The gauge follows within a sweep (1 s).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = support::http_get(nodes[0].admin.as_deref().unwrap(), "/metrics")
            .await
            .1;
        if metrics.contains(r#"cluster_bus_up{tenant="acme"} 0"#) {
            assert!(
                metrics.contains(r#"cluster_node_info{cluster="failures",node="1"} 1"#),
                "the node says who it is"
            );
            break;
        }
        let cluster: Vec<&str> = metrics.lines().filter(|l| l.contains("cluster")).collect();
        assert!(Instant::now() < deadline, "{}", cluster.join("\n"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Node `node` of a cluster whose pipeline reads `quotes` in shared mode:
/// each record is read by one node only.
fn shared_file(bootstrap: &str, node: u16) -> String {
    let preamble = preamble(bootstrap, "shared", node);
    format!(
        r#"{preamble}
[[pipelines]]
name = "feed"
path = "/feed/{{channel}}"
[pipelines.source]
topics = ["quotes"]
mode = "shared"
group_id = "feed-cluster"
[pipelines.router]
plugin = "key-router"
config = {{}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_mode_records_reach_subscribers_on_every_node() {
    let broker = Broker::start().unwrap();
    broker.create_topic("quotes", 2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // `ready` means each node has its partitions: both are in the group.
    let nodes: Vec<Sluice> = (1..=2)
        .map(|n| {
            Sluice::start(
                dir.path(),
                &format!("shared{n}"),
                &shared_file(&broker.bootstrap(), n),
                &[],
            )
        })
        .collect();
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(Client::connect(&format!("{}/feed/eur", node.base)).await);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut counts = Vec::new();
        for node in &nodes {
            counts.push(members(node, "feed", "eur", OPERATOR).await.len());
        }
        if counts == [2, 2] {
            break;
        }
        assert!(Instant::now() < deadline, "presence of eur: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 20 records over both partitions; each node reads one partition.
    let producer = sluice_tests::kafka::Producer::new(&broker.bootstrap()).unwrap();
    let records: Vec<sluice_tests::kafka::Outgoing> = (0..20)
        .map(|i| {
            sluice_tests::kafka::Outgoing::new(format!("p{}-{}", i % 2, i / 2))
                .key("eur")
                .partition(i % 2)
        })
        .collect();
    producer.send_all("quotes", &records).unwrap();

    // Both subscribers get all 20, each partition in order, none twice.
    for (n, client) in clients.iter_mut().enumerate() {
        let mut next = [0u32; 2];
        for _ in 0..20 {
            let message = text(client).await;
            let (partition, seq) = message
                .strip_prefix('p')
                .and_then(|m| m.split_once('-'))
                .and_then(|(p, s)| Some((p.parse::<usize>().ok()?, s.parse::<u32>().ok()?)))
                .unwrap_or_else(|| panic!("node {}: {message:?}", n + 1));
            assert_eq!(seq, next[partition], "node {}: {message}", n + 1);
            next[partition] += 1;
        }
        assert_eq!(next, [10, 10]);
    }
}
