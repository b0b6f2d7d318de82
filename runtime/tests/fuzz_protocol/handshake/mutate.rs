//! Mutations of a valid upgrade request.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::Request;
use super::valid::{pick_target, valid_auth};
use crate::harness::{self as fuzz, Rng};

pub(super) fn mutate(rng: &mut Rng, r: &mut Request, about: &mut Vec<String>) {
    let n = r.headers.len();
    match rng.below(24) {
        0 if n > 0 => {
            let (name, _) = r.headers.remove(rng.below(n));
            about.push(format!("no {name}"));
        }
        1 if n > 0 => {
            let copy = r.headers[rng.below(n)].clone();
            about.push(format!("{} twice", copy.0));
            r.headers.insert(rng.range(0, n), copy);
        }
        2 if n > 0 => {
            let i = rng.below(n);
            r.headers[i].0 = if rng.chance(0.5) {
                r.headers[i].0.to_ascii_lowercase()
            } else {
                r.headers[i].0.to_ascii_uppercase()
            };
            about.push(format!("header {}", r.headers[i].0));
        }
        3 => {
            let v = *rng.pick(&[
                "12", "14", "8", "13, 8", "8, 13", "", "013", " 13 ", "1.3", "\u{663}",
            ]);
            r.set("Sec-WebSocket-Version", v.into());
            about.push(format!("version {v:?}"));
        }
        4 => {
            let v = match rng.below(11) {
                0 => String::new(),
                1 => "a".into(),
                2 => "x".repeat(1000),
                3 => "!".repeat(24),
                4 => BASE64.encode(rng.bytes(15)),
                5 => BASE64.encode(rng.bytes(17)),
                // Bits past the 16th byte (not canonical base64).
                6 => "dGhlIHNhbXBsZSBub25jZR==".into(),
                // The URL-safe alphabet.
                7 => "_-8AAAAAAAAAAAAAAAAAAA==".into(),
                8 => "dGhlIHNhbXBs ZSBub25jZQ=".into(),
                9 => "dGhlIHNhbXBsZSBub25jZQ=".into(),
                _ => "dGhlIHNhbXBsZSBub25jZQ".into(),
            };
            about.push(format!("key {}", fuzz::show(v.as_bytes())));
            r.set("Sec-WebSocket-Key", v.into_bytes());
        }
        5 => {
            let size = *rng.pick(&[8_000, 60_000, 300_000, 500_000]);
            r.headers.push(("X-Fuzz".into(), vec![b'a'; size]));
            about.push(format!("a {size}B header"));
        }
        6 => {
            let count = *rng.pick(&[50, 94, 95, 96, 101, 150, 1000]);
            for i in 0..count {
                r.headers.push((format!("X-N{i}"), b"v".to_vec()));
            }
            about.push(format!("{count} more headers"));
        }
        7 => {
            let m = *rng.pick(&[
                "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH", "get", "FOO", "G@T", "",
                "CONNECT",
            ]);
            r.method = m.into();
            about.push(format!("method {m:?}"));
        }
        8 => {
            let v = *rng.pick(&[
                "HTTP/1.0",
                "HTTP/2.0",
                "HTTP/1.2",
                "http/1.1",
                "HTTP/1.1x",
                "HTTP/1",
                "",
                "HTTP/0.9",
            ]);
            r.version = v.into();
            about.push(format!("HTTP version {v:?}"));
        }
        9 => {
            if rng.chance(0.3) {
                let (a, b) = if rng.chance(0.5) {
                    ("http://ok.example", "http://evil.example")
                } else {
                    ("http://evil.example", "http://ok.example")
                };
                r.headers.push(("Origin".into(), a.into()));
                r.headers.push(("Origin".into(), b.into()));
                about.push(format!("origins {a} then {b}"));
            } else {
                let o = *rng.pick(&[
                    "http://evil.example",
                    "null",
                    "HTTP://OK.EXAMPLE",
                    "http://ok.example/",
                    "http://ok.example:80",
                    "\u{e9}",
                    "",
                ]);
                r.set("Origin", o.into());
                about.push(format!("origin {o:?}"));
            }
        }
        10 => {
            let count = *rng.pick(&[1, 20, 200, 2000]);
            let mut values: Vec<String> = (0..count)
                .map(|i| format!("p{i}.{}", rng.below(1000)))
                .collect();
            if rng.chance(0.5) {
                let at = rng.below(values.len());
                values.insert(at, "v1.fuzz".into());
            }
            if rng.chance(0.5) {
                r.set("Sec-WebSocket-Protocol", values.join(", ").into_bytes());
            } else {
                for v in values.iter().take(90) {
                    r.headers
                        .push(("Sec-WebSocket-Protocol".into(), v.clone().into_bytes()));
                }
            }
            about.push(format!("{count} subprotocols offered"));
        }
        11 => {
            let v = *rng.pick(&[
                "permessage-deflate; server_max_window_bits=8",
                "permessage-deflate; server_max_window_bits=16",
                "permessage-deflate; client_max_window_bits=08",
                "permessage-deflate; client_max_window_bits=\"10\"",
                "permessage-deflate; client_max_window_bits=\"1\\0\"",
                "permessage-deflate; client_max_window_bits=\"",
                "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                "permessage-deflate; x=1",
                "permessage-deflate;;;,,,",
                "permessage-deflate; server_max_window_bits",
                "PERMESSAGE-DEFLATE; CLIENT_NO_CONTEXT_TAKEOVER",
                "permessage-deflate; server_max_window_bits=15, permessage-deflate",
                "\"permessage-deflate\"",
                ";",
                "permessage-deflate; a=\"\\",
            ]);
            let value = if rng.chance(0.2) {
                vec![v; 500].join(", ")
            } else {
                v.to_owned()
            };
            r.set("Sec-WebSocket-Extensions", value.into_bytes());
            about.push(format!("extensions {v:?}"));
        }
        12 => {
            let v = match rng.below(10) {
                0 => "Basic ".into(),
                1 => "Basic !!!!".into(),
                2 => "Bearer x".into(),
                3 => format!("Basic {}", BASE64.encode(b"fuzz:wrong")),
                4 => format!("Basic {}", BASE64.encode(b"fuzz")),
                5 => "Basic".into(),
                6 => format!("Basic {}", BASE64.encode(rng.bytes(4000))),
                7 => format!("Basic {}", BASE64.encode(b"\xff\xfe:x")),
                8 => valid_auth().trim_end_matches('=').to_owned(),
                _ => format!("Basic {}", BASE64.encode(b":secret")),
            };
            about.push(format!("authorization {}", fuzz::show(v.as_bytes())));
            if rng.chance(0.3) {
                r.headers.push(("Authorization".into(), v.into_bytes()));
            } else {
                r.set("Authorization", v.into_bytes());
            }
        }
        13 => {
            let evil = *rng.pick::<&[u8]>(&[
                &b"x\r\nX-Injected: 1"[..],
                b"13\r\nSec-WebSocket-Version: 12",
                b"x\nX-Bare-LF: 1",
                b"x\ry",
                b"x\x00y",
                b"x\x01y",
            ]);
            let i = rng.below(n.max(1)).min(n.saturating_sub(1));
            if let Some(header) = r.headers.get_mut(i) {
                header.1 = evil.to_vec();
                about.push(format!("{} = {}", header.0, fuzz::show(evil)));
                r.opaque.push("header injection".into());
            }
        }
        14 => {
            if rng.chance(0.5) {
                let v = *rng.pick(&[
                    "keep-alive, Upgrade",
                    "upgrade",
                    "Upgrade, close",
                    "close",
                    "keep-alive",
                    "Upgrade,,",
                    "UPGRADE",
                    "Upgraded",
                ]);
                r.set("Connection", v.into());
                about.push(format!("Connection: {v}"));
            } else {
                let v = *rng.pick(&["WebSocket", "websocket, h2c", "h2c", "websocket/13", ""]);
                r.set("Upgrade", v.into());
                about.push(format!("Upgrade: {v}"));
            }
        }
        15 => {
            if rng.chance(0.5) {
                r.headers.push(("Content-Length".into(), b"5".to_vec()));
                r.body = b"hello".to_vec();
            } else {
                r.headers
                    .push(("Transfer-Encoding".into(), b"chunked".to_vec()));
                r.body = b"5\r\nhello\r\n0\r\n\r\n".to_vec();
            }
            about.push("a body".into());
            r.opaque.push("a body".into());
        }
        16 => {
            r.headers.push(("X-Fold".into(), b"a\r\n b".to_vec()));
            about.push("an obs-fold line".into());
            r.opaque.push("obs-fold".into());
        }
        17 => {
            let name = *rng.pick(&["X Y", "", ":", "X\x01", "\u{c4}", "(x)", "X-\u{7f}"]);
            r.headers.push((name.into(), b"v".to_vec()));
            about.push(format!("header name {name:?}"));
            r.opaque.push("an odd header name".into());
        }
        18 => {
            let size = rng.range(1, 64);
            let value = rng.bytes(size);
            about.push(format!("X-Random = {}", fuzz::show(&value)));
            r.headers.push(("X-Random".into(), value));
            r.opaque.push("random header bytes".into());
        }
        19 => {
            let (target, _) = pick_target(rng, about);
            r.target = target;
        }
        20 => {
            r.headers.push(("Host".into(), b"evil.example".to_vec()));
            about.push("two Hosts".into());
        }
        21 => {
            // The Host's form: an authority (host, optional port), nothing
            // else.
            let v = *rng.pick::<&[u8]>(&[
                b"",
                b"127.0.0.1:80",
                b"127.0.0.1:",
                b"localhost:8080:3030",
                b"[::1]",
                b"[::1]:80",
                b"[::1",
                b"::1",
                b"fuzz@127.0.0.1",
                b"a b",
                b"x/y",
                b"127.0.0.1?",
                b"%41",
                b"ok.example, evil.example",
                b"acme.example",
                b"ACME.EXAMPLE:443",
                "\u{e9}".as_bytes(),
            ]);
            r.set("Host", v.to_vec());
            about.push(format!("Host {}", fuzz::show(v)));
        }
        22 => {
            // One of the headers an upgrade has exactly one (at most one
            // Origin) twice, the same or not; or the version missing.
            let name = *rng.pick(&[
                "Host",
                "Sec-WebSocket-Key",
                "Sec-WebSocket-Version",
                "Origin",
            ]);
            if name == "Sec-WebSocket-Version" && rng.chance(0.3) {
                r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                about.push(format!("no {name}"));
                return;
            }
            let value = match (r.first(name), rng.chance(0.5)) {
                (Some(same), true) => same.to_vec(),
                _ => match name {
                    "Host" => b"127.0.0.1".to_vec(),
                    "Sec-WebSocket-Key" => BASE64.encode(rng.bytes(16)).into_bytes(),
                    "Sec-WebSocket-Version" => b"13".to_vec(),
                    _ => b"http://ok.example".to_vec(),
                },
            };
            about.push(format!("another {name}: {}", fuzz::show(&value)));
            let at = rng.range(0, r.headers.len());
            r.headers.insert(at, (name.into(), value));
        }
        _ => {
            r.headers.push((
                "X-Unicode".into(),
                "\u{e9}\u{20ac}\u{1d11e}".as_bytes().to_vec(),
            ));
            about.push("a UTF-8 header value".into());
        }
    }
}
