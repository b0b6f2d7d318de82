//! The model: what the contract says the server answers to the client's
//! frames ([`predict`]).

use std::collections::BTreeSet;

use super::{parse_header, sendable_close_code, unmask};

/// A compressed payload a generator made, and the message it carries.
pub type Deflated = (Vec<u8>, Vec<u8>);

/// What the contract says happens.
#[derive(Clone, Debug)]
pub struct Expect {
    /// The echoes (and `bye`, the handler's on-close reply, before a
    /// close echo), in order.
    pub messages: Vec<(bool, Vec<u8>)>,
    /// Pongs, in order.
    pub pongs: Vec<Vec<u8>>,
    /// How the conversation ends.
    pub end: End,
}

/// How a conversation ends.
#[derive(Clone, Debug)]
pub enum End {
    /// The client's close frame comes back as it was.
    Echo(Vec<u8>),
    /// The server closes with one of these codes (a violation: all
    /// messages before it are answered first).
    Close(BTreeSet<u16>),
    /// The stream ended mid-way: the server drops the connection
    /// without a close frame, having answered a prefix.
    Eof,
    /// The model cannot tell (compressed data it did not make, a text
    /// message that is a handler command): only the protocol rules.
    Loose,
}

/// The main expectation, others that are also right, and the strict
/// one (RFC 6455 to the letter) where the server is knowingly lenient.
pub struct Prediction {
    /// What this server does.
    pub main: Expect,
    /// Also right: closing early where the server waits for a payload it
    /// could already refuse, or an echo where the code is only newer.
    pub also: Vec<Expect>,
    /// What RFC 6455 demands where the server is lenient, and the rule.
    pub strict: Option<(Expect, &'static str)>,
}

fn codes(list: &[u16]) -> End {
    End::Close(list.iter().copied().collect())
}

/// What the server must answer to the client's `bytes` after the upgrade,
/// read frame by frame as RFC 6455 and the README's close-code table say:
/// 1002 for reserved bits (RSV1 only on the first frame of a message when
/// permessage-deflate is on), unknown opcodes, fragmented control frames,
/// pings and closes over 125 bytes, stray continuations, a message inside a
/// fragmented one, bad close frames (1 byte, a forbidden code); 1007 for
/// text or a close reason that is not UTF-8; 1009 past `max_message`, per
/// frame, across fragments or inflated; pongs for pings; the close echoed
/// after the handler's `bye`; a drop where the bytes stop mid-frame.
pub fn predict(
    bytes: &[u8],
    compressed: bool,
    known: &[Deflated],
    max_message: usize,
) -> Prediction {
    let mut now = Expect {
        messages: Vec::new(),
        pongs: Vec::new(),
        end: End::Eof,
    };
    let mut also = Vec::new();
    let mut strict = None;
    // (text, compressed, data) of a message still in fragments.
    let mut partial: Option<(bool, bool, Vec<u8>)> = None;
    let mut at = 0;
    let max = max_message as u64;
    loop {
        let rest = &bytes[at..];
        if rest.len() < 2 {
            now.end = End::Eof;
            break;
        }
        // The first byte alone decides the reserved bits and the opcode.
        let (rsv, opcode) = ((rest[0] >> 4) & 7, rest[0] & 0x0f);
        let data_start = matches!(opcode, 1 | 2);
        let mut bad = BTreeSet::new();
        if rsv != 0 && !(compressed && rsv == 4 && data_start) {
            bad.insert(1002);
        }
        if !matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10) {
            bad.insert(1002);
        }
        let Ok(h) = parse_header(rest) else {
            now.end = if bad.is_empty() {
                End::Eof
            } else {
                End::Close(bad)
            };
            break;
        };
        let control = opcode >= 8;
        if control && !h.fin {
            bad.insert(1002);
        }
        if opcode == 9 && h.len > 125 {
            bad.insert(1002);
        }
        if h.len > max {
            bad.insert(1009);
            if control {
                bad.insert(1002);
            }
        }
        if !bad.is_empty() {
            now.end = End::Close(bad);
            break;
        }
        let lenient = if h.mask.is_none() {
            Some("an unmasked client frame is taken (RFC 6455 §5.1: the server MUST close)")
        } else if h.non_minimal() {
            Some("a length not in its shortest form is taken (§5.2)")
        } else if opcode == 10 && h.len > 125 {
            Some("a pong over 125 bytes is taken (§5.5)")
        } else {
            None
        };
        if let (Some(why), None) = (lenient, &strict) {
            let expect = Expect {
                end: codes(&[1002]),
                ..now.clone()
            };
            strict = Some((expect, why));
        }
        if ((rest.len() - h.size) as u64) < h.len {
            // The server waits for the payload; one that judges the
            // header alone may close already.
            let early = match (opcode, &partial) {
                (0, None) | (1 | 2, Some(_)) => Some(1002),
                (0, Some((_, _, data))) if data.len() as u64 + h.len > max => Some(1009),
                (8, _) if h.len == 1 => Some(1002),
                _ => None,
            };
            if let Some(code) = early {
                also.push(Expect {
                    end: codes(&[code]),
                    ..now.clone()
                });
            }
            now.end = End::Eof;
            break;
        }
        let payload = unmask(&rest[h.size..h.size + h.len as usize], h.mask);
        at += h.size + h.len as usize;
        match opcode {
            8 => {
                now.end = match payload.len() {
                    0 => {
                        now.messages.push((true, b"bye".to_vec()));
                        End::Echo(payload)
                    }
                    1 => codes(&[1002]),
                    _ => {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        let mut bad = BTreeSet::new();
                        if std::str::from_utf8(&payload[2..]).is_err() {
                            bad.insert(1007);
                        }
                        if code == 1014 {
                            // Registered after RFC 6455: either is right.
                            let mut echoed = now.clone();
                            echoed.messages.push((true, b"bye".to_vec()));
                            echoed.end = End::Echo(payload.clone());
                            also.push(echoed);
                        }
                        if !sendable_close_code(code) {
                            bad.insert(1002);
                        }
                        if bad.is_empty() && payload.len() > 125 {
                            // A valid close, but too long for a control
                            // frame: refused with 1002 after the handler's
                            // `bye` (an echo would break §5.5 too).
                            now.messages.push((true, b"bye".to_vec()));
                            codes(&[1002])
                        } else if bad.is_empty() {
                            now.messages.push((true, b"bye".to_vec()));
                            End::Echo(payload)
                        } else {
                            End::Close(bad)
                        }
                    }
                };
                break;
            }
            9 => now.pongs.push(payload),
            10 => {}
            0 => {
                let Some((is_text, deflated, mut data)) = partial.take() else {
                    now.end = codes(&[1002]);
                    break;
                };
                if data.len() + payload.len() > max_message {
                    now.end = codes(&[1009]);
                    break;
                }
                data.extend_from_slice(&payload);
                if !h.fin {
                    partial = Some((is_text, deflated, data));
                    continue;
                }
                if let Some(end) = finish(&mut now, (is_text, deflated, data), known, max_message) {
                    now.end = end;
                    break;
                }
            }
            _ => {
                let (is_text, deflated) = (opcode == 1, rsv == 4);
                let mut bad = BTreeSet::new();
                // fastwebsockets checks a final text frame itself (the
                // compression shim hands it compressed text as binary).
                if is_text && h.fin && !deflated && std::str::from_utf8(&payload).is_err() {
                    bad.insert(1007);
                }
                if partial.is_some() {
                    bad.insert(1002);
                }
                if !bad.is_empty() {
                    now.end = End::Close(bad);
                    break;
                }
                if !h.fin {
                    partial = Some((is_text, deflated, payload));
                    continue;
                }
                if let Some(end) =
                    finish(&mut now, (is_text, deflated, payload), known, max_message)
                {
                    now.end = end;
                    break;
                }
            }
        }
    }
    Prediction {
        main: now,
        also,
        strict,
    }
}

/// A whole message: echoed, or the end it causes.
fn finish(
    now: &mut Expect,
    (is_text, deflated, data): (bool, bool, Vec<u8>),
    known: &[Deflated],
    max_message: usize,
) -> Option<End> {
    let data = if deflated {
        match known.iter().find(|(packed, _)| *packed == data) {
            Some((_, message)) => message.clone(),
            None => return Some(End::Loose),
        }
    } else {
        data
    };
    if data.len() > max_message {
        return Some(codes(&[1009]));
    }
    if is_text && std::str::from_utf8(&data).is_err() {
        return Some(codes(&[1007]));
    }
    if is_text && probe_command(&data) {
        return Some(End::Loose);
    }
    now.messages.push((is_text, data));
    None
}

/// Whether the probe handler reads `text` as a command rather than
/// echoing it.
fn probe_command(text: &[u8]) -> bool {
    let word = text.split(|b| *b == b' ').next().unwrap_or_default();
    matches!(
        word,
        b"join"
            | b"leave"
            | b"broadcast"
            | b"send"
            | b"publish"
            | b"publish-to"
            | b"later"
            | b"close"
            | b"whoami"
            | b"count"
            | b"trap"
            | b"loop"
            | b"bad-channel"
    )
}
