//! The model: what the contract says the server answers to the client's
//! frames ([`predict`]).
//!
//! The server reads through a frame shim that sees every byte before
//! fastwebsockets does, so for each frame, in the order the bytes arrive:
//!
//! 1. its second header byte: an unmasked frame is refused (1002, shim);
//! 2. its first two bytes: reserved bits and unknown opcodes (1002,
//!    fastwebsockets, when the header stops there);
//! 3. its whole header (the shim): reserved bits not agreed, unknown
//!    opcodes, a length not in its shortest form (or a 64-bit one with
//!    the top bit set), a fragmented control frame or one over 125 bytes
//!    (1002), a frame over `max_message` (1009);
//! 4. its payload, byte by byte: uncompressed text that cannot be UTF-8
//!    whatever follows, across fragments, or a text message whose final
//!    fragment ends inside a character (1007, shim);
//! 5. the whole frame: close frames (fastwebsockets), then the reader's
//!    rules (fragments, sizes, inflating).
//!
//! Messages completed before the frame that ends the connection are
//! answered. The shim judges each header before any of its payload, so
//! the code does not depend on how the bytes are split into reads.

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
    /// For each pong, how many of `messages` were complete when its ping
    /// came: the replies to later messages come after the pong.
    pub pong_limits: Vec<usize>,
    /// How the conversation ends.
    pub end: End,
}

/// How a conversation ends.
#[derive(Clone, Debug)]
pub enum End {
    /// The client's close frame comes back as it was.
    Echo(Vec<u8>),
    /// The server closes with this code (a violation: all messages
    /// before it are answered first).
    Close(u16),
    /// The stream ended mid-way: the server drops the connection
    /// without a close frame, having answered a prefix.
    Eof,
    /// The model cannot tell (compressed data it did not make, a text
    /// message that is a handler command): only the protocol rules.
    Loose,
}

/// The frame shim's UTF-8 check of uncompressed text as it arrives.
#[derive(Default)]
struct TextCheck {
    /// An uncompressed text message is in progress.
    text: bool,
    /// The start of a character cut by a frame's end.
    carry: Vec<u8>,
}

impl TextCheck {
    /// A frame with opcode `opcode` (and RSV1 as `rsv1`) begins: whether
    /// its payload is checked.
    fn frame_start(&mut self, opcode: u8, rsv1: bool) -> bool {
        match opcode {
            1 => {
                self.text = !rsv1;
                self.carry.clear();
            }
            2 => self.text = false,
            _ => {}
        }
        opcode <= 2 && self.text
    }

    /// `false` once the text so far cannot be UTF-8 whatever follows.
    fn feed(&mut self, bytes: &[u8]) -> bool {
        let mut all = std::mem::take(&mut self.carry);
        all.extend_from_slice(bytes);
        match std::str::from_utf8(&all) {
            Ok(_) => true,
            Err(e) if e.error_len().is_none() => {
                self.carry = all[e.valid_up_to()..].to_vec();
                true
            }
            Err(_) => false,
        }
    }

    /// A data frame ended (`checked`: its payload was checked); `false`
    /// when it was the last of a text message and ended inside a
    /// character.
    fn frame_end(&mut self, checked: bool, fin: bool) -> bool {
        let complete = !(checked && fin && !self.carry.is_empty());
        if fin {
            self.text = false;
        }
        complete
    }
}

/// What the server must answer to the client's `bytes` after the upgrade,
/// read frame by frame as RFC 6455, the README's close-code table and the
/// order of the checks (above) say: 1002 for unmasked frames, lengths not
/// in their shortest form, reserved bits (RSV1 only on the first frame of
/// a message when permessage-deflate is on), unknown opcodes, fragmented
/// control frames, control frames over 125 bytes, stray continuations, a
/// message inside a fragmented one, bad close frames (1 byte, a forbidden
/// code); 1007 for text or a close reason that is not UTF-8; 1009 past
/// `max_message`, per frame, across fragments or inflated; pongs for pings,
/// before the replies to later messages; the close echoed after the
/// handler's `bye`; a drop where the bytes stop mid-frame.
pub fn predict(bytes: &[u8], compressed: bool, known: &[Deflated], max_message: usize) -> Expect {
    let mut now = Expect {
        messages: Vec::new(),
        pongs: Vec::new(),
        pong_limits: Vec::new(),
        end: End::Eof,
    };
    let mut text = TextCheck::default();
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
        if rest[1] & 0x80 == 0 {
            now.end = End::Close(1002);
            break;
        }
        let (fin, rsv, opcode) = (rest[0] & 0x80 != 0, (rest[0] >> 4) & 7, rest[0] & 0x0f);
        let data_start = matches!(opcode, 1 | 2);
        let control = opcode >= 8;
        // fastwebsockets, on the first two bytes.
        let early = (rsv != 0 && !(compressed && rsv == 4 && data_start))
            || !matches!(opcode, 0 | 1 | 2 | 8 | 9 | 10);
        let Ok(h) = parse_header(rest) else {
            now.end = if early { End::Close(1002) } else { End::Eof };
            break;
        };
        // The shim, on the whole header.
        if early
            || h.non_minimal()
            || (h.extended == 8 && h.len >> 63 != 0)
            || (control && (h.len > 125 || !h.fin))
        {
            now.end = End::Close(1002);
            break;
        }
        if h.len > max {
            now.end = End::Close(1009);
            break;
        }
        // The shim, on the payload as it arrives.
        let whole = ((rest.len() - h.size) as u64) >= h.len;
        let there = &rest[h.size..h.size + (h.len as usize).min(rest.len() - h.size)];
        let payload = unmask(there, h.mask);
        let checked = text.frame_start(opcode, rsv & 4 != 0);
        let bad_text = checked && (!text.feed(&payload) || (whole && !text.frame_end(true, fin)));
        if !checked && whole && opcode <= 2 {
            text.frame_end(false, fin);
        }
        if bad_text {
            now.end = End::Close(1007);
            break;
        }
        if !whole {
            // The server waits for the rest of the payload.
            now.end = End::Eof;
            break;
        }
        at += h.size + h.len as usize;
        match opcode {
            8 => {
                now.end = match payload.len() {
                    0 => {
                        now.messages.push((true, b"bye".to_vec()));
                        End::Echo(payload)
                    }
                    1 => End::Close(1002),
                    _ => {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        if std::str::from_utf8(&payload[2..]).is_err() {
                            End::Close(1007)
                        } else if !sendable_close_code(code) {
                            End::Close(1002)
                        } else {
                            now.messages.push((true, b"bye".to_vec()));
                            End::Echo(payload)
                        }
                    }
                };
                break;
            }
            9 => {
                now.pongs.push(payload);
                now.pong_limits.push(now.messages.len());
            }
            10 => {}
            0 => {
                let Some((is_text, deflated, mut data)) = partial.take() else {
                    now.end = End::Close(1002);
                    break;
                };
                if data.len() + payload.len() > max_message {
                    now.end = End::Close(1009);
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
                if partial.is_some() {
                    now.end = End::Close(1002);
                    break;
                }
                let (is_text, deflated) = (opcode == 1, rsv == 4);
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
    now
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
        return Some(End::Close(1009));
    }
    // Uncompressed text was checked as it arrived; this is inflated text.
    if is_text && std::str::from_utf8(&data).is_err() {
        return Some(End::Close(1007));
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
