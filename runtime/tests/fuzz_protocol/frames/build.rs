//! Valid frames: data messages (text, binary, fragmented, compressed),
//! pings, pongs and closes.

use super::Spec;
use crate::MAX;
use crate::harness::{self as fuzz, Len, Rng};

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

pub(super) fn data_message(
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

pub(super) fn control(rng: &mut Rng) -> Spec {
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

pub(super) fn close(rng: &mut Rng) -> Spec {
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
