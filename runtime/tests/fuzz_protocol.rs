//! Fuzzing with an in-tree harness (`support::fuzz`; cargo-fuzz needs a
//! nightly compiler): the WebSocket frame parser and the handshake path of
//! the real binary, and the config loader and route templates in-process.
//!
//! Every case is generated from the seed and its index alone. Over the
//! network the server's answer is checked against a model of the contract
//! (README, "Connection lifecycle and close codes"; RFC 6455): the messages
//! the echo handler sends back, the pongs, and the close code or the drop
//! the connection ends with; never a hang. After each batch of cases a
//! well-behaved client must still get its echo and `/healthz` answer 200.
//!
//! The budget is bounded: by default up to 5000 frame cases and 1000
//! handshakes (10 s each at most, run side by side), 2000 pipeline files
//! and 20000 templates (a second or two).
//! The seed is fixed (20261122) so the test command is deterministic;
//! `SLUICE_FUZZ_SEED=random` explores, `SLUICE_FUZZ_SEED=N` replays a run
//! (the seed is printed), `SLUICE_FUZZ_CASES`
//! and `SLUICE_FUZZ_SECS` set its size, `SLUICE_FUZZ_ONLY=frames:12,frames:40`
//! runs just those cases, and `SLUICE_FUZZ_STRICT=1` holds the server to
//! RFC 6455 where it is knowingly lenient (see `support::fuzz::predict`
//! and `handshake::model`: unmasked frames, lengths not in their shortest
//! form, pong frames over 125 bytes, a non-GET or HTTP/1.0
//! upgrade, a key that is not 16 base64 bytes, not exactly one Host).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use support::Sluice;
use support::fuzz::{self, Len, Prepared, Rng, Settings, Wire};

/// `max_message_size` of the fuzzed pipelines.
const MAX: usize = 4096;

/// The server under test: one listener, four pipelines with the echo
/// handler: `/p/{channel}` plain, `/z/{channel}` with permessage-deflate,
/// `/s/{channel}` requiring a subprotocol (at most 2 connections),
/// `/a/{channel}` behind basic-auth (user `fuzz`, channel `ok` only).
fn start(dir: &Path) -> (Sluice, String) {
    let probe = sluice_runtime::builtin::artifact("handler-probe").expect("probe is built");
    let file = format!(
        r#"
[[listeners]]
name = "public"
address = "127.0.0.1:0"
allowed_origins = ["http://ok.example"]
connections_per_ip = {{ per_second = 1000000, burst = 1000000 }}
handshake_timeout_ms = 1000
ping_interval_ms = 0

[[pipelines]]
name = "plain"
path = "/p/{{channel}}"
max_message_size = {MAX}
[pipelines.handler]
plugin = "{probe}"

[[pipelines]]
name = "deflate"
path = "/z/{{channel}}"
max_message_size = {MAX}
compression = true
[pipelines.handler]
plugin = "{probe}"

[[pipelines]]
name = "protocols"
path = "/s/{{channel}}"
subprotocols = ["v2.fuzz", "v1.fuzz"]
require_subprotocol = true
max_connections = 2
[pipelines.handler]
plugin = "{probe}"

[[pipelines]]
name = "guarded"
path = "/a/{{channel}}"
[pipelines.auth]
plugin = "basic-auth"
config = {{ users = {{ fuzz = "secret" }}, channels = {{ fuzz = ["ok"] }} }}
[pipelines.handler]
plugin = "{probe}"
"#
    );
    let sluice = Sluice::start(dir, "fuzz", &file, &[]);
    let addr = sluice.base.trim_start_matches("ws://").to_owned();
    (sluice, addr)
}

/// Runs a network target: the server, then the cases in batches of
/// `batch`, `concurrency` at a time, with the liveness check after each.
async fn fuzz_server(
    settings: Settings,
    (batch, concurrency): (usize, usize),
    case: fn(&str, Rng, bool) -> Prepared,
) {
    if settings.indices().is_empty() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (sluice, addr) = start(dir.path());
    let pid = sluice.child.id();
    // Generous: the point is to catch an allocation sized by a lying length.
    let max_rss = sluice.rss_kib() + 256 * 1024;
    let strict = settings.strict;
    fuzz::drive(
        &settings,
        batch,
        concurrency,
        |_, rng| case(&addr, rng, strict),
        || fuzz::alive(addr.clone(), pid, max_rss),
    )
    .await;
    drop(sluice);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_frames() {
    fuzz_server(
        Settings::from_env("frames", 5000, 10.0),
        (50, 8),
        frames::case,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_handshake() {
    // The digests the oracle relies on (RFC 6455 §1.3's example).
    assert_eq!(
        fuzz::accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    );
    fuzz_server(
        Settings::from_env("handshake", 1000, 10.0),
        (150, 16),
        handshake::case,
    )
    .await;
}

/// Found by `fuzz_frames` (in its first batch, whatever the seed): a close
/// frame over 125 bytes (RFC 6455 §5.5: control frames carry at most 125)
/// is taken, and the server's answer is then itself a control frame over
/// 125 bytes: the echo of a valid code with a long reason, or 1002 with the
/// client's long reason after a forbidden code. Expected: a close with 1002
/// (as for a ping over 125 bytes), and never an invalid frame from the
/// server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regression_close_frames_over_125_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let (_sluice, addr) = start(dir.path());
    for code in [1000u16, 1005] {
        let mut payload = code.to_be_bytes().to_vec();
        payload.resize(126, b'a');
        // Masked with a zero key, so the hex reads as the payload.
        let bytes = fuzz::frame(true, 0, 8, Some([0; 4]), Len::Minimal, &payload);
        let (stream, _, greeting) = fuzz::upgrade(&addr, "/p/x", "").await.unwrap();
        let wire = fuzz::converse(stream, greeting, bytes.clone(), vec![bytes.len()], true)
            .await
            .unwrap();
        let heard = fuzz::hear(&wire.bytes, false, |c| c == 1002, wire.reset);
        let replay = format!(
            "after the upgrade, the client sent a close frame with code {code} and a 124-byte \
             reason (126 bytes):\n{}\nthe server answered:\n{}",
            fuzz::hex_block(&bytes),
            fuzz::hex_block(&wire.bytes)
        );
        match heard {
            Ok(heard) => assert_eq!(heard.close_code(), Some(1002), "{replay}"),
            Err(error) => panic!("{error}\n{replay}"),
        }
    }
}

mod frames {
    //! Frames after a valid upgrade: valid sequences (text, binary,
    //! fragmented, compressed on `/z`, pings, pongs, a close), then
    //! structural mutations (reserved bits, opcodes, lying lengths, unmasked
    //! and oversized or fragmented control frames, bad close frames,
    //! interleaved messages, stray continuations, huge 64-bit lengths) and
    //! byte damage (bit flips, truncation, garbage, splices).

    use super::*;

    /// One client frame before encoding (payload unmasked).
    #[derive(Clone, Debug)]
    struct Spec {
        fin: bool,
        rsv: u8,
        opcode: u8,
        mask: Option<[u8; 4]>,
        len: Len,
        payload: Vec<u8>,
    }

    /// A generated case.
    pub struct Case {
        /// On `/z` (permessage-deflate agreed) rather than `/p`.
        pub compressed: bool,
        /// What the client sends after the upgrade.
        pub bytes: Vec<u8>,
        /// Write sizes (0: a pause).
        pub chunks: Vec<usize>,
        /// Compressed payloads generated here and the messages they carry.
        pub known: Vec<fuzz::Deflated>,
        /// In words.
        pub about: String,
    }

    pub fn case(addr: &str, mut rng: Rng, strict: bool) -> Prepared {
        let case = generate(&mut rng);
        let addr = addr.to_owned();
        Prepared {
            about: case.about.clone(),
            bytes: case.bytes.clone(),
            run: Box::pin(run(addr, case, strict)),
        }
    }

    async fn run(addr: String, case: Case, strict: bool) -> Result<String, String> {
        let (path, extra) = if case.compressed {
            (
                "/z/fuzz",
                "Sec-WebSocket-Extensions: permessage-deflate\r\n",
            )
        } else {
            ("/p/fuzz", "")
        };
        let (stream, head, greeting) = fuzz::upgrade(&addr, path, extra).await?;
        if case.compressed && !head.to_ascii_lowercase().contains("permessage-deflate") {
            return Err(format!("permessage-deflate was not agreed: {head}"));
        }
        let wire = fuzz::converse(
            stream,
            greeting,
            case.bytes.clone(),
            case.chunks.clone(),
            true,
        )
        .await?;
        judge(&case, &wire, strict)
    }

    pub fn generate(rng: &mut Rng) -> Case {
        let compressed = rng.chance(0.3);
        let mut about = vec![if compressed { "on /z" } else { "on /p" }.to_owned()];
        let mut known = Vec::new();
        if rng.chance(0.04) {
            let size = rng.range(1, 3000);
            let bytes = rng.bytes(size);
            about.push("random bytes".into());
            let chunks = chunks(rng, bytes.len());
            return Case {
                compressed,
                bytes,
                chunks,
                known,
                about: about.join(", "),
            };
        }
        let mut frames = Vec::new();
        for _ in 0..rng.range(1, 6) {
            match rng.below(100) {
                0..=59 => data_message(rng, compressed, &mut frames, &mut known, &mut about),
                _ => {
                    let spec = control(rng);
                    about.push(format!(
                        "{}({})",
                        if spec.opcode == 9 { "ping" } else { "pong" },
                        spec.payload.len()
                    ));
                    frames.push(spec);
                }
            }
        }
        if rng.chance(0.5) {
            let spec = close(rng);
            about.push(format!("close({})", fuzz::show(&spec.payload)));
            frames.push(spec);
            if rng.chance(0.2) {
                about.push("after the close:".into());
                data_message(rng, compressed, &mut frames, &mut known, &mut about);
            }
        }
        if rng.chance(0.65) {
            for _ in 0..rng.range(1, 3) {
                mutate(rng, &mut frames, compressed, &mut about);
            }
        }
        let mut bytes = Vec::new();
        let mut heads = Vec::new();
        for spec in &frames {
            let encoded = fuzz::frame(
                spec.fin,
                spec.rsv,
                spec.opcode,
                spec.mask,
                spec.len,
                &spec.payload,
            );
            let size = fuzz::parse_header(&encoded).map_or(2, |h| h.size);
            heads.push((bytes.len(), size));
            bytes.extend_from_slice(&encoded);
        }
        if rng.chance(0.25) && !bytes.is_empty() {
            damage(rng, &mut bytes, &heads, &mut about);
        }
        let chunks = chunks(rng, bytes.len());
        Case {
            compressed,
            bytes,
            chunks,
            known,
            about: about.join(", "),
        }
    }

    fn chunks(rng: &mut Rng, total: usize) -> Vec<usize> {
        if rng.chance(0.5) {
            vec![total]
        } else {
            fuzz::write_plan(rng, total)
        }
    }

    fn mask(rng: &mut Rng) -> Option<[u8; 4]> {
        Some(if rng.chance(0.1) {
            [0; 4]
        } else {
            [rng.byte(), rng.byte(), rng.byte(), rng.byte()]
        })
    }

    /// UTF-8 text of `size` bytes starting with `~` (never a command of
    /// the probe handler, so it is echoed).
    fn text(rng: &mut Rng, size: usize) -> Vec<u8> {
        const CHARS: &[&str] = &[
            "a",
            "z",
            " ",
            "~",
            "0",
            "é",
            "€",
            "𝄞",
            "\u{0}",
            "\u{7f}",
            "中",
            "\u{feff}",
            "\u{10ffff}",
        ];
        let mut out = Vec::with_capacity(size);
        if size > 0 {
            out.push(b'~');
        }
        while out.len() < size {
            let c = rng.pick(CHARS).as_bytes();
            if out.len() + c.len() <= size {
                out.extend_from_slice(c);
            } else {
                out.push(b'a');
            }
        }
        out
    }

    fn break_utf8(rng: &mut Rng, data: &mut Vec<u8>) {
        let at = rng.range(0, data.len());
        let bad: &[u8] = match rng.below(4) {
            0 => &[0xff],
            1 => &[0xc0, 0x80],
            2 => &[0xed, 0xa0, 0x80],
            _ => &[0xe2, 0x82],
        };
        data.splice(at..at, bad.iter().copied());
    }

    /// Cuts `payload` into `n` pieces (some may be empty).
    fn split(rng: &mut Rng, payload: &[u8], n: usize) -> Vec<Vec<u8>> {
        let mut cuts: Vec<usize> = (1..n).map(|_| rng.range(0, payload.len())).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for cut in cuts.into_iter().chain(std::iter::once(payload.len())) {
            pieces.push(payload[from..cut].to_vec());
            from = cut;
        }
        pieces
    }

    fn data_message(
        rng: &mut Rng,
        compressed: bool,
        frames: &mut Vec<Spec>,
        known: &mut Vec<fuzz::Deflated>,
        about: &mut Vec<String>,
    ) {
        let is_text = rng.chance(0.5);
        let size = match rng.below(100) {
            0..=4 => 0,
            5..=44 => rng.range(1, 16),
            45..=79 => rng.range(17, 200),
            80..=91 => rng.range(200, 1500),
            92..=96 => rng.range(MAX - 8, MAX),
            _ => rng.range(MAX + 1, MAX + 600),
        };
        let mut content = if is_text {
            text(rng, size)
        } else {
            rng.bytes(size)
        };
        let mut notes = Vec::new();
        if is_text && rng.chance(0.05) {
            break_utf8(rng, &mut content);
            notes.push("bad UTF-8".to_owned());
        }
        let deflated = compressed && rng.chance(0.6);
        let payload = if deflated {
            if rng.chance(0.03) {
                content = vec![b'~'; rng.range(MAX + 1, 60_000)];
                notes.push("a bomb".into());
            }
            let level = rng.range(0, 9) as u32;
            let finish = rng.chance(0.2);
            let packed = fuzz::deflate(&content, level, finish);
            notes.push(format!(
                "deflated to {}B at level {level}{}",
                packed.len(),
                if finish { " with BFINAL" } else { "" }
            ));
            known.push((packed.clone(), content.clone()));
            packed
        } else {
            content.clone()
        };
        let pieces = if rng.chance(0.6) {
            vec![payload]
        } else {
            let n = rng.range(2, 5);
            split(rng, &payload, n)
        };
        let n = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            let opcode = match (i, is_text) {
                (0, true) => 1,
                (0, false) => 2,
                _ => 0,
            };
            frames.push(Spec {
                fin: i + 1 == n,
                rsv: if i == 0 && deflated { 4 } else { 0 },
                opcode,
                mask: mask(rng),
                len: Len::Minimal,
                payload: piece,
            });
            if i + 1 < n && rng.chance(0.25) {
                frames.push(control(rng));
            }
        }
        if n > 1 {
            notes.push(format!("in {n} frames"));
        }
        about.push(format!(
            "{}({}B{}{})",
            if is_text { "text" } else { "binary" },
            content.len(),
            if notes.is_empty() { "" } else { ", " },
            notes.join(", ")
        ));
    }

    fn control(rng: &mut Rng) -> Spec {
        let size = rng.range(0, 125);
        Spec {
            fin: true,
            rsv: 0,
            opcode: *rng.pick(&[9, 10]),
            mask: mask(rng),
            len: Len::Minimal,
            payload: rng.bytes(size),
        }
    }

    fn close(rng: &mut Rng) -> Spec {
        let payload = if rng.chance(0.3) {
            Vec::new()
        } else {
            let code: u16 = *rng.pick(&[
                1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 3000, 3999, 4000,
                4999,
            ]);
            let mut payload = code.to_be_bytes().to_vec();
            let size = rng.range(0, 40);
            payload.extend(text(rng, size));
            payload
        };
        Spec {
            fin: true,
            rsv: 0,
            opcode: 8,
            mask: mask(rng),
            len: Len::Minimal,
            payload,
        }
    }

    fn mutate(rng: &mut Rng, frames: &mut Vec<Spec>, compressed: bool, about: &mut Vec<String>) {
        let i = rng.below(frames.len());
        let at = rng.range(0, frames.len());
        let insert = |frames: &mut Vec<Spec>, spec: Spec, what: String, about: &mut Vec<String>| {
            about.push(format!("{what} inserted at {at}"));
            frames.insert(at, spec);
        };
        let plain = |opcode: u8, fin: bool, payload: Vec<u8>| Spec {
            fin,
            rsv: 0,
            opcode,
            mask: Some([1, 2, 3, 4]),
            len: Len::Minimal,
            payload,
        };
        match rng.below(16) {
            0 => {
                frames[i].rsv = rng.range(1, 7) as u8;
                about.push(format!("rsv={} on frame {i}", frames[i].rsv));
            }
            1 => {
                frames[i].opcode = *rng.pick(&[3, 4, 5, 6, 7, 11, 12, 13, 14, 15]);
                about.push(format!("opcode {} on frame {i}", frames[i].opcode));
            }
            2 => {
                let true_len = frames[i].payload.len() as u64;
                let random = rng.u64();
                let lie = *rng.pick(&[
                    0,
                    1,
                    125,
                    126,
                    127,
                    65_535,
                    65_536,
                    MAX as u64,
                    MAX as u64 + 1,
                    1 << 31,
                    1 << 32,
                    1 << 40,
                    1 << 63,
                    u64::MAX,
                    true_len + 1,
                    true_len.saturating_sub(1),
                    random,
                ]);
                frames[i].len = Len::Declared(lie);
                about.push(format!("frame {i} says {lie} bytes for {true_len}"));
            }
            3 => {
                frames[i].len = if frames[i].payload.len() <= 0xffff && rng.chance(0.5) {
                    Len::Wide16
                } else {
                    Len::Wide64
                };
                about.push(format!("frame {i} length as {:?}", frames[i].len));
            }
            4 => {
                frames[i].mask = None;
                about.push(format!("frame {i} unmasked"));
            }
            5 => {
                let opcode = *rng.pick(&[8, 9, 10]);
                let size = rng.range(126, 400);
                let mut payload = if opcode == 8 {
                    1000u16.to_be_bytes().to_vec()
                } else {
                    Vec::new()
                };
                payload.resize(size, b'r');
                insert(
                    frames,
                    plain(opcode, true, payload),
                    format!("op {opcode} of {size}B"),
                    about,
                );
            }
            6 => {
                if frames[i].opcode >= 8 {
                    frames[i].fin = false;
                    about.push(format!("control frame {i} not final"));
                } else {
                    let opcode = *rng.pick(&[8, 9, 10]);
                    let payload = if opcode == 8 {
                        vec![3, 232]
                    } else {
                        b"x".to_vec()
                    };
                    insert(
                        frames,
                        plain(opcode, false, payload),
                        format!("op {opcode} not final"),
                        about,
                    );
                }
            }
            7 => {
                let payload = vec![rng.byte()];
                insert(
                    frames,
                    plain(8, true, payload),
                    "a 1-byte close".into(),
                    about,
                );
            }
            8 => {
                let code: u16 = *rng.pick(&[
                    0, 1, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2000, 2999, 5000, 65_535,
                ]);
                let mut payload = code.to_be_bytes().to_vec();
                if rng.chance(0.2) {
                    payload.extend(vec![b'w'; 130]);
                }
                insert(
                    frames,
                    plain(8, true, payload),
                    format!("close {code}"),
                    about,
                );
            }
            9 => {
                let mut payload = 1000u16.to_be_bytes().to_vec();
                payload.extend_from_slice(rng.pick::<&[u8]>(&[
                    &[0xff, 0xfe][..],
                    &[0xe2, 0x82],
                    b"ok\xc0\x80",
                ]));
                insert(
                    frames,
                    plain(8, true, payload),
                    "close with a bad reason".into(),
                    about,
                );
            }
            10 => {
                let opcode = *rng.pick(&[1, 2]);
                let fin = rng.chance(0.5);
                insert(
                    frames,
                    plain(opcode, fin, b"~new".to_vec()),
                    format!("op {opcode} fin={fin}"),
                    about,
                );
            }
            11 => {
                let fin = rng.chance(0.5);
                insert(
                    frames,
                    plain(0, fin, b"~cont".to_vec()),
                    format!("a continuation fin={fin}"),
                    about,
                );
            }
            12 => {
                let lie = *rng.pick(&[MAX as u64 + 1, 1 << 32, 1 << 40, 1 << 62, u64::MAX]);
                let size = rng.range(0, 16);
                let mut spec = plain(*rng.pick(&[0, 1, 2, 9, 10]), true, rng.bytes(size));
                spec.len = Len::Declared(lie);
                insert(frames, spec, format!("a frame claiming {lie} bytes"), about);
            }
            13 if compressed => match rng.below(3) {
                0 => {
                    let mut spec = plain(0, rng.chance(0.5), b"x".to_vec());
                    spec.rsv = 4;
                    insert(frames, spec, "RSV1 on a continuation".into(), about);
                }
                1 => {
                    let mut spec = plain(*rng.pick(&[8, 9, 10]), true, Vec::new());
                    spec.rsv = 4;
                    insert(frames, spec, "RSV1 on a control frame".into(), about);
                }
                _ => match frames
                    .iter()
                    .position(|f| f.rsv == 4 && !f.payload.is_empty())
                {
                    Some(j) => {
                        let at = rng.below(frames[j].payload.len());
                        frames[j].payload[at] ^= 1 << rng.below(8);
                        about.push(format!("compressed frame {j} corrupted at {at}"));
                    }
                    None => {
                        let mut spec = plain(*rng.pick(&[1, 2]), true, rng.bytes(20));
                        spec.rsv = 4;
                        insert(
                            frames,
                            spec,
                            "random bytes as compressed data".into(),
                            about,
                        );
                    }
                },
            },
            13 => {
                frames[i].rsv = 4;
                about.push(format!("RSV1 on frame {i} without compression"));
            }
            14 => {
                let size = rng.range(120, 127);
                let mut payload = 1000u16.to_be_bytes().to_vec();
                payload.resize(size, b'q');
                insert(
                    frames,
                    plain(8, true, payload),
                    format!("a close of {size}B"),
                    about,
                );
            }
            _ => {
                let spec = control(rng);
                insert(frames, spec, "a control frame".into(), about);
            }
        }
    }

    fn damage(
        rng: &mut Rng,
        bytes: &mut Vec<u8>,
        heads: &[(usize, usize)],
        about: &mut Vec<String>,
    ) {
        match rng.below(5) {
            0 => {
                let (start, size) = *rng.pick(heads);
                let at = start + rng.below(size);
                let bit = rng.below(8);
                if at < bytes.len() {
                    bytes[at] ^= 1 << bit;
                    about.push(format!("header bit {bit} of byte {at} flipped"));
                }
            }
            1 => {
                let at = rng.below(bytes.len());
                let bit = rng.below(8);
                bytes[at] ^= 1 << bit;
                about.push(format!("bit {bit} of byte {at} flipped"));
            }
            2 => {
                let at = rng.below(bytes.len());
                bytes.truncate(at);
                about.push(format!("truncated to {at}B"));
            }
            3 => {
                let at = if rng.chance(0.8) {
                    rng.pick(heads).0
                } else {
                    bytes.len()
                };
                let size = rng.range(1, 32);
                let garbage = rng.bytes(size);
                bytes.splice(at..at, garbage);
                about.push(format!("{size} random bytes at {at}"));
            }
            _ => {
                let from = rng.below(bytes.len());
                let to = rng.range(from, bytes.len().min(from + 64));
                let piece = bytes[from..to].to_vec();
                let at = rng.range(0, bytes.len());
                bytes.splice(at..at, piece);
                about.push(format!("bytes {from}..{to} copied to {at}"));
            }
        }
    }

    fn judge(case: &Case, wire: &Wire, strict: bool) -> Result<String, String> {
        let sent = (
            case.bytes.as_slice(),
            case.compressed,
            case.known.as_slice(),
        );
        fuzz::judge_frames(sent, MAX, wire, strict)
    }
}

mod handshake {
    //! Raw HTTP requests on fresh connections: valid upgrades for every
    //! pipeline, then mutations of them (headers missing, duplicated, in
    //! odd case, huge or many; bad versions, keys, methods, HTTP versions,
    //! origins, subprotocol and extension lists, credentials; header
    //! injection, odd and long paths, bodies, pipelining, bare LF,
    //! obs-fold, truncation, slowloris, random bytes).
    //!
    //! Allowed statuses (what the code and hyper can answer): 101 (upgrade),
    //! 200 (`/healthz`, `/readyz`, `/health`), 400 (hyper: a request it
    //! cannot parse; Sluice: no supported subprotocol, or fastwebsockets:
    //! no key or a version other than 13), 401 (basic-auth), 403 (origin,
    //! channel), 404 (no pipeline at that path), 414 (hyper: target over
    //! 65534 bytes), 426 (not an upgrade), 429 (per-IP rate), 431 (hyper:
    //! more than 100 headers or a head over its buffer), 503 (a full
    //! connection cap, an overloaded authenticator, `/readyz`). Never
    //! another 5xx: 500 would mean the authenticator failed.

    use super::*;

    const STATUSES: [u16; 11] = [101, 200, 400, 401, 403, 404, 414, 426, 429, 431, 503];

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
        /// The pipeline reached: `p`, `z`, `s`, `a`, or `-` for none.
        kind: u8,
        /// RFC 6455 rules the server knowingly does not enforce here.
        lenient: Vec<&'static str>,
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

    pub fn case(addr: &str, mut rng: Rng, strict: bool) -> Prepared {
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
                judge(&case, &wire, strict)
            }),
        }
    }

    fn valid_auth() -> String {
        format!("Basic {}", fuzz::base64(b"fuzz:secret"))
    }

    /// Tokens of a comma-separated header value.
    fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
        value.split(|b| *b == b',').map(<[u8]>::trim_ascii)
    }

    fn tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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

    /// A request target and the pipeline kind it aims at.
    fn pick_target(rng: &mut Rng, about: &mut Vec<String>) -> (Vec<u8>, u8) {
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

    const GOOD_OFFERS: &[&str] = &[
        "permessage-deflate",
        "permessage-deflate; client_max_window_bits",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "x-webkit-deflate-frame, permessage-deflate",
    ];

    fn base(rng: &mut Rng, target: Vec<u8>, kind: u8) -> Request {
        let key = fuzz::base64(&rng.bytes(16));
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

    fn mutate(rng: &mut Rng, r: &mut Request, about: &mut Vec<String>) {
        let n = r.headers.len();
        match rng.below(22) {
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
                let v = match rng.below(7) {
                    0 => String::new(),
                    1 => "a".into(),
                    2 => "x".repeat(1000),
                    3 => "!".repeat(24),
                    4 => fuzz::base64(&rng.bytes(15)),
                    5 => fuzz::base64(&rng.bytes(17)),
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
                    3 => format!("Basic {}", fuzz::base64(b"fuzz:wrong")),
                    4 => format!("Basic {}", fuzz::base64(b"fuzz")),
                    5 => "Basic".into(),
                    6 => format!("Basic {}", fuzz::base64(&rng.bytes(4000))),
                    7 => format!("Basic {}", fuzz::base64(b"\xff\xfe:x")),
                    8 => valid_auth().trim_end_matches('=').to_owned(),
                    _ => format!("Basic {}", fuzz::base64(b":secret")),
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
            _ => {
                r.headers.push((
                    "X-Unicode".into(),
                    "\u{e9}\u{20ac}\u{1d11e}".as_bytes().to_vec(),
                ));
                about.push("a UTF-8 header value".into());
            }
        }
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
    fn model(r: &Request, total: usize) -> Option<Verdict> {
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
        v.deflate_required = kind == b'z'
            && offers.len() == 1
            && GOOD_OFFERS.iter().any(|o| o.as_bytes() == offers[0]);
        widen(v)
    }

    /// Checks the responses; `Ok` says what they were.
    fn judge(case: &Case, wire: &Wire, strict: bool) -> Result<String, String> {
        let mut responses = Vec::new();
        let mut at = 0;
        let mut upgraded = None;
        while at < wire.bytes.len() {
            let to_head = case.head && responses.is_empty();
            match fuzz::http_response(&wire.bytes[at..], true, to_head)? {
                Some((response, used)) => {
                    at += used;
                    let switched = response.status == 101;
                    responses.push(response);
                    if switched {
                        upgraded = Some(&wire.bytes[at..]);
                        break;
                    }
                }
                None if wire.reset => break,
                None => {
                    return Err(format!(
                        "an incomplete response before the server closed: {:?}",
                        String::from_utf8_lossy(&wire.bytes[at..])
                    ));
                }
            }
        }
        for response in &responses {
            if !STATUSES.contains(&response.status) {
                let kind = if response.status >= 500 {
                    "a 5xx other than 503"
                } else {
                    "a status outside the allowed set"
                };
                return Err(format!(
                    "{kind}: {} {}",
                    response.status,
                    String::from_utf8_lossy(&response.body)
                ));
            }
            if response.status == 101 {
                let upgrade = response.header("upgrade").unwrap_or_default();
                let connection = response.header("connection").unwrap_or_default();
                if !upgrade.eq_ignore_ascii_case("websocket")
                    || !tokens(connection.as_bytes()).any(|t| t.eq_ignore_ascii_case(b"upgrade"))
                    || response.header("sec-websocket-accept").is_none()
                {
                    return Err(format!("a 101 without the upgrade headers: {response:?}"));
                }
            }
        }
        if let Some(verdict) = &case.verdict {
            let Some(first) = responses.first() else {
                if wire.reset {
                    return Ok("reset".into());
                }
                return Err(format!(
                    "no response (expected one of {:?}); the server closed after {:?}",
                    verdict.statuses,
                    String::from_utf8_lossy(&wire.bytes)
                ));
            };
            if !verdict.statuses.contains(&first.status) {
                return Err(format!(
                    "status {} (expected one of {:?}): {}",
                    first.status,
                    verdict.statuses,
                    String::from_utf8_lossy(&first.body)
                ));
            }
            if first.status == 101 {
                if strict && !verdict.lenient.is_empty() {
                    return Err(format!("strict: {}", verdict.lenient.join("; ")));
                }
                check_upgrade(verdict, first)?;
            }
        }
        if let Some(rest) = upgraded {
            let last = responses.last().expect("a 101");
            let compressed = last.header("sec-websocket-extensions").is_some();
            let heard = fuzz::hear(
                rest,
                compressed,
                |code| fuzz::SERVER_CLOSE_CODES.contains(&code),
                wire.reset,
            )?;
            if case.verdict.is_some() && !case.pipelined && last.version == "HTTP/1.1" {
                match heard.messages.first() {
                    Some((true, greeting)) if greeting.starts_with(b"open ") => {}
                    other => {
                        return Err(format!(
                            "after the 101, the handler's greeting did not come: {other:?}"
                        ));
                    }
                }
            }
        }
        Ok(match (responses.first(), &case.verdict) {
            (None, _) => "no response".into(),
            (Some(first), Some(_)) => format!("{}", first.status),
            (Some(first), None) => format!("{} (opaque)", first.status),
        })
    }

    fn check_upgrade(verdict: &Verdict, response: &fuzz::Response) -> Result<(), String> {
        if let Some(accept) = &verdict.accept
            && response.header("sec-websocket-accept") != Some(accept.as_str())
        {
            return Err(format!(
                "Sec-WebSocket-Accept {:?}, expected {accept:?}",
                response.header("sec-websocket-accept")
            ));
        }
        if response.header("sec-websocket-protocol") != verdict.protocol {
            return Err(format!(
                "Sec-WebSocket-Protocol {:?}, expected {:?}",
                response.header("sec-websocket-protocol"),
                verdict.protocol
            ));
        }
        match response.header("sec-websocket-extensions") {
            Some(_) if verdict.kind != b'z' => {
                Err("permessage-deflate agreed on a pipeline without compression".into())
            }
            Some(value) if !value.starts_with("permessage-deflate") => {
                Err(format!("an odd Sec-WebSocket-Extensions answer: {value:?}"))
            }
            None if verdict.deflate_required => {
                Err("a plain permessage-deflate offer was not agreed".into())
            }
            _ => Ok(()),
        }
    }
}

mod in_process {
    //! Pure functions fuzzed without sockets: the config loader on mutated
    //! pipeline files, route templates and path matching.

    use sluice_runtime::config::{Loader, ParamType, RouteTemplate, Segment};

    use super::*;

    /// The environment the fixtures see (as in `tests/config.rs`).
    fn env(name: &str) -> Result<String, std::env::VarError> {
        match name {
            "WS_PASSWORD" => Ok("testpass".into()),
            "ALICE_PASSWORD" => Ok("alice-secret".into()),
            "ACME_KAFKA_PASSWORD" => Ok("kafka-secret".into()),
            _ => Err(std::env::VarError::NotPresent),
        }
    }

    const VALUES: &[&str] = &[
        "0",
        "-1",
        "1",
        "16",
        "65536",
        "4294967296",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "1e400",
        "-0.0",
        "nan",
        "inf",
        "true",
        "\"\"",
        "\"x\"",
        "\"/\"",
        "\"/{channel}\"",
        "\"/{a}/{a}\"",
        "\"/{x:float}\"",
        "\"/a{b}\"",
        "\"127.0.0.1:0\"",
        "\"[::1]:99999\"",
        "\"embedded\"",
        "\"\\u0000\"",
        "\"é€𝄞\"",
        "[]",
        "[1, \"a\"]",
        "[[]]",
        "{}",
        "{ env = \"NOPE\" }",
        "{ env = \"WS_PASSWORD\" }",
        "{ env = 5 }",
        "1979-05-27T07:32:00Z",
        "'''a\nb'''",
        "\"\"\"a\nb\"\"\"",
        "{ per_second = 0, burst = 0 }",
        "{ capacity = 0, when_full = \"close\" }",
        "{ json = \"\" }",
        "{ dead-letter = \"\" }",
        "\"../tests/config/not-a-component.wasm\"",
        "\"nope.wasm\"",
        "\"key-router\"",
        "\"basic-auth\"",
        "\"mock\"",
    ];

    const TABLES: &[&str] = &[
        "[kafka]",
        "[kafka.properties]",
        "[[listeners]]",
        "[[tenants]]",
        "[[pipelines]]",
        "[pipelines.source]",
        "[pipelines.sink]",
        "[pipelines.router]",
        "[pipelines.auth]",
        "[pipelines.handler]",
        "[[pipelines.transforms]]",
        "[plugins]",
        "[pipelines]",
        "[[kafka]]",
        "[listeners.tls]",
    ];

    #[test]
    fn fuzz_config() {
        let settings = Settings::from_env("config", 2000, 8.0);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let corpus: Vec<String> = [
            "tests/config/valid_every_key.toml",
            "tests/config/valid_seed000.toml",
            "../examples/seed001-diagnostics.toml",
            "../examples/seed003-mock.toml",
            "../pipeline.toml",
        ]
        .iter()
        .filter_map(|p| std::fs::read_to_string(root.join(p)).ok())
        .collect();
        assert!(!corpus.is_empty(), "no seed files");
        let mut keys: Vec<String> = corpus
            .iter()
            .flat_map(|text| text.lines())
            .filter_map(|line| {
                let (key, _) = line.split_once('=')?;
                let key = key.trim();
                (!key.is_empty() && !key.starts_with('#') && !key.contains(' '))
                    .then(|| key.to_owned())
            })
            .collect();
        keys.sort();
        keys.dedup();
        // Relative plugin and TLS paths resolve as for the fixtures.
        let fixture = root.join("tests/config/fuzz-mutated.toml");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("fuzz.toml");
        fuzz::run_cases(
            &settings,
            move |rng| mutate_config(rng, &corpus, &keys),
            move |bytes, rng| check_config(bytes, rng.chance(0.25), &fixture, &file),
        );
    }

    fn mutate_config(rng: &mut Rng, corpus: &[String], keys: &[String]) -> (Vec<u8>, String) {
        let seed = rng.below(corpus.len());
        let mut lines: Vec<String> = corpus[seed].lines().map(str::to_owned).collect();
        let mut about = vec![format!("seed file {seed}")];
        for _ in 0..rng.range(1, 4) {
            let i = rng.below(lines.len().max(1)).min(lines.len());
            let j = rng.below(lines.len().max(1));
            match rng.below(9) {
                0 if i < lines.len() => {
                    about.push(format!("line {i} removed"));
                    lines.remove(i);
                }
                1 if i < lines.len() => {
                    about.push(format!("line {i} twice"));
                    let line = lines[i].clone();
                    lines.insert(j, line);
                }
                2 if i < lines.len() && j < lines.len() => {
                    about.push(format!("lines {i} and {j} swapped"));
                    lines.swap(i, j);
                }
                3 if i < lines.len() && lines[i].contains('=') => {
                    let value = *rng.pick(VALUES);
                    let key = lines[i].split_once('=').map(|(k, _)| k.to_owned());
                    lines[i] = format!("{} = {value}", key.unwrap_or_default());
                    about.push(format!("line {i} = {value}"));
                }
                4 => {
                    let key = rng.pick(keys).clone();
                    let value = *rng.pick(VALUES);
                    about.push(format!("`{key} = {value}` at line {i}"));
                    lines.insert(i, format!("{key} = {value}"));
                }
                5 => {
                    let table = *rng.pick(TABLES);
                    about.push(format!("{table} at line {i}"));
                    lines.insert(i, table.to_owned());
                }
                6 if i < lines.len() => {
                    let number = *rng.pick(&["0", "-1", "99999999999999999999", "1.5", "0x10"]);
                    let line: String = lines[i]
                        .split(|c: char| c.is_ascii_digit())
                        .collect::<Vec<_>>()
                        .join(number);
                    about.push(format!("numbers of line {i} -> {number}"));
                    lines[i] = line;
                }
                7 if i < lines.len() => {
                    let weird = *rng.pick(&["", "{", "}", "{{x}}", "\\\\", "\u{7f}", "é", "a\tb"]);
                    lines[i] = lines[i].replacen('"', &format!("\"{weird}"), 1);
                    about.push(format!("string of line {i} starts with {weird:?}"));
                }
                _ => {
                    let size = rng.range(1, 40);
                    let junk: String = (0..size)
                        .map(|_| char::from(rng.range(0x20, 0x7e) as u8))
                        .collect();
                    about.push(format!("junk line {junk:?} at {i}"));
                    lines.insert(i, junk);
                }
            }
        }
        let mut bytes = lines.join("\n").into_bytes();
        if rng.chance(0.3) && !bytes.is_empty() {
            for _ in 0..rng.range(1, 4) {
                let at = rng
                    .below(bytes.len().max(1))
                    .min(bytes.len().saturating_sub(1));
                match rng.below(4) {
                    0 => bytes[at] ^= 1 << rng.below(8),
                    1 => {
                        let b = rng.byte();
                        bytes.insert(at, b);
                    }
                    2 => {
                        let end = (at + rng.range(1, 200)).min(bytes.len());
                        bytes.drain(at..end);
                    }
                    _ => bytes.truncate(at),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            about.push("bytes damaged".into());
        }
        (bytes, about.join(", "))
    }

    /// The loader returns `Ok` or diagnostics that point inside the file;
    /// it never panics. `as_file` (and any input that is not UTF-8) goes
    /// through `config::load` on a temporary file, the rest through
    /// `Loader::load_str` as if it were a fixture.
    fn check_config(
        bytes: &[u8],
        as_file: bool,
        fixture: &Path,
        file: &Path,
    ) -> Result<String, String> {
        let (result, text) = match std::str::from_utf8(bytes) {
            Ok(text) if !as_file => (Loader::new().env(&env).load_str(fixture, text), Some(text)),
            text => {
                std::fs::write(file, bytes).map_err(|e| format!("write the temp file: {e}"))?;
                (sluice_runtime::config::load(file), text.ok())
            }
        };
        let Err(diagnostics) = result else {
            return Ok("valid".into());
        };
        if diagnostics.is_empty() || diagnostics.to_string().is_empty() {
            return Err("an error without any diagnostic".into());
        }
        let outcome = match diagnostics.len() {
            1 => "1 error".to_owned(),
            n @ 2..=4 => format!("{n} errors"),
            _ => "5+ errors".to_owned(),
        };
        let Some(text) = text else {
            return Ok(outcome);
        };
        let lines = text.split('\n').count();
        for diagnostic in diagnostics.iter() {
            if let Some(p) = diagnostic.position
                && (p.line == 0 || p.line > lines || p.column == 0)
            {
                return Err(format!(
                    "a diagnostic at {p}, outside the file ({lines} lines): {diagnostic}"
                ));
            }
        }
        Ok(outcome)
    }

    #[test]
    fn fuzz_route_templates() {
        let settings = Settings::from_env("route_templates", 20000, 4.0);
        fuzz::run_cases(
            &settings,
            |rng| {
                let template = template(rng);
                let about = format!("template {template:?}");
                (template.into_bytes(), about)
            },
            |bytes, rng| check_template(rng, &String::from_utf8_lossy(bytes)),
        );
    }

    fn template(rng: &mut Rng) -> String {
        const PIECES: &[&str] = &[
            "a",
            "ws",
            "tenants",
            "x%20y",
            "ü",
            "{channel}",
            "{id:int}",
            "{u:uuid}",
            "{name:str}",
            "{_x9}",
            "{Bad}",
            "{}",
            "{a:float}",
            "{{x}}",
            "a{b}",
            "}",
            "{",
            "?",
            "#",
            " ",
            "\u{0}",
            "%",
            "{a}{b}",
            "{a:}",
            "{:int}",
        ];
        let mut out = String::new();
        if rng.chance(0.95) {
            out.push('/');
        }
        let n = rng.range(0, 5);
        for k in 0..n {
            if k > 0 {
                out.push('/');
                if rng.chance(0.03) {
                    out.push('/');
                }
            }
            out.push_str(rng.pick::<&str>(PIECES));
        }
        if rng.chance(0.03) {
            out.push('/');
        }
        out
    }

    fn encode(rng: &mut Rng, value: &str) -> String {
        let mut out = String::new();
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                out.push(char::from(b));
            } else if rng.chance(0.5) {
                out.push_str(&format!("%{b:02X}"));
            } else {
                out.push_str(&format!("%{b:02x}"));
            }
        }
        out
    }

    /// Parsing never panics; a parsed template prints back as itself,
    /// matches a path built from it (values percent-encoded, decoded back
    /// the same), and matching junk never panics.
    fn check_template(rng: &mut Rng, text: &str) -> Result<String, String> {
        let template = match RouteTemplate::parse(text) {
            Ok(template) => template,
            Err(error) => {
                let _ = error.to_string();
                return Ok("rejected".into());
            }
        };
        if RouteTemplate::parse(template.as_str()).as_ref() != Ok(&template) {
            return Err(format!("{text:?} does not parse back to itself"));
        }
        let mut path = String::new();
        let mut expected = Vec::new();
        for segment in template.segments() {
            path.push('/');
            match segment {
                Segment::Literal(literal) => path.push_str(literal),
                Segment::Param(name, kind) => {
                    let value = match kind {
                        ParamType::Int => {
                            let digits = rng.range(1, 19);
                            let sign = if rng.chance(0.3) { "-" } else { "" };
                            let number: String = (0..digits)
                                .map(|_| char::from(b'0' + rng.below(10) as u8))
                                .collect();
                            format!("{sign}{number}")
                        }
                        ParamType::Uuid => [8, 4, 4, 4, 12]
                            .iter()
                            .map(|n| {
                                (0..*n)
                                    .map(|_| *rng.pick(&['0', '9', 'a', 'f', 'A', 'F']))
                                    .collect::<String>()
                            })
                            .collect::<Vec<_>>()
                            .join("-"),
                        ParamType::Str => {
                            let n = rng.range(1, 8);
                            (0..n)
                                .map(|_| *rng.pick(&["a", "/", "%", " ", "?", "é", "\u{0}", "𝄞"]))
                                .collect()
                        }
                    };
                    path.push_str(&encode(rng, &value));
                    expected.push((name.clone(), value));
                }
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        match template.match_path(&path) {
            Some(params) if params == expected => {}
            other => {
                return Err(format!(
                    "{text:?} does not match {path:?}: got {other:?}, expected {expected:?}"
                ));
            }
        }
        let count = template.params().count();
        for _ in 0..4 {
            let mut junk = path.clone().into_bytes();
            let at = rng.range(0, junk.len());
            let piece = *rng.pick::<&[u8]>(&[&b"/"[..], b"%", b"%f", b"%zz", b"%ff", b"x", b"//"]);
            junk.splice(at..at, piece.iter().copied());
            let junk = String::from_utf8_lossy(&junk).into_owned();
            if let Some(params) = template.match_path(&junk)
                && params.len() != count
            {
                return Err(format!("{junk:?} matched {text:?} with {params:?}"));
            }
        }
        Ok(format!("parsed, {count} parameter(s)"))
    }
}
