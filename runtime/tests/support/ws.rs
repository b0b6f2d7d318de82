//! A real WebSocket client (tokio-tungstenite) for the end-to-end tests.
//!
//! The timeouts here only keep a broken server from hanging a test; no test
//! asserts how long anything took.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Stream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a test waits for something that should come (a hang guard).
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A connected client.
pub struct Client {
    ws: Stream,
}

/// A handshake the server refused: status and body.
#[derive(Debug)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

impl Client {
    /// Connects to `url` with extra request headers.
    pub async fn connect_with(
        url: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Self, Refused> {
        let mut request = url.into_client_request().unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(*name, value.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((ws, _)) => Ok(Self { ws }),
            Err(WsError::Http(response)) => Err(Refused {
                status: response.status().as_u16(),
                body: String::from_utf8_lossy(response.body().as_deref().unwrap_or_default())
                    .into_owned(),
            }),
            Err(other) => panic!("connect to {url} failed: {other}"),
        }
    }

    /// Connects to `url`; panics if refused.
    pub async fn connect(url: &str) -> Self {
        Self::connect_with(url, &[])
            .await
            .unwrap_or_else(|r| panic!("{url} refused: {r:?}"))
    }

    /// The next frame of any kind (pongs and closes included).
    pub async fn next(&mut self) -> Message {
        tokio::time::timeout(PATIENCE, self.ws.next())
            .await
            .expect("a frame before the hang guard")
            .expect("the stream is open")
            .expect("no protocol error")
    }

    /// The next data message, or `None` once the stream has ended or
    /// failed without a close frame (a dropped connection).
    pub async fn next_data_or_end(&mut self) -> Option<Message> {
        loop {
            let next = tokio::time::timeout(PATIENCE, self.ws.next())
                .await
                .expect("a frame or the end before the hang guard");
            match next {
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(frame))) => panic!("a close frame, not a drop: {frame:?}"),
                Some(Ok(message)) => return Some(message),
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// The next data message (text or binary), skipping the server's pings
    /// (sent every 30 s by default: a slow run may see one) and pongs.
    pub async fn next_data(&mut self) -> Message {
        loop {
            match self.next().await {
                Message::Ping(_) | Message::Pong(_) => {}
                other => return other,
            }
        }
    }

    /// The next text message, parsed as JSON.
    pub async fn next_json(&mut self) -> Value {
        match self.next_data().await {
            Message::Text(text) => {
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
            }
            other => panic!("expected a text message, got {other:?}"),
        }
    }

    /// Sends a JSON text message.
    pub async fn send_json(&mut self, value: &Value) {
        self.send(Message::text(value.to_string())).await;
    }

    /// Sends any frame.
    pub async fn send(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// Starts the closing handshake with `code` and `reason`.
    pub async fn close(&mut self, code: u16, reason: &str) {
        self.ws
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.to_owned().into(),
            }))
            .await
            .expect("send close");
    }

    /// Reads until the server's close frame and returns its code and reason;
    /// panics on a data frame first.
    pub async fn expect_close(&mut self) -> (u16, String) {
        match self.next().await {
            Message::Close(Some(frame)) => (frame.code.into(), frame.reason.to_string()),
            Message::Close(None) => (1005, String::new()),
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}
