//! The tables most test pipeline files start with, written once:
//! `[admin]` (optional), `[kafka]` (optional) and one listener `public` on
//! an ephemeral loopback port; a test appends its own tenants and pipelines.

/// What goes before a test's own tables.
#[derive(Debug, Default, Clone, Copy)]
pub struct Preamble<'a> {
    /// `[kafka] brokers = ...`, when the file uses Kafka.
    pub brokers: Option<&'a str>,
    /// More keys of `[kafka]` (e.g. `compression = "zstd"`), with `brokers`.
    pub kafka: &'a str,
    /// `[admin]` on an ephemeral port with this token (a literal, or the
    /// TOML of an `{ env = "..." }` table when it starts with `{`).
    pub admin_token: Option<&'a str>,
    /// More keys of the listener (e.g. `connections_per_ip = {...}`).
    pub listener: &'a str,
}

impl Preamble<'_> {
    /// The tables, ending in the listener's keys.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if let Some(token) = self.admin_token {
            let value = if token.starts_with('{') {
                token.to_owned()
            } else {
                format!("{token:?}")
            };
            text.push_str(&format!(
                "[admin]\naddress = \"127.0.0.1:0\"\ntoken = {value}\n\n"
            ));
        }
        if let Some(brokers) = self.brokers {
            text.push_str(&format!("[kafka]\nbrokers = {brokers:?}\n"));
            if !self.kafka.is_empty() {
                text.push_str(self.kafka.trim());
                text.push('\n');
            }
            text.push('\n');
        }
        text.push_str("[[listeners]]\nname = \"public\"\naddress = \"127.0.0.1:0\"\n");
        if !self.listener.is_empty() {
            text.push_str(self.listener.trim());
            text.push('\n');
        }
        text
    }

    /// The preamble, then `rest`.
    pub fn then(&self, rest: &str) -> String {
        format!("{}\n{}", self.text(), rest.trim_start_matches('\n'))
    }
}

/// `[kafka]` on the broker at `bootstrap`, and one listener.
pub fn on_broker(bootstrap: &str) -> String {
    Preamble {
        brokers: Some(bootstrap),
        ..Preamble::default()
    }
    .text()
}

/// One listener, no Kafka.
pub fn listener_only() -> String {
    Preamble::default().text()
}
