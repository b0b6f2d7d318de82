//! permessage-deflate (RFC 7692). The first byte picks what is fuzzed:
//! - inflating untrusted payloads: never more than the limit, whatever
//!   the bytes (a decompression bomb is refused, not buffered);
//! - compress then decompress a series of messages, with and without
//!   context takeover: each comes back as it was;
//! - negotiation: any `Sec-WebSocket-Extensions` offer gets either no
//!   compression or an answer that is a valid header value (the server
//!   puts it in its 101) naming the parameters it agreed.
#![no_main]

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use sluice_protocol::deflate::codec::{Compressor, Decompressor};
use sluice_protocol::deflate::negotiate::{Policy, choose};

fuzz_target!(|input: &[u8]| {
    let [mode, knob, data @ ..] = input else {
        return;
    };
    let takeover = knob & 0x80 != 0;
    match mode % 3 {
        0 => {
            let limit = usize::from(knob & 0x7f) * 512;
            let mut inflate = Decompressor::new(takeover, limit);
            // Two messages, so a takeover state carried from the first is
            // fuzzed too.
            let (first, second) = data.split_at(data.len() / 2);
            for payload in [first, second] {
                if let Ok(message) = inflate.decompress(payload) {
                    assert!(
                        message.len() <= limit,
                        "{} bytes over a {limit}-byte limit",
                        message.len()
                    );
                }
            }
        }
        1 => {
            let mut deflate = Compressor::new(takeover);
            let mut inflate = Decompressor::new(takeover, usize::MAX);
            for message in data.split(|b| *b == *knob) {
                let packed = deflate.compress(message).expect("compressing never fails");
                let unpacked = inflate
                    .decompress(&packed)
                    .expect("our own output inflates");
                assert_eq!(unpacked, message);
            }
        }
        _ => {
            let Ok(offer) = HeaderValue::from_bytes(data) else {
                return;
            };
            let mut headers = HeaderMap::new();
            headers.append(http::header::SEC_WEBSOCKET_EXTENSIONS, offer);
            let policy = Policy {
                no_context_takeover: knob & 1 == 1,
                max_window_bits: knob >> 4,
                ..Policy::default()
            };
            if let Some((answer, params)) = choose(&headers, &policy) {
                assert!(HeaderValue::from_str(&answer).is_ok(), "answer {answer:?}");
                assert!(answer.starts_with("permessage-deflate"), "{answer}");
                assert_eq!(params.server_max_window_bits, 15);
                assert!(
                    (9..=15).contains(&params.client_max_window_bits),
                    "{params:?}"
                );
                if policy.no_context_takeover {
                    assert!(params.server_no_context_takeover && params.client_no_context_takeover);
                }
                assert_eq!(
                    answer.contains("server_no_context_takeover"),
                    params.server_no_context_takeover
                );
            }
        }
    }
});
