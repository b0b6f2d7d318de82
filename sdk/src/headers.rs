//! Helpers for headers, HTTP Basic credentials and query strings.

use crate::Header;

/// The value of the first header called `name` (ASCII case-insensitive).
pub fn find<'a>(headers: &'a [Header], name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value.as_slice())
}

/// The value of the first header called `name`, if it is valid UTF-8.
pub fn find_str<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    find(headers, name).and_then(|v| std::str::from_utf8(v).ok())
}

/// Builds a header from a name and a UTF-8 value.
pub fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.to_owned(),
        value: value.as_bytes().to_vec(),
    }
}

// HTTP Basic credentials: the parser the host's `native:basic-auth` uses.
pub use sluice_rules::http::{BasicCredentials, parse_basic_auth};

/// The token of an `Authorization: Bearer ...` header value.
pub fn parse_bearer(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The first value of `name` in a query string (`a=1&b=2`), percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == name)
            .then(|| percent_decode(v))
            .flatten()
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_is_the_shared_parser() {
        let creds = parse_basic_auth(b"Basic dGVzdHVzZXI6dGVzdHBhc3M=").unwrap();
        assert_eq!(
            (creds.user.as_str(), creds.password.as_str()),
            ("testuser", "testpass")
        );
    }

    #[test]
    fn bearer_and_query() {
        assert_eq!(parse_bearer(b"Bearer abc.def"), Some("abc.def"));
        assert_eq!(parse_bearer(b"Bearer "), None);
        assert_eq!(
            query_param("a=1&token=x%2By&b", "token").as_deref(),
            Some("x+y")
        );
        assert_eq!(query_param("a=1", "token"), None);
    }

    #[test]
    fn header_lookup_ignores_case() {
        let headers = vec![header("Authorization", "x")];
        assert_eq!(find_str(&headers, "authorization"), Some("x"));
        assert_eq!(find(&headers, "cookie"), None);
    }
}
