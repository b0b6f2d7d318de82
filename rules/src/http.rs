//! The HTTP pieces an authenticator's answer is made of: the header it
//! reads, the status and header of a challenge, and HTTP Basic credentials
//! (RFC 7617).

use base64::Engine as _;

/// The request header carrying credentials (lowercase; look it up ASCII
/// case-insensitively).
pub const AUTHORIZATION: &str = "authorization";

/// The response header carrying a challenge, as a denial sends it.
pub const WWW_AUTHENTICATE: &str = "www-authenticate";

/// The status of a denial for missing or wrong credentials.
pub const UNAUTHORIZED: u16 = 401;

/// Credentials from an `Authorization: Basic ...` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// The user id (before the first `:`).
    pub user: String,
    /// The password (everything after the first `:`).
    pub password: String,
}

/// Parses a `Basic` authorization header value (the scheme in any case).
/// Returns `None` for another scheme, bad base64, a missing `:` or
/// non-UTF-8 credentials.
pub fn parse_basic_auth(value: &[u8]) -> Option<BasicCredentials> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some(BasicCredentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(value: &[u8]) -> Option<(String, String)> {
        parse_basic_auth(value).map(|c| (c.user, c.password))
    }

    #[test]
    fn basic_credentials_round_trip() {
        // "testuser:testpass", the credentials of seed 000.
        assert_eq!(
            parts(b"Basic dGVzdHVzZXI6dGVzdHBhc3M="),
            Some(("testuser".into(), "testpass".into()))
        );
        // Passwords may contain ':'; the scheme is case-insensitive; outer
        // white space is ignored.
        assert_eq!(
            parts(b"  basic   YTpiOmM=  "),
            Some(("a".into(), "b:c".into()))
        );
        // An empty user or password is still well-formed ("" and ":").
        assert_eq!(parts(b"Basic Og=="), Some((String::new(), String::new())));
    }

    #[test]
    fn anything_else_is_malformed() {
        for value in [
            &b"Bearer abc"[..],
            b"Basic !!!",
            b"Basic bm9jb2xvbg==", // "nocolon"
            b"Basic",
            b"Basic /w==", // one byte 0xff: not UTF-8
            b"\xff Basic YTpi",
            b"",
        ] {
            assert_eq!(parse_basic_auth(value), None, "{value:?}");
        }
    }
}
