//! What the documented checks answer to a request, in their order.

use super::valid::{GOOD_OFFERS, valid_auth};
use super::{Request, Verdict};
use crate::harness as fuzz;

/// Tokens of a comma-separated header value.
pub(super) fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|b| *b == b',').map(<[u8]>::trim_ascii)
}

fn tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `%XX` decoded; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The pipeline a path reaches (`/{kind}/{channel}`) and its channel.
fn route(path: &str) -> Option<(u8, String)> {
    let mut parts = path.strip_prefix('/')?.split('/');
    let (kind, param) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || !matches!(kind, "p" | "z" | "s" | "a") {
        return None;
    }
    let channel = percent_decode(param).filter(|c| !c.is_empty())?;
    Some((kind.as_bytes()[0], channel))
}

/// The statuses the documented checks allow for `r`, in their order
/// (hyper's parser, then `ws::handle`, then the gate: origin, rate,
/// route, subprotocol, slots, authenticator, channel; then
/// fastwebsockets: key, version); `None` where the model does not reach.
pub(super) fn model(r: &Request, total: usize) -> Option<Verdict> {
    let verdict = |statuses: &[u16]| Verdict {
        statuses: statuses.iter().copied().collect(),
        accept: None,
        protocol: None,
        deflate_required: false,
        kind: b'-',
        lenient: Vec::new(),
    };
    if !r.opaque.is_empty() {
        return None;
    }
    // hyper (httparse) reads the request line first: a bad method or
    // version is a 400 whatever follows, unless the head is so large
    // that its read buffer fills before the head is whole (431).
    let bad_line: &[u16] = if total > 400_000 { &[400, 431] } else { &[400] };
    if r.method.is_empty() || !r.method.bytes().all(tchar) {
        return Some(verdict(bad_line));
    }
    if r.method == "CONNECT" {
        return None;
    }
    let target = std::str::from_utf8(&r.target).ok()?;
    if !target
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/%?".contains(&b))
    {
        return None;
    }
    if r.version != "HTTP/1.1" && r.version != "HTTP/1.0" {
        return Some(verdict(bad_line));
    }
    // Then at most 100 headers (431). It answers 431 too once its read
    // buffer (8 KiB + 100 * 4 KiB) is full without a whole head, but a
    // read may overshoot that by up to the buffer's size first. Last,
    // a target over 65534 bytes is a 414.
    if r.headers.len() > 100 || total > 2 * 417_792 {
        return Some(verdict(&[431]));
    }
    if total > 400_000 {
        return None;
    }
    if target.len() > 65_534 {
        return Some(verdict(&[414]));
    }
    let target = target.strip_prefix("http://127.0.0.1").unwrap_or(target);
    let path = target.split('?').next().unwrap_or_default();
    if !path.starts_with('/') {
        return None;
    }
    // RFC 7230 §5.4: exactly one Host; hyper does not insist.
    let host_lenient = r.all("host").count() != 1;
    let widen = |mut v: Verdict| {
        if host_lenient {
            v.statuses.insert(400);
            v.lenient
                .push("a request without exactly one Host is served (RFC 7230 §5.4)");
        }
        Some(v)
    };
    let upgrade = r
        .all("connection")
        .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case(b"upgrade")))
        && r.all("upgrade")
            .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case(b"websocket")));
    if !upgrade {
        return widen(match path {
            "/healthz" => verdict(&[200]),
            "/readyz" | "/health" => verdict(&[200, 503]),
            _ => verdict(&[426]),
        });
    }
    if r.first("origin").is_some_and(|o| o != b"http://ok.example") {
        return widen(verdict(&[403]));
    }
    let Some((kind, channel)) = route(path) else {
        return widen(verdict(&[404]));
    };
    let mut also = Vec::new();
    let mut protocol = None;
    if kind == b's' {
        let offered: Vec<&[u8]> = r
            .all("sec-websocket-protocol")
            .filter(|v| v.iter().all(|b| (32..127).contains(b) || *b == b'\t'))
            .flat_map(tokens)
            .collect();
        protocol = ["v2.fuzz", "v1.fuzz"]
            .into_iter()
            .find(|p| offered.contains(&p.as_bytes()));
        if protocol.is_none() {
            return widen(verdict(&[400]));
        }
        // At most 2 connections: concurrent cases may fill them.
        also.push(503);
    }
    if kind == b'a' {
        if r.first("authorization") != Some(valid_auth().as_bytes()) {
            return widen(verdict(&[401]));
        }
        if channel != "ok" {
            return widen(verdict(&[403]));
        }
    }
    let with = |codes: &[u16]| {
        let mut v = verdict(codes);
        v.statuses.extend(&also);
        v
    };
    let Some(key) = r.first("sec-websocket-key") else {
        return widen(with(&[400]));
    };
    if r.first("sec-websocket-version") != Some(b"13") {
        return widen(with(&[400]));
    }
    let mut v = with(&[101]);
    let key_ok = key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/');
    if !key_ok {
        v.lenient
            .push("a Sec-WebSocket-Key that is not 16 base64 bytes is taken (RFC 6455 §4.2.1)");
    }
    if r.method != "GET" {
        v.lenient
            .push("an upgrade with a method other than GET is taken (RFC 6455 §4.1)");
    }
    if r.version == "HTTP/1.0" {
        v.lenient
            .push("an HTTP/1.0 upgrade is answered 101 (RFC 6455 §4.1: HTTP/1.1 or higher)");
    }
    if !v.lenient.is_empty() {
        v.statuses.insert(400);
    }
    v.accept = Some(fuzz::accept_key(key));
    v.protocol = protocol;
    v.kind = kind;
    let offers: Vec<&[u8]> = r.all("sec-websocket-extensions").collect();
    v.deflate_required =
        kind == b'z' && offers.len() == 1 && GOOD_OFFERS.iter().any(|o| o.as_bytes() == offers[0]);
    widen(v)
}
