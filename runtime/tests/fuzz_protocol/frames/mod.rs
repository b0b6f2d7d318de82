//! Frames after a valid upgrade: valid sequences (text, binary,
//! fragmented, compressed on `/z`, pings, pongs, a close), then
//! structural mutations (reserved bits, opcodes, lying lengths and
//! lengths not in their shortest form, unmasked frames, oversized or
//! fragmented control frames, bad close frames, interleaved messages,
//! stray continuations, huge 64-bit lengths, text that stops being UTF-8
//! mid-frame or between fragments, bad text in frames fastwebsockets
//! refuses too) and byte damage (bit flips, truncation, garbage, splices).

mod build;
mod mutate;

use crate::MAX;
use crate::harness::{self as fuzz, Len, Prepared, Rng, Wire};

use build::{close, control, data_message};
use mutate::{damage, mutate};

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

pub fn case(addr: &str, mut rng: Rng) -> Prepared {
    let case = generate(&mut rng);
    let addr = addr.to_owned();
    Prepared {
        about: case.about.clone(),
        bytes: case.bytes.clone(),
        run: Box::pin(run(addr, case)),
    }
}

async fn run(addr: String, case: Case) -> Result<String, String> {
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
    judge(&case, &wire)
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

fn judge(case: &Case, wire: &Wire) -> Result<String, String> {
    // However the writes cut the bytes, the answer is the same: the shim
    // judges each header before any of its payload.
    let sent = (
        case.bytes.as_slice(),
        case.compressed,
        case.known.as_slice(),
    );
    fuzz::judge_frames(sent, MAX, wire)
}
