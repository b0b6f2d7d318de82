//! Upgrade requests: bytes parsed as hyper parses them (httparse), then
//! `request_form::check` and `authority`. An accepted request must be
//! everything RFC 6455 §4.2.1 asks, checked here independently; a refused
//! one gets 400, 405 or 426.
#![no_main]

use base64::Engine as _;
use http::{Method, Request, StatusCode, Version};
use libfuzzer_sys::fuzz_target;
use sluice_protocol::request_form::{authority, check};

/// The request hyper would hand the server, if it parses.
fn request(bytes: &[u8]) -> Option<Request<()>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Request::new(&mut headers);
    parsed.parse(bytes).ok()?;
    let mut builder = Request::builder()
        .method(parsed.method?)
        .uri(parsed.path?)
        .version(match parsed.version? {
            0 => Version::HTTP_10,
            _ => Version::HTTP_11,
        });
    for header in parsed.headers.iter() {
        builder = builder.header(header.name, header.value);
    }
    builder.body(()).ok()
}

fn one<'a>(request: &'a Request<()>, name: &str) -> Option<&'a [u8]> {
    let mut values = request.headers().get_all(name).iter();
    let first = values.next()?;
    values.next().is_none().then(|| first.as_bytes())
}

fuzz_target!(|bytes: &[u8]| {
    let Some(request) = request(bytes) else {
        return;
    };
    let host = authority(&request);
    match check(&request) {
        Ok(()) => {
            assert_eq!(request.method(), Method::GET);
            assert_eq!(request.version(), Version::HTTP_11);
            let host = host.expect("an accepted request has an authority");
            assert!(
                host.parse::<http::uri::Authority>().is_ok(),
                "authority {host:?}"
            );
            if request.uri().authority().is_none() {
                assert!(one(&request, "host").is_some(), "exactly one Host");
            }
            let key = one(&request, "sec-websocket-key").expect("exactly one key");
            let key = base64::engine::general_purpose::STANDARD.decode(key.trim_ascii());
            assert_eq!(key.map(|k| k.len()).ok(), Some(16), "a 16-byte key");
            assert_eq!(
                one(&request, "sec-websocket-version").map(<[u8]>::trim_ascii),
                Some(&b"13"[..])
            );
            assert!(request.headers().get_all("origin").iter().count() <= 1);
            let path = request.uri().path();
            assert!(path.starts_with('/'));
            for segment in path[1..].split('/').filter(|_| path != "/") {
                assert!(!segment.is_empty(), "empty segment in {path:?}");
                let plain = segment.replace("%2e", ".").replace("%2E", ".");
                assert!(plain != "." && plain != "..", "dot segment in {path:?}");
            }
        }
        Err(malformed) => assert!(
            [
                StatusCode::BAD_REQUEST,
                StatusCode::METHOD_NOT_ALLOWED,
                StatusCode::UPGRADE_REQUIRED
            ]
            .contains(&malformed.status),
            "{malformed:?}"
        ),
    }
});
