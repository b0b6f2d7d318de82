//! The form of an upgrade request, checked before anything of ours reads
//! it: what RFC 6455 §4.1-4.2.1 and RFC 9110/9112 say a server MUST
//! refuse. A request that fails here never reaches the origin check, a
//! route or an authenticator.
//!
//! - the method is `GET` (405 otherwise: methods are case-sensitive, so
//!   `get` is not `GET`) and the version HTTP/1.1 (400);
//! - exactly one `Host` that is a valid authority (400, RFC 9112 §3.2);
//! - exactly one `Sec-WebSocket-Key`, base64 of 16 bytes (400);
//! - exactly one `Sec-WebSocket-Version`: missing is 400, a version other
//!   than 13 is 426 with `Sec-WebSocket-Version: 13` (§4.4);
//! - at most one `Origin` (400);
//! - a path without dot segments (`.`, `..`, also percent-encoded) or
//!   empty segments (`//`), which would otherwise be matched literally
//!   against routes that tenants own by prefix (400).
//!
//! [`authority`] is the one answer to "which host was asked for": the
//! target's authority when the request is in absolute form (RFC 9112
//! §3.2.2: it wins over `Host`), the `Host` header otherwise.

use base64::Engine as _;
use http::header::{HOST, ORIGIN, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION};
use http::{HeaderMap, Method, Request, StatusCode, Version};

/// Why a request's form is refused: the answer's status, reason and the
/// one header it needs (if any), and the metrics label.
#[derive(Debug)]
pub struct Malformed {
    /// The `ws_connections_rejected` label.
    pub label: &'static str,
    /// The answer's status.
    pub status: StatusCode,
    /// Why, for the answer's body.
    pub reason: String,
    /// A header the answer must carry.
    pub header: Option<(&'static str, &'static str)>,
}

impl Malformed {
    fn bad(reason: impl Into<String>) -> Self {
        Self {
            label: "malformed",
            status: StatusCode::BAD_REQUEST,
            reason: reason.into(),
            header: None,
        }
    }
}

/// Checks `request`'s form; `Err` says what to answer instead of 101.
pub fn check<B>(request: &Request<B>) -> Result<(), Malformed> {
    if request.method() != Method::GET {
        return Err(Malformed {
            label: "malformed",
            status: StatusCode::METHOD_NOT_ALLOWED,
            reason: "a WebSocket upgrade must be a GET request".into(),
            header: Some(("allow", "GET")),
        });
    }
    if request.version() != Version::HTTP_11 {
        return Err(Malformed::bad("a WebSocket upgrade needs HTTP/1.1"));
    }
    let headers = request.headers();
    let host = only(headers, HOST).map_err(|n| Malformed::bad(count_reason("Host", n)))?;
    if host
        .to_str()
        .ok()
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        .is_none_or(|a| a.as_str().contains('@'))
    {
        return Err(Malformed::bad("the Host header is not a host name"));
    }
    let key = only(headers, SEC_WEBSOCKET_KEY)
        .map_err(|n| Malformed::bad(count_reason("Sec-WebSocket-Key", n)))?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
    if decoded.map(|k| k.len()) != Ok(16) {
        return Err(Malformed::bad(
            "Sec-WebSocket-Key is not 16 bytes in base64",
        ));
    }
    let version = only(headers, SEC_WEBSOCKET_VERSION)
        .map_err(|n| Malformed::bad(count_reason("Sec-WebSocket-Version", n)))?;
    if version.as_bytes() != b"13" {
        return Err(Malformed {
            label: "unsupported_version",
            status: StatusCode::UPGRADE_REQUIRED,
            reason: "this server speaks WebSocket version 13".into(),
            header: Some(("sec-websocket-version", "13")),
        });
    }
    if headers.get_all(ORIGIN).iter().count() > 1 {
        return Err(Malformed::bad("more than one Origin header"));
    }
    if let Some(why) = path_fault(request.uri().path()) {
        return Err(Malformed::bad(why));
    }
    Ok(())
}

/// The host a request asked for: the absolute-form target's authority, or
/// the `Host` header.
pub fn authority<B>(request: &Request<B>) -> Option<&str> {
    request
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| request.headers().get(HOST)?.to_str().ok())
}

/// The one value of header `name`; `Err` is how many there were.
fn only(
    headers: &HeaderMap,
    name: http::header::HeaderName,
) -> Result<&http::header::HeaderValue, usize> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Ok(value),
        (None, _) => Err(0),
        (Some(_), Some(_)) => Err(2),
    }
}

fn count_reason(header: &str, count: usize) -> String {
    if count == 0 {
        format!("no {header} header")
    } else {
        format!("more than one {header} header")
    }
}

/// Why a request path cannot be served as it is, if it cannot. A target
/// whose path does not start with `/` is not one a GET may have (RFC 9112
/// §3.2: authority form is for CONNECT, asterisk form for OPTIONS).
pub fn path_fault(path: &str) -> Option<&'static str> {
    let Some(rest) = path.strip_prefix('/') else {
        return Some("the request target must be a path or an absolute URL");
    };
    if rest.is_empty() {
        return None;
    }
    for segment in rest.split('/') {
        if segment.is_empty() {
            return Some("the path has an empty segment (`//` or a trailing `/`)");
        }
        let decoded = segment.replace("%2e", ".").replace("%2E", ".");
        if decoded == "." || decoded == ".." {
            return Some("the path has a `.` or `..` segment");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lines: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get("/p/chan");
        for (name, value) in lines {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    const GOOD: [(&str, &str); 3] = [
        ("host", "example.com:8080"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("sec-websocket-version", "13"),
    ];

    fn status(request: &Request<()>) -> Option<u16> {
        check(request).err().map(|m| m.status.as_u16())
    }

    #[test]
    fn a_well_formed_upgrade_passes() {
        assert_eq!(status(&request(&GOOD)), None);
        let mut with_origin = GOOD.to_vec();
        with_origin.push(("origin", "http://a.example"));
        assert_eq!(status(&request(&with_origin)), None);
    }

    #[test]
    fn methods_versions_and_header_counts_are_refused() {
        let mut post = request(&GOOD);
        *post.method_mut() = Method::POST;
        assert_eq!(status(&post), Some(405));
        let mut lower = request(&GOOD);
        *lower.method_mut() = Method::from_bytes(b"get").unwrap();
        assert_eq!(status(&lower), Some(405));
        let mut old = request(&GOOD);
        *old.version_mut() = Version::HTTP_10;
        assert_eq!(status(&old), Some(400));
        for name in [
            "host",
            "sec-websocket-key",
            "sec-websocket-version",
            "origin",
        ] {
            let mut lines = GOOD.to_vec();
            lines.push(("origin", "http://a.example"));
            let again = *lines.iter().find(|(n, _)| *n == name).unwrap();
            lines.push(again);
            assert_eq!(status(&request(&lines)), Some(400), "two {name}");
        }
        for (missing, (name, _)) in GOOD.iter().enumerate() {
            let mut lines = GOOD.to_vec();
            lines.remove(missing);
            assert_eq!(status(&request(&lines)), Some(400), "no {name}");
        }
    }

    #[test]
    fn keys_must_be_16_base64_bytes() {
        for key in [
            "",
            "not base64 at all!!!!!!!",
            "AAAAAAAAAAA=",
            "dGhlIHNhbXBsZSBub25jZQ",
            &"QUFB".repeat(1024),
        ] {
            let mut lines = GOOD.to_vec();
            lines[1].1 = key;
            assert_eq!(status(&request(&lines)), Some(400), "{key:?}");
        }
    }

    #[test]
    fn another_version_is_told_which_one_we_speak() {
        let mut lines = GOOD.to_vec();
        lines[2].1 = "8";
        let malformed = check(&request(&lines)).unwrap_err();
        assert_eq!(malformed.status, 426);
        assert_eq!(malformed.header, Some(("sec-websocket-version", "13")));
    }

    #[test]
    fn dot_and_empty_segments_are_refused() {
        for path in [
            "/a/../b",
            "/a/./b",
            "/a/%2e%2E/b",
            "/%2e",
            "/a//b",
            "/a/",
            "",
            "*",
        ] {
            assert!(path_fault(path).is_some(), "{path}");
        }
        for path in ["/", "/a", "/a/b", "/a/..b", "/a/.well-known", "/%2e%2e%2e"] {
            assert_eq!(path_fault(path), None, "{path}");
        }
    }

    #[test]
    fn authority_and_asterisk_targets_are_refused() {
        // Found by `cargo fuzz` (fuzz/, target handshake): `GET one2ws`
        // parses as authority form, whose path is empty.
        for target in ["example.com:80", "one2ws", "*"] {
            let mut builder = Request::get(target);
            for (name, value) in GOOD {
                builder = builder.header(name, value);
            }
            assert_eq!(status(&builder.body(()).unwrap()), Some(400), "{target}");
        }
        let mut absolute = Request::get("http://example.com");
        for (name, value) in GOOD {
            absolute = absolute.header(name, value);
        }
        assert_eq!(
            status(&absolute.body(()).unwrap()),
            None,
            "absolute form, no path"
        );
    }

    #[test]
    fn the_absolute_form_authority_wins_over_host() {
        let absolute = Request::get("http://acme.example/p/chan")
            .header("host", "globex.example")
            .body(())
            .unwrap();
        assert_eq!(authority(&absolute), Some("acme.example"));
        assert_eq!(authority(&request(&GOOD)), Some("example.com:8080"));
    }
}
