//! Structural mutations of a frame sequence and damage to its bytes.

use super::Spec;
use super::build::control;
use crate::MAX;
use crate::harness::{Len, Rng};

pub(super) fn mutate(
    rng: &mut Rng,
    frames: &mut Vec<Spec>,
    compressed: bool,
    about: &mut Vec<String>,
) {
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
    match rng.below(18) {
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
            let mut spec = plain(*rng.pick(&[0, 1, 2, 8, 9, 10]), true, rng.bytes(size));
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
        15 => {
            // Text that is not UTF-8 in a frame whose header fastwebsockets
            // refuses too: the shim, reading first, should win.
            let bad = rng
                .pick::<&[u8]>(&[
                    b"~\xff~",
                    b"~\xc0\x80",
                    b"~\xed\xa0\x80",
                    b"\xf4\x90\x80\x80",
                ])
                .to_vec();
            match rng.below(3) {
                0 => {
                    let mut spec = plain(1, true, bad);
                    spec.rsv = *rng.pick(&[1, 2, 3]);
                    let what = format!("bad text with rsv={}", spec.rsv);
                    insert(frames, spec, what, about);
                }
                1 => {
                    let mut spec = plain(1, rng.chance(0.5), bad);
                    let lie = MAX as u64 + 1 + rng.below(1000) as u64;
                    spec.len = Len::Declared(lie);
                    insert(
                        frames,
                        spec,
                        format!("bad text claiming {lie} bytes"),
                        about,
                    );
                }
                _ => {
                    let mut rest = plain(0, true, bad);
                    rest.rsv = 4;
                    about.push(format!("text, then bad text with RSV1, inserted at {at}"));
                    frames.insert(at, rest);
                    frames.insert(at, plain(1, false, b"~".to_vec()));
                }
            }
        }
        16 => {
            // A character cut between fragments: completed, broken, or
            // never finished (the message ends inside it).
            let (last, what): (&[u8], _) = *rng.pick(&[
                (&b"\x82\xac"[..], "completed"),
                (b"\x82", "unfinished"),
                (b"\x41", "broken"),
            ]);
            let mut pieces = vec![
                plain(1, false, b"~ok\xe2".to_vec()),
                plain(0, true, last.to_vec()),
            ];
            if rng.chance(0.3) {
                pieces.insert(1, plain(9, true, b"between".to_vec()));
            }
            about.push(format!(
                "a character cut between fragments, {what}, at {at}"
            ));
            for spec in pieces.into_iter().rev() {
                frames.insert(at, spec);
            }
        }
        _ => {
            let spec = control(rng);
            insert(frames, spec, "a control frame".into(), about);
        }
    }
}

pub(super) fn damage(
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
