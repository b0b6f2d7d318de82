//! What the documented checks answer to a request, in their order.

use super::valid::{GOOD_OFFERS, valid_auth};
use super::{Request, Verdict};
use crate::HOSTED;
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
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A host name without its port, as routing compares it (`[v6]:port`
/// keeps its brackets; a port is digits, maybe none).
fn host_name(host: &str) -> &str {
    if let Some(end) = host.find(']') {
        return &host[..=end];
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The pipeline a path reaches (`/{kind}/{channel}`, `/h/` only for
/// [`HOSTED`]) and its channel.
fn route(path: &str, host: Option<&str>) -> Option<(u8, String)> {
    let mut parts = path.strip_prefix('/')?.split('/');
    let (kind, param) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || !matches!(kind, "p" | "z" | "s" | "a" | "h") {
        return None;
    }
    if kind == "h" && !host.is_some_and(|h| host_name(h).eq_ignore_ascii_case(HOSTED)) {
        return None;
    }
    let channel = percent_decode(param).filter(|c| !c.is_empty())?;
    Some((kind.as_bytes()[0], channel))
}

/// A `Host` value that names an authority (RFC 3986 §3.2: a host and an
/// optional port; no user info, path, query or fragment; an IPv6
/// literal in brackets).
fn authority_ok(value: &[u8]) -> bool {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]".contains(&b);
    if value.is_empty() || !value.iter().all(|b| allowed(*b)) {
        return false;
    }
    let (mut opened, mut closed, mut colons) = (false, false, 0);
    for b in value {
        match b {
            b'[' if opened => return false,
            b'[' => opened = true,
            b']' if !opened || closed => return false,
            b']' => {
                closed = true;
                colons = 0;
            }
            b':' => colons += 1,
            _ => {}
        }
    }
    opened == closed && colons <= 1
}

/// A `Sec-WebSocket-Key` that is 16 bytes in canonical padded base64
/// (RFC 4648 §4: 22 characters, the last with 4 zero bits, then `==`).
fn key_ok(key: &[u8]) -> bool {
    let value = |b: u8| match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22].iter().all(|b| value(*b).is_some())
        && value(key[21]).is_some_and(|v| v & 0x0f == 0)
}

/// Why a path cannot be served: not starting with `/`, a `.` or `..`
/// segment (also as `%2e`), or an empty one (`//`, a trailing `/`).
fn path_faulty(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return true;
    };
    if rest.is_empty() {
        return false;
    }
    rest.split('/').any(|segment| {
        let decoded = segment.replace("%2e", ".").replace("%2E", ".");
        segment.is_empty() || decoded == "." || decoded == ".."
    })
}

/// A channel name Sluice takes: 1 to 255 bytes, no control character.
fn channel_ok(channel: &str) -> bool {
    (1..=255).contains(&channel.len()) && !channel.chars().any(char::is_control)
}

/// The statuses the documented checks allow for `r`, in their order
/// (hyper's parser; then, for a request that is not an upgrade, the plain
/// endpoints; for an upgrade, its form: method, version, Host, key,
/// version, Origin count, path; then the gate: origin, rate, route,
/// channel name, subprotocol, slots, authenticator, channel permission);
/// `None` where the model does not reach.
pub(super) fn model(r: &Request, total: usize) -> Option<Verdict> {
    let verdict = |statuses: &[u16]| Verdict {
        statuses: statuses.iter().copied().collect(),
        accept: None,
        protocol: None,
        deflate_required: false,
        kind: b'-',
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
    // An absolute-form target names the host itself (RFC 9112 §3.2.2).
    let (authority, target) = match target.strip_prefix("http://") {
        Some(rest) => {
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, rest) = rest.split_at(end);
            if authority.is_empty() || authority.contains('@') || !rest.starts_with('/') {
                return None;
            }
            (Some(authority), rest)
        }
        None => (None, target),
    };
    let path = target.split('?').next().unwrap_or_default();
    if !path.starts_with('/') {
        return None;
    }
    let upgrade = r
        .all("connection")
        .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case(b"upgrade")))
        && r.all("upgrade")
            .any(|v| tokens(v).any(|t| t.eq_ignore_ascii_case(b"websocket")));
    if !upgrade {
        // RFC 9112 §3.2: HTTP/1.1 needs exactly one Host; then whatever
        // the method and other headers.
        if r.version == "HTTP/1.1" && r.all("host").count() != 1 {
            return Some(verdict(&[400]));
        }
        return Some(match path {
            "/healthz" => verdict(&[200]),
            "/readyz" | "/health" => verdict(&[200, 503]),
            _ => verdict(&[426]),
        });
    }
    // The upgrade's form (RFC 6455 §4.1-4.2.1, RFC 9110, RFC 9112).
    if r.method != "GET" {
        return Some(verdict(&[405]));
    }
    if r.version != "HTTP/1.1" {
        return Some(verdict(&[400]));
    }
    let hosts: Vec<&[u8]> = r.all("host").collect();
    if hosts.len() != 1 || !authority_ok(hosts[0]) {
        return Some(verdict(&[400]));
    }
    let keys: Vec<&[u8]> = r.all("sec-websocket-key").collect();
    if keys.len() != 1 || !key_ok(keys[0]) {
        return Some(verdict(&[400]));
    }
    let versions: Vec<&[u8]> = r.all("sec-websocket-version").collect();
    match versions[..] {
        [b"13"] => {}
        [_] => return Some(verdict(&[426])),
        _ => return Some(verdict(&[400])),
    }
    if r.all("origin").count() > 1 {
        return Some(verdict(&[400]));
    }
    if path_faulty(path) {
        return Some(verdict(&[400]));
    }
    // The gate.
    if r.first("origin").is_some_and(|o| o != b"http://ok.example") {
        return Some(verdict(&[403]));
    }
    let host = authority.or_else(|| std::str::from_utf8(hosts[0]).ok());
    let Some((kind, channel)) = route(path, host) else {
        return Some(verdict(&[404]));
    };
    if !channel_ok(&channel) {
        return Some(verdict(&[400]));
    }
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
            return Some(verdict(&[400]));
        }
        // At most 2 connections: concurrent cases may fill them.
        also.push(503);
    }
    let with = |codes: &[u16]| {
        let mut v = verdict(codes);
        v.statuses.extend(&also);
        v
    };
    if kind == b'a' {
        if r.first("authorization") != Some(valid_auth().as_bytes()) {
            return Some(with(&[401]));
        }
        if channel != "ok" {
            return Some(with(&[403]));
        }
    }
    let mut v = with(&[101]);
    v.accept = Some(fuzz::accept_key(keys[0]));
    v.protocol = protocol;
    v.kind = kind;
    let offers: Vec<&[u8]> = r.all("sec-websocket-extensions").collect();
    v.deflate_required =
        kind == b'z' && offers.len() == 1 && GOOD_OFFERS.iter().any(|o| o.as_bytes() == offers[0]);
    Some(v)
}
