//! Raw HTTP requests on fresh connections: valid upgrades for every
//! pipeline, then mutations of them (headers missing, duplicated, in
//! odd case, huge or many; bad versions, keys, methods, HTTP versions,
//! Hosts, origins, subprotocol and extension lists, credentials; header
//! injection, odd and long paths, dot and empty segments, bad channel
//! names, absolute-form targets, bodies, pipelining, bare LF, obs-fold,
//! truncation, slowloris, random bytes).
//!
//! Allowed statuses (what the code and hyper can answer): 101 (upgrade),
//! 200 (`/healthz`, `/readyz`, `/health`), 400 (hyper: a request it
//! cannot parse; Sluice: an upgrade not in HTTP/1.1, without exactly one
//! Host, key or version, with a key that is not 16 base64 bytes, two
//! Origins, a dot or empty path segment, a bad channel name, or no
//! supported subprotocol), 401 (basic-auth), 403 (origin, channel), 404
//! (no pipeline at that path and host), 405 (an upgrade that is not a
//! GET), 414 (hyper: target over 65534 bytes), 426 (not an upgrade, or a
//! version other than 13), 429 (per-IP rate), 431 (hyper: more than 100
//! headers or a head over its buffer), 503 (a full connection cap, an
//! overloaded authenticator, `/readyz`). Never another 5xx: 500 would
//! mean the authenticator failed.

mod judge;
mod model;
mod mutate;
mod valid;

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::{self as fuzz, Prepared, Rng};

use judge::judge;
use model::model;
use mutate::mutate;
use valid::{base, pick_target};

struct Request {
    method: String,
    target: Vec<u8>,
    version: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// Why the model does not apply (then only the universal rules do).
    opaque: Vec<String>,
}

impl Request {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.push(b' ');
        out.extend_from_slice(self.version.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }

    /// Every value of header `name`, as hyper sees it (trimmed).
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim_ascii())
    }

    /// The first value of header `name` (what `HeaderMap::get` returns).
    fn first<'a>(&'a self, name: &'a str) -> Option<&'a [u8]> {
        self.all(name).next()
    }

    fn set(&mut self, name: &str, value: Vec<u8>) {
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(header) => header.1 = value,
            None => self.headers.push((name.to_owned(), value)),
        }
    }
}

/// What the model expects of a request.
struct Verdict {
    /// The first response's status is one of these.
    statuses: BTreeSet<u16>,
    /// For a 101: `Sec-WebSocket-Accept`, the subprotocol, whether a
    /// permessage-deflate answer is required.
    accept: Option<String>,
    protocol: Option<&'static str>,
    deflate_required: bool,
    /// The pipeline reached: `p`, `z`, `s`, `a`, `h`, or `-` for none.
    kind: u8,
}

/// A generated case.
struct Case {
    bytes: Vec<u8>,
    chunks: Vec<usize>,
    fin: bool,
    verdict: Option<Verdict>,
    pipelined: bool,
    /// A HEAD request: its response has no body.
    head: bool,
    about: String,
}

pub fn case(addr: &str, mut rng: Rng) -> Prepared {
    let case = generate(&mut rng);
    let addr = addr.to_owned();
    let about = match &case.verdict {
        Some(v) => format!("{} (expecting {:?})", case.about, v.statuses),
        None => format!("{} (opaque: only the universal rules)", case.about),
    };
    let bytes = case.bytes.clone();
    Prepared {
        about,
        bytes,
        run: Box::pin(async move {
            // A request the model reads is answered at once (the wait
            // costs nothing); an opaque one may just be incomplete.
            let quiet = if case.verdict.is_some() { 5000 } else { 200 };
            let wire = fuzz::exchange(
                &addr,
                case.bytes.clone(),
                case.chunks.clone(),
                (case.fin, case.head),
                Duration::from_millis(quiet),
            )
            .await?;
            judge(&case, &wire)
        }),
    }
}

fn generate(rng: &mut Rng) -> Case {
    let mut about = Vec::new();
    let plain = |bytes: Vec<u8>, about: &str, fin: bool| Case {
        chunks: vec![bytes.len()],
        bytes,
        fin,
        verdict: None,
        pipelined: false,
        head: false,
        about: about.into(),
    };
    match rng.below(100) {
        0..=2 => {
            let size = rng.range(1, 2000);
            return plain(rng.bytes(size), "random bytes", true);
        }
        3 => return plain(Vec::new(), "connect, then half-close", true),
        _ => {}
    }
    let (target, kind) = pick_target(rng, &mut about);
    let mut request = base(rng, target, kind);
    let mutations = if rng.chance(0.25) { 0 } else { rng.range(1, 3) };
    for _ in 0..mutations {
        mutate(rng, &mut request, &mut about);
    }
    let mut bytes = request.encode();
    let mut verdict = model(&request, bytes.len());
    let mut pipelined = false;
    let mut fin = true;
    match rng.below(100) {
        0..=4 => {
            let second = *rng.pick::<&[u8]>(&[
                &b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"[..],
                b"GET /p/two HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                  Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                  Sec-WebSocket-Version: 13\r\n\r\n",
                b"\x81\x85\x01\x02\x03\x04iiiii",
            ]);
            bytes.extend_from_slice(second);
            pipelined = true;
            about.push("a second request pipelined".into());
        }
        5..=9 => {
            let at = rng.below(bytes.len());
            bytes.truncate(at);
            fin = !rng.chance(0.3);
            verdict = None;
            about.push(format!(
                "truncated to {at}B{}",
                if fin {
                    ""
                } else {
                    ", never finished (slowloris)"
                }
            ));
        }
        10..=13 => {
            for _ in 0..rng.range(1, 4) {
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[at] ^= 1 << rng.below(8),
                    1 => {
                        let b = rng.byte();
                        bytes.insert(at, b);
                    }
                    _ => {
                        bytes.remove(at);
                    }
                }
            }
            verdict = None;
            about.push("bytes damaged".into());
        }
        _ => {}
    }
    let chunks = if rng.chance(0.8) || bytes.len() > 8192 {
        vec![bytes.len()]
    } else {
        fuzz::write_plan(rng, bytes.len())
    };
    Case {
        bytes,
        chunks,
        fin,
        verdict,
        pipelined,
        head: request.method == "HEAD",
        about: about.join(", "),
    }
}
