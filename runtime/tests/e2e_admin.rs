//! The admin REST API against the real binary: what it lists is what real
//! WebSocket clients did; its messages, broadcasts and closes reach them;
//! tenant tokens are confined to their tenant; and schemathesis checks the
//! running API against `docs/admin-openapi.yaml`. The pipelines run the
//! test-only `handler-probe`, so no broker is needed.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use support::Sluice;
use support::http::{self, Response};
use support::ws::Client;
use tokio_tungstenite::tungstenite::Message;

const OPERATOR: &str = "operator-token-0123456789abcdef";
const ACME: &str = "acme-admin-token-0123456789";
const GLOBEX: &str = "globex-admin-token-0123456789";
/// `alice:wonderland`, for the acme pipeline's basic-auth.
const ALICE: &str = "Basic YWxpY2U6d29uZGVybGFuZA==";

/// A running sluice with an admin API: the process, `host:port` of its
/// WebSocket listener and of its admin API.
struct Admin {
    _sluice: Sluice,
    ws: String,
    api: String,
}

/// Two tenants, each with a probe pipeline; acme's authenticates (alice)
/// and limits its handler.
fn start(dir: &std::path::Path) -> Admin {
    let probe = sluice_runtime::builtin::artifact("handler-probe").expect("probe is built");
    let file = format!(
        r#"
[admin]
address = "127.0.0.1:0"
token = {{ env = "TEST_ADMIN_TOKEN" }}

[[listeners]]
name = "public"
address = "127.0.0.1:0"

[[tenants]]
name = "acme"
admin_token = {{ env = "TEST_ACME_ADMIN_TOKEN" }}

[[tenants]]
name = "globex"
admin_token = "{GLOBEX}"

[[pipelines]]
name = "acme-chat"
tenant = "acme"
path = "/acme/{{channel}}"
[pipelines.auth]
plugin = "basic-auth"
config = {{ users = {{ alice = "wonderland" }} }}
[pipelines.handler]
plugin = "{probe}"
limits = {{ memory_bytes = 16777216, deadline_ms = 40 }}

[[pipelines]]
name = "globex-chat"
tenant = "globex"
path = "/globex/{{channel}}"
[pipelines.handler]
plugin = "{probe}"
"#
    );
    let path = dir.join("admin.toml");
    std::fs::write(&path, file).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", path.to_str().unwrap()])
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("TEST_ADMIN_TOKEN", OPERATOR)
        .env("TEST_ACME_ADMIN_TOKEN", ACME)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (mut ws, mut api) = (None, None);
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some((_, url)) = line.split_once(": ws://") {
            ws = Some(url.split('/').next().unwrap().to_owned());
        }
        if let Some(url) = line.strip_prefix("admin API: http://") {
            api = Some(url.to_owned());
        }
        if line == "ready" {
            break;
        }
    }
    let ws = ws.expect("sluice printed its WebSocket address before `ready`");
    Admin {
        _sluice: Sluice {
            child,
            base: format!("ws://{ws}"),
            admin: api.clone(),
            embedded: None,
        },
        ws,
        api: api.expect("sluice printed its admin API address before `ready`"),
    }
}

impl Admin {
    /// `method path` with `token` (if any) and a body of `content_type`.
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(&str, &[u8])>,
    ) -> Response {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = Vec::new();
        if let Some(bearer) = &bearer {
            headers.push(("Authorization", bearer.as_str()));
        }
        if let Some((content_type, _)) = body {
            headers.push(("Content-Type", content_type));
        }
        let body = body.map_or(&[][..], |(_, b)| b);
        http::request(&self.api, method, path, &headers, body).await
    }

    async fn get(&self, path: &str, token: &str) -> Response {
        self.call("GET", path, Some(token), None).await
    }

    /// Connects to `path` (with `headers`) and reads the probe's greeting:
    /// the client and its connection id.
    async fn connect(&self, path: &str, headers: &[(&'static str, &str)]) -> (Client, u64) {
        let url = format!("ws://{}{path}", self.ws);
        let mut client = Client::connect_with(&url, headers)
            .await
            .unwrap_or_else(|r| panic!("{url} refused: {r:?}"));
        let greeting = text(client.next().await);
        let id = greeting
            .strip_prefix("open ")
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("not a greeting: {greeting}"));
        (client, id)
    }
}

fn text(message: Message) -> String {
    match message {
        Message::Text(text) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// Reads until the server's close frame (skipping the probe's `bye` and
/// anything else) and returns its code and reason.
async fn close_frame(client: &mut Client) -> (u16, String) {
    loop {
        match client.next().await {
            Message::Close(Some(frame)) => return (frame.code.into(), frame.reason.to_string()),
            Message::Close(None) => return (1005, String::new()),
            _ => {}
        }
    }
}

/// The connection with `id` in a `/connections` listing.
fn listed(list: &Value, id: u64) -> Option<&Value> {
    list["connections"]
        .as_array()
        .expect("a connections array")
        .iter()
        .find(|c| c["id"] == id)
}

fn ids(list: &Value) -> Vec<u64> {
    list["connections"]
        .as_array()
        .expect("a connections array")
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_listed_with_what_their_clients_did() {
    let dir = tempfile::tempdir().unwrap();
    let admin = start(dir.path());
    let (mut alice, id) = admin
        .connect("/acme/room1", &[("authorization", ALICE)])
        .await;
    let (_other, other_id) = admin.connect("/globex/news", &[]).await;
    alice.send(Message::text("join lobby")).await;
    assert_eq!(text(alice.next().await), "joined lobby");
    alice.send(Message::text("hello")).await;
    assert_eq!(text(alice.next().await), "hello");

    let list = admin.get("/connections", OPERATOR).await;
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(
        list.header("content-type"),
        Some("application/json"),
        "{list:?}"
    );
    let list = list.json();
    assert_eq!(list["count"], 2);
    assert_eq!(ids(&list), vec![id, other_id]);

    let one = admin.get(&format!("/connections/{id}"), OPERATOR).await;
    assert_eq!(one.status, 200, "{}", one.text());
    let one = one.json();
    assert_eq!(listed(&list, id).unwrap()["path"], one["path"]);
    assert_eq!(one["id"], id);
    assert_eq!(one["node"], 0, "no [cluster]: node 0");
    assert_eq!(one["tenant"], "acme");
    assert_eq!(one["pipeline"], "acme-chat");
    assert_eq!(one["path"], "/acme/room1");
    assert_eq!(one["channels"], json!(["lobby", "room1"]));
    assert_eq!(one["principal"], "alice");
    assert!(
        one["remote_addr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{one}"
    );
    assert!(one["opened_at"].as_str().unwrap().ends_with('Z'), "{one}");
    let age = one["age_seconds"].as_f64().unwrap();
    assert!((0.0..60.0).contains(&age), "{one}");
    assert_eq!(one["queue_depth"], 0);
    assert_eq!(one["dropped"], 0);
    assert_eq!(one["messages_in"], 2);
    assert_eq!(one["bytes_in"], ("join lobby".len() + "hello".len()) as u64);
    // The greeting, `joined lobby` and the echo.
    assert_eq!(one["messages_out"], 3);
    assert_eq!(
        one["bytes_out"],
        (format!("open {id}").len() + "joined lobby".len() + "hello".len()) as u64
    );

    let other = admin
        .get(&format!("/connections/{other_id}"), OPERATOR)
        .await;
    let other = other.json();
    assert_eq!(other["tenant"], "globex");
    assert_eq!(other["principal"], Value::Null);
    assert_eq!(other["channels"], json!(["news"]));

    // Filters.
    let acme = admin.get("/connections?tenant=acme", OPERATOR).await.json();
    assert_eq!(ids(&acme), vec![id]);
    let globex = admin
        .get("/connections?pipeline=globex-chat", OPERATOR)
        .await
        .json();
    assert_eq!(ids(&globex), vec![other_id]);
    let none = admin
        .get("/connections?tenant=acme&pipeline=globex-chat", OPERATOR)
        .await
        .json();
    assert_eq!(none["count"], 0);

    // A connection that ended is no longer listed.
    alice.close(1000, "done").await;
    let mut gone = false;
    for _ in 0..100 {
        if admin
            .get(&format!("/connections/{id}"), OPERATOR)
            .await
            .status
            == 404
        {
            gone = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(gone, "connection {id} still listed after it closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_broadcasts_and_closes_reach_the_clients() {
    let dir = tempfile::tempdir().unwrap();
    let admin = start(dir.path());
    let (mut a, a_id) = admin.connect("/globex/room1", &[]).await;
    let (mut b, b_id) = admin.connect("/globex/room1", &[]).await;
    let (mut c, c_id) = admin.connect("/globex/room2", &[]).await;

    // A text message (text/plain or JSON) and a binary one, to one connection.
    let path = format!("/connections/{a_id}/messages");
    let sent = admin
        .call("POST", &path, Some(OPERATOR), Some(("text/plain", b"hi a")))
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text());
    assert_eq!(
        sent.json(),
        json!({"connection": a_id, "queued": true, "dropped_oldest": false})
    );
    assert_eq!(text(a.next().await), "hi a");
    let sent = admin
        .call(
            "POST",
            &path,
            Some(OPERATOR),
            Some(("application/json", br#"{"n":1}"#)),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text());
    assert_eq!(text(a.next().await), r#"{"n":1}"#);
    let sent = admin
        .call(
            "POST",
            &path,
            Some(OPERATOR),
            Some(("application/octet-stream", &[0, 159, 255])),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text());
    assert_eq!(a.next().await, Message::binary(vec![0u8, 159, 255]));

    // A broadcast reaches the channel's subscribers only, and says how many.
    let broadcast = admin
        .call(
            "POST",
            "/pipelines/globex-chat/broadcast?channel=room1",
            Some(OPERATOR),
            Some(("text/plain; charset=utf-8", b"to room1")),
        )
        .await;
    assert_eq!(broadcast.status, 202, "{}", broadcast.text());
    assert_eq!(
        broadcast.json(),
        json!({"pipeline": "globex-chat", "channel": "room1", "delivered": 2, "subscribers_elsewhere": 0})
    );
    assert_eq!(text(a.next().await), "to room1");
    assert_eq!(text(b.next().await), "to room1");
    c.send(Message::text("ping-c")).await;
    assert_eq!(text(c.next().await), "ping-c", "room2 got the broadcast");
    let empty = admin
        .call(
            "POST",
            "/pipelines/globex-chat/broadcast?channel=nobody",
            Some(OPERATOR),
            Some(("text/plain", b"x")),
        )
        .await;
    assert_eq!(empty.json()["delivered"], 0);

    // Close with a code and reason from a JSON body, and from the query.
    let close = admin
        .call(
            "DELETE",
            &format!("/connections/{a_id}"),
            Some(OPERATOR),
            Some((
                "application/json",
                br#"{"code": 4001, "reason": "bye now"}"#,
            )),
        )
        .await;
    assert_eq!(close.status, 202, "{}", close.text());
    assert_eq!(
        close.json(),
        json!({"connection": a_id, "closing": true, "code": 4001, "reason": "bye now"})
    );
    // Closing: nothing more is queued for it.
    let late = admin
        .call("POST", &path, Some(OPERATOR), Some(("text/plain", b"late")))
        .await;
    assert!(
        [409, 404].contains(&late.status),
        "{} {}",
        late.status,
        late.text()
    );
    assert_eq!(close_frame(&mut a).await, (4001, "bye now".to_owned()));

    let close = admin
        .call(
            "DELETE",
            &format!("/connections/{b_id}?code=1001&reason=going%20away"),
            Some(OPERATOR),
            None,
        )
        .await;
    assert_eq!(close.status, 202, "{}", close.text());
    assert_eq!(close_frame(&mut b).await, (1001, "going away".to_owned()));

    // Codes a server may not send and over-long reasons are refused.
    for query in ["code=1005", "code=1002", "code=5000", "code=abc"] {
        let refused = admin
            .call(
                "DELETE",
                &format!("/connections/{c_id}?{query}"),
                Some(OPERATOR),
                None,
            )
            .await;
        assert_eq!(refused.status, 400, "{query}: {}", refused.text());
        assert!(refused.json()["error"].is_string());
    }
    let long = format!(r#"{{"reason": "{}"}}"#, "é".repeat(62));
    let refused = admin
        .call(
            "DELETE",
            &format!("/connections/{c_id}"),
            Some(OPERATOR),
            Some(("application/json", long.as_bytes())),
        )
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    // c is still open.
    c.send(Message::text("still here")).await;
    assert_eq!(text(c.next().await), "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_are_listed_with_their_plugins() {
    let dir = tempfile::tempdir().unwrap();
    let admin = start(dir.path());
    let (_client, _) = admin.connect("/globex/x", &[]).await;
    let list = admin.get("/pipelines", OPERATOR).await;
    assert_eq!(list.status, 200, "{}", list.text());
    let list = list.json();
    assert_eq!(list["count"], 2);
    let probe = sluice_runtime::builtin::artifact("handler-probe").unwrap();
    let probe_hash = sluice_runtime::plugin::content_hash(&std::fs::read(probe).unwrap());
    let auth_hash = sluice_runtime::plugin::content_hash(
        sluice_runtime::builtin::embedded("basic-auth").unwrap(),
    );
    let default_memory = sluice_runtime::plugin::Limits::default().memory_bytes;
    let default_deadline = sluice_runtime::plugin::Limits::default().deadline_ms;
    assert_eq!(
        list["pipelines"],
        json!([
            {
                "name": "acme-chat",
                "tenant": "acme",
                "listener": "public",
                "path": "/acme/{channel}",
                "connections": 0,
                "cluster_connections": 0,
                "plugins": [
                    {
                        "slot": "auth",
                        "name": "basic-auth",
                        "hash": auth_hash,
                        "limits": {"memory_bytes": default_memory, "deadline_ms": default_deadline},
                    },
                    {
                        "slot": "handler",
                        "name": probe,
                        "hash": probe_hash,
                        "limits": {"memory_bytes": 16777216, "deadline_ms": 40},
                    },
                ],
            },
            {
                "name": "globex-chat",
                "tenant": "globex",
                "listener": "public",
                "path": "/globex/{channel}",
                "connections": 1,
                "cluster_connections": 1,
                "plugins": [
                    {
                        "slot": "handler",
                        "name": probe,
                        "hash": probe_hash,
                        "limits": {"memory_bytes": default_memory, "deadline_ms": default_deadline},
                    },
                ],
            },
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_tokens_see_and_act_on_their_own_tenant_only() {
    let dir = tempfile::tempdir().unwrap();
    let admin = start(dir.path());
    let (mut alice, acme_id) = admin
        .connect("/acme/room1", &[("authorization", ALICE)])
        .await;
    let (mut globex, globex_id) = admin.connect("/globex/room1", &[]).await;

    // Listing: each tenant sees its own.
    let acme_list = admin.get("/connections", ACME).await.json();
    assert_eq!(ids(&acme_list), vec![acme_id]);
    let globex_list = admin.get("/connections", GLOBEX).await.json();
    assert_eq!(ids(&globex_list), vec![globex_id]);
    assert_eq!(
        ids(&admin.get("/connections?tenant=acme", ACME).await.json()),
        vec![acme_id]
    );
    let forbidden = admin.get("/connections?tenant=globex", ACME).await;
    assert_eq!(forbidden.status, 403, "{}", forbidden.text());
    assert!(forbidden.json()["error"].is_string());
    let pipelines = admin.get("/pipelines", ACME).await.json();
    assert_eq!(pipelines["count"], 1);
    assert_eq!(pipelines["pipelines"][0]["name"], "acme-chat");
    // Health too: a tenant sees its own pipelines' verdicts and counts.
    let health = admin.get("/health", ACME).await.json();
    let names: Vec<&str> = health["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names, ["acme-chat"], "{health}");
    assert_eq!(health["connections"], 1, "{health}");

    // Another tenant's connection: not shown, messaged or closed, and
    // answered as one that does not exist (no existence oracle).
    let other = format!("/connections/{globex_id}");
    let unknown = admin
        .get(&format!("/connections/{}", globex_id + 1000), ACME)
        .await;
    let hidden = admin.get(&other, ACME).await;
    assert_eq!((hidden.status, unknown.status), (404, 404));
    assert_eq!(
        hidden.json()["error"],
        format!("no open connection {globex_id}").as_str()
    );
    let message = admin
        .call(
            "POST",
            &format!("{other}/messages"),
            Some(ACME),
            Some(("text/plain", b"not yours")),
        )
        .await;
    assert_eq!(message.status, 404, "{}", message.text());
    let close = admin.call("DELETE", &other, Some(ACME), None).await;
    assert_eq!(close.status, 404, "{}", close.text());
    let broadcast = admin
        .call(
            "POST",
            "/pipelines/globex-chat/broadcast?channel=room1",
            Some(ACME),
            Some(("text/plain", b"not yours")),
        )
        .await;
    assert_eq!(broadcast.status, 404, "{}", broadcast.text());
    assert_eq!(broadcast.json()["error"], "no pipeline `globex-chat`");
    // ... and globex's client got none of it.
    globex.send(Message::text("only mine")).await;
    assert_eq!(text(globex.next().await), "only mine");

    // Its own: allowed.
    let mine = admin
        .call(
            "POST",
            &format!("/connections/{acme_id}/messages"),
            Some(ACME),
            Some(("text/plain", b"for alice")),
        )
        .await;
    assert_eq!(mine.status, 202, "{}", mine.text());
    assert_eq!(text(alice.next().await), "for alice");
    let broadcast = admin
        .call(
            "POST",
            "/pipelines/acme-chat/broadcast?channel=room1",
            Some(ACME),
            Some(("text/plain", b"acme news")),
        )
        .await;
    assert_eq!(broadcast.json()["delivered"], 1);
    assert_eq!(text(alice.next().await), "acme news");
    let close = admin
        .call(
            "DELETE",
            &format!("/connections/{acme_id}?code=4000"),
            Some(ACME),
            None,
        )
        .await;
    assert_eq!(close.status, 202, "{}", close.text());
    assert_eq!(
        close_frame(&mut alice).await,
        (4000, "closed by an operator".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_json_errors_with_the_right_status() {
    let dir = tempfile::tempdir().unwrap();
    let admin = start(dir.path());
    let (_client, id) = admin.connect("/globex/x", &[]).await;

    // No token, a wrong one, another scheme: 401 with the challenge.
    for token in [None, Some("wrong-token-0123456789")] {
        for path in ["/connections", "/pipelines", "/connections/1"] {
            let refused = admin.call("GET", path, token, None).await;
            assert_eq!(refused.status, 401, "{path} {token:?}");
            let challenge = refused.header("www-authenticate").unwrap();
            assert!(
                challenge.starts_with(r#"Bearer realm="sluice-admin""#),
                "{challenge}"
            );
            assert!(refused.json()["error"].is_string());
        }
    }
    let basic = http::request(
        &admin.api,
        "GET",
        "/connections",
        &[("Authorization", ALICE)],
        b"",
    )
    .await;
    assert_eq!(basic.status, 401);

    let status = |r: Response| {
        assert!(r.json()["error"].is_string(), "{}", r.text());
        r.status
    };
    assert_eq!(status(admin.get("/nowhere", OPERATOR).await), 404);
    assert_eq!(
        status(admin.get("/connections/999999", OPERATOR).await),
        404
    );
    assert_eq!(status(admin.get("/connections/abc", OPERATOR).await), 400);
    assert_eq!(status(admin.get("/connections/0", OPERATOR).await), 400);
    let wrong_method = admin
        .call("PUT", "/connections", Some(OPERATOR), None)
        .await;
    assert_eq!(wrong_method.header("allow"), Some("GET"));
    assert_eq!(status(wrong_method), 405);
    let wrong_method = admin
        .call("POST", &format!("/connections/{id}"), Some(OPERATOR), None)
        .await;
    assert_eq!(wrong_method.header("allow"), Some("GET, DELETE"));
    assert_eq!(status(wrong_method), 405);

    let messages = format!("/connections/{id}/messages");
    // Refused by its declared size, before any of it is read.
    let bearer = format!("Bearer {OPERATOR}");
    let too_large = http::request_declaring(
        &admin.api,
        "POST",
        &messages,
        &[("Authorization", &bearer), ("Content-Type", "text/plain")],
        sluice_runtime::admin::MAX_BODY + 1,
    )
    .await;
    assert_eq!(status(too_large), 413);
    let wrong_type = admin
        .call("POST", &messages, Some(OPERATOR), Some(("image/png", b"x")))
        .await;
    assert_eq!(status(wrong_type), 415);
    let not_utf8 = admin
        .call(
            "POST",
            &messages,
            Some(OPERATOR),
            Some(("text/plain", &[0xff])),
        )
        .await;
    assert_eq!(status(not_utf8), 400);
    let no_channel = admin
        .call(
            "POST",
            "/pipelines/globex-chat/broadcast",
            Some(OPERATOR),
            Some(("text/plain", b"x")),
        )
        .await;
    assert_eq!(status(no_channel), 400);
    let no_pipeline = admin
        .call(
            "POST",
            "/pipelines/nope/broadcast?channel=x",
            Some(OPERATOR),
            Some(("text/plain", b"x")),
        )
        .await;
    assert_eq!(status(no_pipeline), 404);
    let bad_body = admin
        .call(
            "DELETE",
            &format!("/connections/{id}"),
            Some(OPERATOR),
            Some(("application/json", br#"{"code": 1000, "why": "x"}"#)),
        )
        .await;
    assert_eq!(status(bad_body), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_answer_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let admin = start(dir.path());
    let (_client, _) = admin.connect("/globex/x", &[]).await;
    let metrics = admin.call("GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, 200, "{}", metrics.text());
    assert_eq!(
        metrics.header("content-type"),
        Some(sluice_runtime::metrics::CONTENT_TYPE)
    );
    let text = metrics.text();
    assert!(text.contains("ws_connections_active"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
}

/// Keeps one client connected to `path` (reconnecting whenever the API
/// under test closes it), so there are always connections to list, message
/// and close.
async fn keep_connected(url: String, headers: Vec<(&'static str, &'static str)>) {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    loop {
        let mut request = url.as_str().into_client_request().unwrap();
        for (name, value) in &headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        if let Ok((mut ws, _)) = tokio_tungstenite::connect_async(request).await {
            while let Some(Ok(_)) = ws.next().await {}
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The operations of `docs/admin-openapi.yaml`.
const OPERATIONS: [&str; 12] = [
    "GET /metrics",
    "GET /connections",
    "GET /connections/{id}",
    "DELETE /connections/{id}",
    "POST /connections/{id}/messages",
    "GET /pipelines",
    "POST /pipelines/{name}/broadcast",
    "GET /pipelines/{name}/channels/{channel}",
    "GET /reload",
    "POST /reload",
    "GET /tenants",
    "GET /health",
];

/// schemathesis (tests/requirements.txt) generates requests from
/// `docs/admin-openapi.yaml`, valid and invalid ones, also in chains that
/// follow its links (list -> inspect -> message -> close), and checks every
/// response against it: documented status codes, content types, headers
/// and response schemas, no 5xx, invalid input refused, a missing token
/// refused, unsupported methods answered with 405. Once with the operator's
/// token and once with a tenant's (whose 403s must be documented too).
#[test]
fn schemathesis_finds_the_api_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let admin = start(dir.path());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for (path, headers) in [
        ("/acme/room1", vec![("authorization", ALICE)]),
        ("/acme/room2", vec![("authorization", ALICE)]),
        ("/globex/room1", vec![]),
        ("/globex/room1", vec![]),
    ] {
        runtime.spawn(keep_connected(format!("ws://{}{path}", admin.ws), headers));
    }
    let python =
        sluice_tests::python::python().expect("the test venv (scripts/install-test-clients.sh)");
    let spec = sluice_tests::repo_root().join("docs/admin-openapi.yaml");
    for (who, token) in [("operator", OPERATOR), ("tenant", ACME)] {
        let junit = dir.path().join(format!("schemathesis-{who}.xml"));
        let mut command = Command::new(&python);
        command
            .args(["-m", "schemathesis.cli", "run"])
            .arg(&spec)
            .args(["--url", &format!("http://{}", admin.api)])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,\
                 response_headers_conformance,response_schema_conformance,\
                 negative_data_rejection,unsupported_method,ignored_auth",
            ])
            .args(["--phases", "examples,coverage,fuzzing,stateful"])
            .args(["--max-examples", "25", "--seed", "20261122"])
            .args(["--workers", "1", "--generation-database", "none"])
            .args(["--request-timeout", "10"])
            .args(["--report", "junit", "--report-junit-path"])
            .arg(&junit)
            .args(["--no-color", "--max-failures", "20"])
            .current_dir(dir.path())
            .env("PYTHONDONTWRITEBYTECODE", "1");
        // Requests go straight to 127.0.0.1.
        for proxy in [
            "http_proxy",
            "https_proxy",
            "all_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ] {
            command.env_remove(proxy);
        }
        let output = command.output().expect("run schemathesis");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "schemathesis ({who} token) failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
        println!("schemathesis ({who} token):\n{stdout}");
        // Every operation was tested, and the stateful chains; none failed
        // or was skipped.
        let report = std::fs::read_to_string(&junit).expect("the JUnit report");
        assert!(
            report.contains(&format!(
                r#"errors="0" failures="0" skipped="0" tests="{}""#,
                OPERATIONS.len() + 1
            )),
            "{report}\n{stdout}"
        );
        for operation in OPERATIONS.iter().chain(&["Stateful tests"]) {
            assert!(
                report.contains(&format!(r#"<testcase name="{operation}""#)),
                "{operation} not tested ({who} token):\n{report}\n{stdout}"
            );
        }
    }
}
