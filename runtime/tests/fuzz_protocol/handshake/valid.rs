//! Valid requests: a target for each pipeline (and for none), and a
//! well-formed upgrade to it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::Request;
use crate::harness::{self as fuzz, Rng};

pub(super) fn valid_auth() -> String {
    format!("Basic {}", BASE64.encode(b"fuzz:secret"))
}

/// A request target and the pipeline kind it aims at.
pub(super) fn pick_target(rng: &mut Rng, about: &mut Vec<String>) -> (Vec<u8>, u8) {
    const CHANNELS: &[&str] = &[
        "fuzz",
        "chan-1",
        "%41b",
        "a%20b",
        "%e2%82%ac",
        "~!$&'()*+,;=:@",
        "x?q=1&r=%zz",
        "x?",
        "%2Fslash",
        "..x",
        ".well-known",
        "%2e%2e%2e",
        "%e2%80%8b",
    ];
    // Not a channel: no route (broken escapes, not UTF-8, empty) or a
    // name Sluice refuses (control characters).
    const BAD: &[&str] = &[
        "%zz", "%ff", "%2", "%", "%c3", "", "%00", "%0d%0a", "%09", "%7f", "%c2%80", "%+f",
    ];
    let target: Vec<u8> = match rng.below(100) {
        0..=59 => {
            let kind = *rng.pick(&["p", "z", "s", "a", "h"]);
            let channel = if kind == "a" && rng.chance(0.7) {
                "ok".to_owned()
            } else if rng.chance(0.85) {
                (*rng.pick(CHANNELS)).to_owned()
            } else if rng.chance(0.75) {
                (*rng.pick(BAD)).to_owned()
            } else {
                // Around the 255-byte limit, some as escapes.
                match rng.below(4) {
                    0 => "c".repeat(255),
                    1 => "c".repeat(256),
                    2 => "%63".repeat(256),
                    _ => "%c3%a9".repeat(128),
                }
            };
            format!("/{kind}/{channel}").into_bytes()
        }
        60..=63 => rng
            .pick(&[
                "/p/.",
                "/p/..",
                "/p/%2e",
                "/p/%2E%2e",
                "/./p/x",
                "/p/../p/x",
                "/%2e%2e/p/x",
                "/p/x/.",
                "/p/a//b",
                "/p/x/",
                "/p//",
                "//p/x",
            ])
            .as_bytes()
            .to_vec(),
        64..=66 => rng
            .pick(&[
                "http://127.0.0.1/p/fuzz",
                "http://evil.example/p/fuzz",
                "http://acme.example/h/fuzz",
                "http://ACME.example:8080/h/x",
                "http://127.0.0.1/h/fuzz",
                "http://acme.example/p/..",
                "http://acme.example/h/%00",
            ])
            .as_bytes()
            .to_vec(),
        67..=71 => b"/healthz".to_vec(),
        72..=73 => b"/readyz".to_vec(),
        74..=75 => b"/health".to_vec(),
        76..=80 => rng
            .pick(&["/", "/nope", "/p", "/p/a/b", "/P/fuzz", "/healthz/x", "/h"])
            .as_bytes()
            .to_vec(),
        81..=87 => {
            let n = *rng.pick(&[258, 259, 300, 5000, 65_531, 66_000]);
            let mut t = b"/p/".to_vec();
            t.resize(n, b'a');
            t
        }
        _ => {
            let odd = *rng.pick::<&[u8]>(&[
                &b" x"[..],
                b"\t",
                b"\x7f",
                b"\xff\xfe",
                b"\"<>",
                b"{}|\\^`",
                b"#frag",
                b"\x00",
                b"\xc3\xa9",
            ]);
            let mut t = b"/p/a".to_vec();
            t.extend_from_slice(odd);
            t
        }
    };
    about.push(format!("target {}", fuzz::show(&target)));
    let kind = kind_of(&target);
    (target, kind)
}

/// The pipeline kind a target's path names (after the authority of an
/// absolute-form target), or `-`.
pub(super) fn kind_of(target: &[u8]) -> u8 {
    let path = match target.strip_prefix(b"http://") {
        Some(rest) => &rest[rest.iter().position(|b| *b == b'/').unwrap_or(rest.len())..],
        None => target,
    };
    match path.get(..3) {
        Some(b"/p/") => b'p',
        Some(b"/z/") => b'z',
        Some(b"/s/") => b's',
        Some(b"/a/") => b'a',
        Some(b"/h/") => b'h',
        _ => b'-',
    }
}

pub(super) const GOOD_OFFERS: &[&str] = &[
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "x-webkit-deflate-frame, permessage-deflate",
];

pub(super) fn base(rng: &mut Rng, target: Vec<u8>, kind: u8) -> Request {
    let key = BASE64.encode(rng.bytes(16));
    // Tenant acme's pipeline answers its host only (any case, any port).
    let host: &[u8] = if kind == b'h' && rng.chance(0.6) {
        rng.pick::<&[u8]>(&[b"acme.example", b"ACME.Example:8080", b"acme.example:"])
    } else {
        b"127.0.0.1"
    };
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        ("Host".into(), host.to_vec()),
        ("Upgrade".into(), b"websocket".to_vec()),
        ("Connection".into(), b"Upgrade".to_vec()),
        ("Sec-WebSocket-Key".into(), key.into_bytes()),
        ("Sec-WebSocket-Version".into(), b"13".to_vec()),
    ];
    if kind == b's' && rng.chance(0.8) {
        let offer = *rng.pick(&["v1.fuzz", "v2.fuzz", "v1.fuzz, v2.fuzz", "chat, v1.fuzz"]);
        headers.push(("Sec-WebSocket-Protocol".into(), offer.into()));
    }
    if kind == b'a' && rng.chance(0.8) {
        headers.push(("Authorization".into(), valid_auth().into_bytes()));
    }
    if kind == b'z' && rng.chance(0.7) {
        let offer = *rng.pick(GOOD_OFFERS);
        headers.push(("Sec-WebSocket-Extensions".into(), offer.into()));
    }
    if rng.chance(0.3) {
        headers.push(("Origin".into(), b"http://ok.example".to_vec()));
    }
    if rng.chance(0.2) {
        for i in (1..headers.len()).rev() {
            headers.swap(i, rng.below(i + 1));
        }
    }
    if rng.chance(0.08) {
        headers.retain(|(n, _)| n != "Upgrade" && n != "Connection");
    }
    Request {
        method: "GET".into(),
        target,
        version: "HTTP/1.1".into(),
        headers,
        body: Vec::new(),
        opaque: Vec::new(),
    }
}
