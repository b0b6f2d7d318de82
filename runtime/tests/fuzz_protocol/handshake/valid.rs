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
        "%00",
        "%0d%0a",
    ];
    const BAD: &[&str] = &["%zz", "%ff", "%2", "%", "%c3", ""];
    let target: Vec<u8> = match rng.below(100) {
        0..=64 => {
            let kind = *rng.pick(&["p", "z", "s", "a"]);
            let channel = if kind == "a" && rng.chance(0.7) {
                "ok"
            } else if rng.chance(0.85) {
                rng.pick(CHANNELS)
            } else {
                rng.pick(BAD)
            };
            format!("/{kind}/{channel}").into_bytes()
        }
        65..=69 => b"/healthz".to_vec(),
        70..=71 => b"/readyz".to_vec(),
        72..=73 => b"/health".to_vec(),
        74..=79 => rng
            .pick(&[
                "/",
                "/nope",
                "/p",
                "/p/a/b",
                "/P/fuzz",
                "//p/x",
                "/healthz/x",
                "http://127.0.0.1/p/fuzz",
            ])
            .as_bytes()
            .to_vec(),
        80..=86 => {
            let n = *rng.pick(&[300, 5000, 65_531, 66_000]);
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
    let kind = match target.get(..3) {
        Some(b"/p/") => b'p',
        Some(b"/z/") => b'z',
        Some(b"/s/") => b's',
        Some(b"/a/") => b'a',
        _ => b'-',
    };
    about.push(format!("target {}", fuzz::show(&target)));
    (target, kind)
}

pub(super) const GOOD_OFFERS: &[&str] = &[
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "x-webkit-deflate-frame, permessage-deflate",
];

pub(super) fn base(rng: &mut Rng, target: Vec<u8>, kind: u8) -> Request {
    let key = BASE64.encode(rng.bytes(16));
    let mut headers: Vec<(String, Vec<u8>)> = vec![
        ("Host".into(), b"127.0.0.1".to_vec()),
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
