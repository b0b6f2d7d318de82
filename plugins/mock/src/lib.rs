//! Placeholder: echoes every message.

use sluice_sdk::{Action, Config, Handler, Message};

struct Echo;

impl Handler for Echo {
    fn new(_config: &Config) -> Result<Self, String> {
        Ok(Self)
    }

    fn on_message(&mut self, _conn_id: u64, msg: Message) -> Vec<Action> {
        vec![Action::reply(msg)]
    }
}

sluice_sdk::export_handler!(Echo);
