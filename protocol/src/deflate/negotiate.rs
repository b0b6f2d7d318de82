//! RFC 7692 §7.1: reading a client's permessage-deflate offers and
//! answering the first one this server can honour.

use http::HeaderMap;
use http::header::SEC_WEBSOCKET_EXTENSIONS;

/// The extension's registered name.
const NAME: &str = "permessage-deflate";

/// The only LZ77 window our compressor has: flate2's pure-Rust backend
/// (miniz_oxide) always uses 32 KiB and cannot be told otherwise.
const SERVER_WINDOW_BITS: u8 = 15;

/// What this server is willing to agree to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Off: every offer is declined and messages go uncompressed.
    pub enabled: bool,
    /// Ask for `server_no_context_takeover` and `client_no_context_takeover`:
    /// no compression state survives a message, so a connection holds none
    /// between messages (a worker thread's spare is lent for each one)
    /// instead of about 230 KiB (compressor) + 43 KiB (decompressor).
    pub no_context_takeover: bool,
    /// The largest window (as log2, 9..=15) asked of clients that allow the
    /// server to limit theirs (`client_max_window_bits`). Saves the peer's
    /// memory, not ours: our decompressor always has a 32 KiB window.
    /// Values below 9 count as 9 (zlib cannot emit raw DEFLATE with 8).
    pub max_window_bits: u8,
    /// Messages shorter than this go uncompressed (RSV1 clear): deflate
    /// barely shrinks them and costs CPU.
    pub min_size: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            enabled: true,
            no_context_takeover: true,
            max_window_bits: 15,
            min_size: 64,
        }
    }
}

/// The parameters agreed for one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params {
    /// Our compressor starts every message afresh.
    pub server_no_context_takeover: bool,
    /// The client's compressor starts every message afresh, so our
    /// decompressor does too.
    pub client_no_context_takeover: bool,
    /// Log2 of the window our compressor uses (always 15: miniz_oxide
    /// has no other).
    pub server_max_window_bits: u8,
    /// Log2 of the largest window the client may use.
    pub client_max_window_bits: u8,
}

impl Params {
    /// The `Sec-WebSocket-Extensions` value accepting these parameters.
    /// `window_asked` echoes `server_max_window_bits` (required when the
    /// offer named it); `client_window_sent` says whether to name the
    /// client's window (only allowed when the offer named it).
    fn response(&self, window_asked: bool, client_window_sent: bool) -> String {
        let mut value = String::from(NAME);
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if window_asked {
            value.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        if client_window_sent {
            value.push_str(&format!(
                "; client_max_window_bits={}",
                self.client_max_window_bits
            ));
        }
        value
    }
}

/// One permessage-deflate offer, syntactically valid per §7.1.
#[derive(Debug, Default, PartialEq, Eq)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: offered without a value (the server may pick).
    client_max_window_bits: Option<Option<u8>>,
}

/// Picks the first offer in `headers` the server can honour under
/// `policy`: the response header value and the agreed parameters, or
/// `None` (no compression for this connection).
pub fn choose(headers: &HeaderMap, policy: &Policy) -> Option<(String, Params)> {
    if !policy.enabled {
        return None;
    }
    headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        // A value that is not visible ASCII cannot hold a valid offer.
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| split_quoted(value, ','))
        .filter_map(parse_offer)
        .find_map(|offer| accept(&offer, policy))
}

/// The answer to one offer, or `None` when it cannot be honoured.
fn accept(offer: &Offer, policy: &Policy) -> Option<(String, Params)> {
    // §7.1.2.1: accepting means using at most the offered window, and
    // ours is fixed at 15.
    if offer
        .server_max_window_bits
        .is_some_and(|bits| bits < SERVER_WINDOW_BITS)
    {
        return None;
    }
    let ours = policy.max_window_bits.clamp(9, 15);
    // §7.1.2.2: the parameter may only be answered when offered, with a
    // value no larger than the offered one.
    let (client_max_window_bits, client_window_sent) = match offer.client_max_window_bits {
        None => (15, false),
        Some(None) => (ours, ours < 15),
        Some(Some(theirs)) if ours < theirs => (ours, true),
        Some(Some(theirs)) => (theirs, false),
    };
    let params = Params {
        // §7.1.1.1: an offered server_no_context_takeover must be accepted
        // as is; the server may add it unasked.
        server_no_context_takeover: offer.server_no_context_takeover || policy.no_context_takeover,
        // §7.1.1.2: the server may add it whether offered or not.
        client_no_context_takeover: policy.no_context_takeover,
        server_max_window_bits: SERVER_WINDOW_BITS,
        client_max_window_bits,
    };
    let response = params.response(offer.server_max_window_bits.is_some(), client_window_sent);
    Some((response, params))
}

/// Parses one element of the extension list; `None` when it is another
/// extension or a permessage-deflate offer §7.1 makes unacceptable
/// (unknown or repeated parameter, invalid value, bad syntax).
fn parse_offer(element: &str) -> Option<Offer> {
    let mut parts = split_quoted(element, ';');
    if !parts.next()?.eq_ignore_ascii_case(NAME) {
        return None;
    }
    let mut offer = Offer::default();
    for part in parts {
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (name.trim_end(), Some(unquote(value.trim_start())?)),
            None => (part, None),
        };
        let name = name.to_ascii_lowercase();
        let fresh = match (name.as_str(), value) {
            ("server_no_context_takeover", None) => {
                !std::mem::replace(&mut offer.server_no_context_takeover, true)
            }
            ("client_no_context_takeover", None) => {
                !std::mem::replace(&mut offer.client_no_context_takeover, true)
            }
            ("server_max_window_bits", Some(value)) => offer
                .server_max_window_bits
                .replace(window_bits(&value)?)
                .is_none(),
            ("client_max_window_bits", value) => {
                let bits = match value {
                    None => None,
                    Some(value) => Some(window_bits(&value)?),
                };
                offer.client_max_window_bits.replace(bits).is_none()
            }
            _ => false,
        };
        if !fresh {
            return None;
        }
    }
    Some(offer)
}

/// A window size: a decimal integer without leading zeros, 8 to 15.
fn window_bits(value: &str) -> Option<u8> {
    if value.starts_with('0') || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok().filter(|bits| (8..=15).contains(bits))
}

/// A parameter value: a token, or a quoted-string unescaped (§7.1 allows
/// both; the unescaped text must still be a valid value).
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return is_token(value).then(|| value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    is_token(&out).then_some(out)
}

/// RFC 7230 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Splits on `sep` outside quoted-strings, trimming each piece and skipping
/// empty ones (HTTP list rules). A piece with bad syntax comes out as is and
/// fails to parse later.
fn split_quoted(s: &str, sep: char) -> impl Iterator<Item = &str> {
    let mut pieces = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                pieces.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    pieces.push(&s[start..]);
    pieces.into_iter().map(str::trim).filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(SEC_WEBSOCKET_EXTENSIONS, value.parse().unwrap());
        }
        map
    }

    fn takeover() -> Policy {
        Policy {
            no_context_takeover: false,
            ..Policy::default()
        }
    }

    fn answer(values: &[&str], policy: &Policy) -> Option<String> {
        choose(&headers(values), policy).map(|(response, _)| response)
    }

    #[test]
    fn a_bare_offer_is_accepted_with_the_policy_takeover_choice() {
        assert_eq!(
            answer(&["permessage-deflate"], &takeover()).as_deref(),
            Some("permessage-deflate")
        );
        let (response, params) =
            choose(&headers(&["permessage-deflate"]), &Policy::default()).unwrap();
        assert_eq!(
            response,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(
            params,
            Params {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: 15,
                client_max_window_bits: 15,
            }
        );
    }

    #[test]
    fn nothing_is_agreed_without_an_offer_or_when_disabled() {
        assert_eq!(answer(&[], &Policy::default()), None);
        assert_eq!(
            answer(&["x-webkit-deflate-frame"], &Policy::default()),
            None
        );
        let off = Policy {
            enabled: false,
            ..Policy::default()
        };
        assert_eq!(answer(&["permessage-deflate"], &off), None);
    }

    #[test]
    fn offered_server_no_context_takeover_is_always_echoed() {
        let (response, params) = choose(
            &headers(&["permessage-deflate; server_no_context_takeover"]),
            &takeover(),
        )
        .unwrap();
        assert_eq!(response, "permessage-deflate; server_no_context_takeover");
        assert!(params.server_no_context_takeover && !params.client_no_context_takeover);
        // Offered client_no_context_takeover is ours to ignore.
        assert_eq!(
            answer(
                &["permessage-deflate; client_no_context_takeover"],
                &takeover()
            )
            .as_deref(),
            Some("permessage-deflate")
        );
    }

    #[test]
    fn the_client_window_is_named_only_when_offered_and_smaller() {
        let small = Policy {
            max_window_bits: 10,
            ..takeover()
        };
        let offer = ["permessage-deflate; client_max_window_bits"];
        assert_eq!(
            answer(&offer, &takeover()).as_deref(),
            Some("permessage-deflate")
        );
        let (response, params) = choose(&headers(&offer), &small).unwrap();
        assert_eq!(response, "permessage-deflate; client_max_window_bits=10");
        assert_eq!(params.client_max_window_bits, 10);
        // The client's own limit stands when it is already smaller.
        let (response, params) = choose(
            &headers(&["permessage-deflate; client_max_window_bits=9"]),
            &small,
        )
        .unwrap();
        assert_eq!(response, "permessage-deflate");
        assert_eq!(params.client_max_window_bits, 9);
        assert_eq!(
            answer(&["permessage-deflate; client_max_window_bits=12"], &small).as_deref(),
            Some("permessage-deflate; client_max_window_bits=10")
        );
        // Not offered: never named, whatever the policy.
        assert_eq!(
            answer(&["permessage-deflate"], &small).as_deref(),
            Some("permessage-deflate")
        );
        // 8 is raised to 9 on our side.
        let eight = Policy {
            max_window_bits: 8,
            ..takeover()
        };
        assert_eq!(
            answer(&offer, &eight).as_deref(),
            Some("permessage-deflate; client_max_window_bits=9")
        );
    }

    #[test]
    fn server_windows_below_ours_decline_the_offer() {
        assert_eq!(
            answer(
                &["permessage-deflate; server_max_window_bits=15"],
                &takeover()
            )
            .as_deref(),
            Some("permessage-deflate; server_max_window_bits=15")
        );
        for bits in 8..15 {
            let offer = format!("permessage-deflate; server_max_window_bits={bits}");
            assert_eq!(answer(&[&offer], &takeover()), None, "{offer}");
        }
    }

    #[test]
    fn the_first_acceptable_offer_wins() {
        let offers = "permessage-deflate; server_max_window_bits=10, \
                      permessage-deflate; client_max_window_bits=12, permessage-deflate";
        let small = Policy {
            max_window_bits: 11,
            ..takeover()
        };
        assert_eq!(
            answer(&[offers], &small).as_deref(),
            Some("permessage-deflate; client_max_window_bits=11")
        );
        // Offers spread over several header lines, other extensions first.
        assert_eq!(
            answer(
                &[
                    "x-foo; a=\"b,c\"",
                    "permessage-deflate; bogus, permessage-deflate; server_no_context_takeover"
                ],
                &takeover()
            )
            .as_deref(),
            Some("permessage-deflate; server_no_context_takeover")
        );
    }

    #[test]
    fn invalid_offers_are_declined() {
        for offer in [
            "permessage-deflate; unknown",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; client_no_context_takeover=\"x\"",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=7",
            "permessage-deflate; client_max_window_bits=08",
            "permessage-deflate; client_max_window_bits=1x",
            "permessage-deflate; client_max_window_bits=",
            "permessage-deflate; client_max_window_bits=\"10",
            "permessage-deflate; client_max_window_bits=\"1 0\"",
        ] {
            assert_eq!(answer(&[offer], &takeover()), None, "{offer}");
        }
    }

    #[test]
    fn names_are_case_insensitive_and_values_may_be_quoted() {
        let small = Policy {
            max_window_bits: 9,
            ..takeover()
        };
        assert_eq!(
            answer(
                &["PerMessage-Deflate ;Client_Max_Window_Bits = \"10\" ; SERVER_MAX_WINDOW_BITS=\"15\""],
                &small
            )
            .as_deref(),
            Some("permessage-deflate; server_max_window_bits=15; client_max_window_bits=9")
        );
    }
}
