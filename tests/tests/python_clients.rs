//! The harness's Python WebSocket client reports refused handshakes and
//! unreachable servers as JSON, and sends the headers it is given.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread;
use std::time::Duration;

use anyhow::{Result, ensure};
use sluice_tests::{ports, python};

const CLIENT: &str = "ws_collect.py";
const TIMEOUT: Duration = Duration::from_secs(30);

/// Answers one HTTP request with 401 and returns the request's header lines.
fn refuse_once(listener: TcpListener) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accept");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut request = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            request.push(line.trim_end().to_owned());
        }
        let body = "denied";
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"sluice\"\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .expect("write response");
        request
    })
}

#[test]
fn refused_handshake_is_reported_with_status_headers_and_body() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("ws://{}/feeds/a", listener.local_addr()?);
    let server = refuse_once(listener);

    let output = python::run(
        CLIENT,
        &[
            url.as_str(),
            "--basic",
            "alice:secret",
            "--header",
            "X-Test: yes",
            "--timeout",
            "5",
        ],
        TIMEOUT,
    )?;
    ensure!(output.status.success(), "{output}");
    let refused = output.event("refused")?;
    ensure!(refused["status"] == 401, "{output}");
    ensure!(
        refused["headers"]["www-authenticate"] == "Basic realm=\"sluice\"",
        "{output}"
    );
    ensure!(refused["body"] == "denied", "{output}");
    ensure!(
        output.events_named("connected").next().is_none(),
        "{output}"
    );

    let request = server.join().expect("server thread");
    ensure!(
        request[0].starts_with("GET /feeds/a HTTP/1.1"),
        "{request:?}"
    );
    let has = |wanted: &str| request.iter().any(|l| l.eq_ignore_ascii_case(wanted));
    // base64("alice:secret")
    ensure!(has("authorization: Basic YWxpY2U6c2VjcmV0"), "{request:?}");
    ensure!(has("x-test: yes"), "{request:?}");
    ensure!(has("upgrade: websocket"), "{request:?}");
    Ok(())
}

#[test]
fn unreachable_server_is_reported_as_an_error() -> Result<()> {
    let url = format!("ws://127.0.0.1:{}/", ports::free_port());
    let output = python::run(CLIENT, &[url.as_str(), "--open-timeout", "5"], TIMEOUT)?;
    ensure!(output.status.success(), "{output}");
    let error = output.event("error")?;
    ensure!(error["kind"] == "ConnectionRefusedError", "{output}");
    Ok(())
}
