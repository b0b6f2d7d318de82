//! `{{name}}`: a Sluice handler for an interactive endpoint. It greets each
//! connection and echoes every message back, numbered per connection:
//! `1: hello`, `2: again`, ... The greeting comes from the pipeline file.

use std::collections::HashMap;

use serde::Deserialize;
use sluice_sdk::{Action, Config, Connection, Handler, Message};

/// This plugin's `config` table in `pipeline.toml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Sent to each connection when it opens.
    #[serde(default = "default_greeting")]
    greeting: String,
}

fn default_greeting() -> String {
    "welcome".into()
}

struct CountingEcho {
    greeting: String,
    /// Messages seen so far, per open connection.
    counts: HashMap<u64, u64>,
}

impl Handler for CountingEcho {
    fn new(config: &Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        Ok(CountingEcho {
            greeting: settings.greeting,
            counts: HashMap::new(),
        })
    }

    fn on_open(&mut self, conn: Connection) -> Vec<Action> {
        self.counts.insert(conn.id, 0);
        vec![Action::reply(Message::text(self.greeting.clone()))]
    }

    fn on_message(&mut self, conn_id: u64, msg: Message) -> Vec<Action> {
        // An unknown id is fine: the host may have rebuilt this instance.
        let count = self.counts.entry(conn_id).or_default();
        *count += 1;
        let text = format!("{count}: {}", msg.as_str().unwrap_or("<binary>"));
        vec![Action::reply(Message::text(text))]
    }

    fn on_close(&mut self, conn_id: u64, _code: u16, _reason: String) -> Vec<Action> {
        self.counts.remove(&conn_id);
        Vec::new()
    }
}

sluice_sdk::export_handler!(CountingEcho);

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(id: u64) -> Connection {
        Connection {
            id,
            path: "/echo".into(),
            params: Vec::new(),
            principal: None,
            remote_addr: "127.0.0.1:50000".into(),
            subprotocol: None,
        }
    }

    fn replies(actions: Vec<Action>) -> Vec<String> {
        actions
            .into_iter()
            .map(|action| match action {
                Action::Reply(msg) => msg.as_str().unwrap().to_owned(),
                _ => panic!("expected only replies"),
            })
            .collect()
    }

    #[test]
    fn greets_then_numbers_each_connections_messages() {
        let config = Config::from_json(r#"{"greeting": "hi"}"#).unwrap();
        let mut echo = CountingEcho::new(&config).unwrap();
        assert_eq!(replies(echo.on_open(connection(1))), ["hi"]);
        assert_eq!(replies(echo.on_open(connection(2))), ["hi"]);
        assert_eq!(replies(echo.on_message(1, Message::text("a"))), ["1: a"]);
        assert_eq!(replies(echo.on_message(1, Message::text("b"))), ["2: b"]);
        assert_eq!(replies(echo.on_message(2, Message::text("c"))), ["1: c"]);
    }
}
