//! A tiny HTTP/1.1 client for the admin API tests: any method, headers and
//! body, one request per connection (`Connection: close`).

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use super::http_response::Response;

/// Sends only the head of a request that declares a `Content-Length` of
/// `length` bytes, and reads the answer: for a server that refuses a body
/// by its declared size (a client still writing the body could otherwise
/// be reset before it reads the answer).
pub async fn request_declaring(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    length: usize,
) -> Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {length}\r\n\r\n"));
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(super::ws::PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("a response before the hang guard")
        .unwrap();
    parse(&raw)
}

/// Sends `method path` to `addr` (`host:port`) with `headers` and `body`.
pub async fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(super::ws::PATIENCE, stream.read_to_end(&mut raw))
        .await
        .expect("a response before the hang guard")
        .unwrap();
    parse(&raw)
}

fn parse(raw: &[u8]) -> Response {
    match super::http_response::parse(raw, true, false) {
        Ok(Some((response, _))) => response,
        Ok(None) => panic!("an incomplete response: {:?}", String::from_utf8_lossy(raw)),
        Err(error) => panic!("{error}: {:?}", String::from_utf8_lossy(raw)),
    }
}
