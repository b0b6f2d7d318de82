//! Test-only handler. Each text message is a command:
//!
//! | message | actions |
//! |---|---|
//! | `join C` / `leave C` | join / leave channel `C`, then reply `joined C` / `left C` |
//! | `broadcast C TEXT` | broadcast `TEXT` to channel `C` |
//! | `send ID TEXT` | send `TEXT` to connection `ID` |
//! | `publish TEXT` | publish `TEXT` to the sink topic, then reply `published` |
//! | `publish-to TOPIC TEXT` | publish `TEXT` to `TOPIC`, then reply `published` |
//! | `later MS TEXT` | reply `TEXT` after `MS` milliseconds |
//! | `close CODE REASON` | close with `CODE` and `REASON` |
//! | `whoami` | reply with the connection id, path, principal and params |
//! | `count` | reply with how many messages this connection sent (state) |
//! | `trap` | panic (the host closes with 1011) |
//! | `loop` | spin forever (the host's deadline stops it) |
//! | `bad-channel` | join an invalid channel (an invalid return) |
//!
//! Anything else, and binary frames, are echoed. `on-open` replies
//! `open ID`; `on-close` replies `bye` (delivered before the close echo
//! when the peer started the close). `on-tick` sends `tick N` to every
//! connection when the config says `{ "ticks": true }`.

use std::collections::HashMap;

use sluice_sdk::{Action, Config, Connection, Handler, Message, Publish};

#[derive(Default)]
struct Probe {
    counts: HashMap<u64, u64>,
    conns: HashMap<u64, Connection>,
    ticks: Option<u64>,
}

impl Handler for Probe {
    fn new(config: &Config) -> Result<Self, String> {
        let ticks = config.value().get("ticks").and_then(|v| v.as_bool()) == Some(true);
        Ok(Self {
            ticks: ticks.then_some(0),
            ..Self::default()
        })
    }

    fn on_open(&mut self, conn: Connection) -> Vec<Action> {
        let id = conn.id;
        self.conns.insert(id, conn);
        vec![Action::reply(Message::text(format!("open {id}")))]
    }

    fn on_message(&mut self, conn_id: u64, msg: Message) -> Vec<Action> {
        *self.counts.entry(conn_id).or_default() += 1;
        let Some(text) = msg.as_str().map(str::to_owned) else {
            return vec![Action::reply(msg)];
        };
        let mut words = text.splitn(3, ' ');
        let command = words.next().unwrap_or_default();
        let (a, b) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        let reply = |s: String| Action::reply(Message::text(s));
        match command {
            "join" => vec![Action::Join(a.into()), reply(format!("joined {a}"))],
            "leave" => vec![Action::Leave(a.into()), reply(format!("left {a}"))],
            "broadcast" => vec![Action::Broadcast((a.into(), Message::text(b)))],
            "send" => vec![Action::Send((a.parse().unwrap_or(0), Message::text(b)))],
            "publish" => vec![
                publish(None, &text["publish ".len()..]),
                reply("published".into()),
            ],
            "publish-to" => vec![publish(Some(a), b), reply("published".into())],
            "later" => vec![Action::ReplyLater((
                a.parse().unwrap_or(0),
                Message::text(b),
            ))],
            "close" => vec![Action::Close((a.parse().unwrap_or(1000), b.into()))],
            "whoami" => {
                let conn = &self.conns[&conn_id];
                let principal = conn.principal.as_ref().map_or("-", |p| p.id.as_str());
                let params: Vec<String> = conn
                    .params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                vec![reply(format!(
                    "{} {} {principal} {}",
                    conn.id,
                    conn.path,
                    params.join(",")
                ))]
            }
            "count" => vec![reply(self.counts[&conn_id].to_string())],
            // What the host's presence says of room `a` and the pipeline.
            "presence" => {
                let members: Vec<String> = sluice_sdk::presence::channel_members(a, 100)
                    .iter()
                    .map(|m| format!("{}@{}", m.id, m.node))
                    .collect();
                vec![reply(format!(
                    "presence {a} {} of {}: {}",
                    sluice_sdk::presence::channel_count(a),
                    sluice_sdk::presence::connection_count(),
                    members.join(",")
                ))]
            }
            "trap" => panic!("probe asked to trap"),
            #[allow(clippy::empty_loop)]
            "loop" => loop {},
            "bad-channel" => vec![Action::Join(String::new())],
            _ => vec![Action::reply(msg)],
        }
    }

    fn on_close(&mut self, conn_id: u64, _code: u16, _reason: String) -> Vec<Action> {
        self.counts.remove(&conn_id);
        self.conns.remove(&conn_id);
        vec![Action::reply(Message::text("bye"))]
    }

    fn on_tick(&mut self, _now_ms: u64, connections: Vec<u64>) -> Vec<Action> {
        let Some(n) = self.ticks.as_mut() else {
            return Vec::new();
        };
        *n += 1;
        let n = *n;
        connections
            .into_iter()
            .map(|id| Action::Send((id, Message::text(format!("tick {n}")))))
            .collect()
    }
}

fn publish(topic: Option<&str>, text: &str) -> Action {
    Action::Publish(Publish {
        topic: topic.map(str::to_owned),
        key: None,
        payload: text.as_bytes().to_vec(),
        headers: Vec::new(),
    })
}

sluice_sdk::export_handler!(Probe);
