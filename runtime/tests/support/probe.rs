//! Talking to the test-only `handler-probe` plugin (plugins/handler-probe):
//! it greets each connection with `open ID` and answers one-line commands.

use tokio_tungstenite::tungstenite::Message;

use super::ws::Client;

/// Connects to `url` and reads the probe's `open ID` greeting.
pub async fn open(url: &str) -> (Client, u64) {
    let mut client = Client::connect(url).await;
    let greeting = text(&mut client).await;
    let id = greeting
        .strip_prefix("open ")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("expected `open ID`, got {greeting:?}"));
    (client, id)
}

/// The next data message, which must be text.
pub async fn text(client: &mut Client) -> String {
    match client.next_data().await {
        Message::Text(text) => text.to_string(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// Sends `command` and returns the next text message.
pub async fn ask(client: &mut Client, command: &str) -> String {
    client.send(Message::text(command)).await;
    text(client).await
}
