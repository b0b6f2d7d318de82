//! Seed 003's test patterns against `examples/seed003-mock.toml`, run by the
//! real binary, with real WebSocket clients: echo, binary echo, 100
//! concurrent connections each getting its own answer, reconnection, ping
//! -> pong, the close handshake, rooms isolation, and the other handler
//! kinds (static, pattern with a delayed follow-up, pattern with
//! per-connection state, JSON-RPC, scheduled).

mod support;

use serde_json::json;
use support::Sluice;
use support::ws::Client;
use tokio_tungstenite::tungstenite::Message;

fn start(dir: &std::path::Path) -> Sluice {
    let file = support::example("seed003-mock.toml", &[("127.0.0.1:8090", "127.0.0.1:0")]);
    Sluice::start(dir, "seed003", &file, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_returns_text_and_binary_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());
    let mut client = Client::connect(&format!("{}/echo", sluice.base)).await;
    for text in ["hello", "world", "test"] {
        client.send(Message::text(text)).await;
        assert_eq!(client.next().await, Message::text(text));
    }
    let bytes = vec![0u8, 1, 2, 3, 4, 5];
    client.send(Message::binary(bytes.clone())).await;
    assert_eq!(client.next().await, Message::binary(bytes));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_connections_each_get_their_own_answer() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());
    let url = format!("{}/api", sluice.base);
    let clients = (0..100).map(|i| {
        let url = url.clone();
        tokio::spawn(async move {
            let mut client = Client::connect(&url).await;
            client.send_json(&json!({ "id": i })).await;
            let reply = client.next_json().await;
            assert_eq!(reply, json!({"type": "reply", "id": i}));
        })
    });
    for client in clients.collect::<Vec<_>>() {
        client.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_can_reconnect_after_dropping_its_connection() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());
    let url = format!("{}/echo", sluice.base);
    let first = Client::connect(&url).await;
    drop(first);
    let mut second = Client::connect(&url).await;
    second.send(Message::text("test")).await;
    assert_eq!(second.next().await, Message::text("test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_gets_a_pong_and_a_close_gets_its_echo() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());
    let mut client = Client::connect(&format!("{}/echo", sluice.base)).await;
    client.send(Message::Ping(vec![1u8, 2, 3].into())).await;
    assert_eq!(client.next().await, Message::Pong(vec![1u8, 2, 3].into()));
    client.close(1000, "test complete").await;
    assert_eq!(client.expect_close().await, (1000, "test complete".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_in_room_a_never_reaches_room_b() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());
    let url = format!("{}/chat", sluice.base);
    let (mut a1, mut a2, mut b1) = (
        Client::connect(&url).await,
        Client::connect(&url).await,
        Client::connect(&url).await,
    );
    let join = |room: &str| json!({"action": "join", "room": room});
    a1.send_json(&join("A")).await;
    assert_eq!(a1.next_json().await["type"], "user_joined");
    a2.send_json(&join("A")).await;
    let joined = a2.next_json().await;
    assert_eq!(
        (joined["type"].clone(), joined["room"].clone()),
        (json!("user_joined"), json!("A"))
    );
    // a1 is in A too, so it hears a2 arrive.
    assert_eq!(a1.next_json().await["user"], joined["user"]);
    b1.send_json(&join("B")).await;
    assert_eq!(b1.next_json().await["room"], "B");

    a1.send_json(&json!({"action": "message", "room": "A", "text": "for A"}))
        .await;
    for member in [&mut a1, &mut a2] {
        let chat = member.next_json().await;
        assert_eq!(
            (chat["type"].clone(), chat["text"].clone()),
            (json!("chat"), json!("for A"))
        );
    }
    // Room A's broadcast is complete (a2 has it). Had b1 been subscribed to
    // A, that message would be queued ahead of anything sent to B now.
    b1.send_json(&json!({"action": "message", "room": "B", "text": "for B"}))
        .await;
    let chat = b1.next_json().await;
    assert_eq!(
        (chat["room"].clone(), chat["text"].clone()),
        (json!("B"), json!("for B"))
    );

    // Leaving is announced to those who stay.
    a2.send_json(&json!({"action": "leave", "room": "A"})).await;
    assert_eq!(a1.next_json().await["type"], "user_left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_pattern_jsonrpc_and_scheduled_handlers_answer_as_configured() {
    let dir = tempfile::tempdir().unwrap();
    let sluice = start(dir.path());

    // static: on connect, on each message, and on close (before the echo).
    let mut status = Client::connect(&format!("{}/status", sluice.base)).await;
    assert_eq!(
        status.next_json().await,
        json!({"type": "connected", "server": "sluice"})
    );
    status.send(Message::text("anything")).await;
    assert_eq!(
        status.next_json().await,
        json!({"type": "ack", "received": true})
    );
    status.close(1000, "").await;
    assert_eq!(status.next_json().await, json!({"type": "goodbye"}));
    assert_eq!(status.expect_close().await.0, 1000);

    // pattern: templates, and a delayed follow-up after the immediate reply.
    let mut api = Client::connect(&format!("{}/api", sluice.base)).await;
    api.send_json(&json!({"type": "subscribe", "channel": "orders"}))
        .await;
    let subscribed = api.next_json().await;
    assert_eq!(subscribed["channel"], "orders");
    assert_eq!(subscribed["id"].as_str().unwrap().len(), 36, "{subscribed}");
    api.send_json(&json!({"type": "request"})).await;
    assert_eq!(api.next_json().await, json!({"type": "processing"}));
    assert_eq!(
        api.next_json().await,
        json!({"type": "complete", "result": "done"})
    );
    api.send_json(&json!({"type": "nothing-matches"})).await;
    assert_eq!(api.next_json().await["type"], "error");

    // pattern with per-connection state: each connection authenticates on
    // its own; the subscriptions it keeps are its own.
    let url = format!("{}/stateful", sluice.base);
    let (mut alice, mut bob) = (Client::connect(&url).await, Client::connect(&url).await);
    alice
        .send_json(&json!({"type": "auth", "token": "valid-token"}))
        .await;
    assert_eq!(alice.next_json().await, json!({"type": "auth_success"}));
    for channel in ["orders", "trades"] {
        alice
            .send_json(&json!({"type": "subscribe", "channel": channel}))
            .await;
    }
    assert_eq!(alice.next_json().await["subscriptions"], json!(["orders"]));
    assert_eq!(
        alice.next_json().await["subscriptions"],
        json!(["orders", "trades"])
    );
    bob.send_json(&json!({"type": "subscribe", "channel": "orders"}))
        .await;
    assert_eq!(
        bob.next_json().await,
        json!({"type": "error", "error": "authenticate first"})
    );

    // JSON-RPC 2.0.
    let mut rpc = Client::connect(&format!("{}/jsonrpc", sluice.base)).await;
    rpc.send_json(&json!({"jsonrpc": "2.0", "method": "user.get", "params": {"id": 42}, "id": 1}))
        .await;
    let reply = rpc.next_json().await;
    assert_eq!(reply["id"], 1);
    assert_eq!(reply["result"]["id"], 42);
    assert_eq!(reply["result"]["name"], "John Doe");
    rpc.send_json(&json!({"jsonrpc": "2.0", "method": "nope", "id": 2}))
        .await;
    let reply = rpc.next_json().await;
    assert_eq!(reply["error"]["code"], -32601);
    assert_eq!(reply["id"], 2);

    // scheduled: a price update within the configured range.
    let mut ticker = Client::connect(&format!("{}/ticker", sluice.base)).await;
    let update = ticker.next_json().await;
    assert_eq!(update["type"], "price_update");
    let price = update["price"].as_f64().unwrap();
    assert!((40_000.0..50_000.0).contains(&price), "{update}");
}
