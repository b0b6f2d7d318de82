//! WebSocket frames: the client's built as bytes ([`frame`]), the
//! server's read back and checked against RFC 6455 ([`hear`]).

use super::{hex_block, inflate};

/// How a client frame states its payload length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Len {
    /// The shortest encoding of the true length (the only valid one).
    Minimal,
    /// The 16-bit form (126), whatever the length.
    Wide16,
    /// The 64-bit form (127), whatever the length.
    Wide64,
    /// This length, in its shortest form, whatever the payload (a lie).
    Declared(u64),
}

/// A frame as bytes: the payload is masked with `mask` when given.
pub fn frame(
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: Len,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0f)];
    let masked = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len() as u64;
    let (code, extended): (u8, Vec<u8>) = match len {
        Len::Wide16 => (126, (n as u16).to_be_bytes().to_vec()),
        Len::Wide64 => (127, n.to_be_bytes().to_vec()),
        Len::Minimal | Len::Declared(_) => {
            let n = if let Len::Declared(d) = len { d } else { n };
            match n {
                0..=125 => (n as u8, Vec::new()),
                126..=0xffff => (126, (n as u16).to_be_bytes().to_vec()),
                _ => (127, n.to_be_bytes().to_vec()),
            }
        }
    };
    out.push(masked | code);
    out.extend_from_slice(&extended);
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A frame header read off the wire.
#[derive(Clone, Copy, Debug)]
pub struct Header {
    pub fin: bool,
    /// RSV1..3 as the top three bits of a 3-bit number (RSV1 = 4).
    pub rsv: u8,
    pub opcode: u8,
    pub mask: Option<[u8; 4]>,
    /// The declared payload length.
    pub len: u64,
    /// Bytes of extended length: 0, 2 or 8.
    pub extended: usize,
    /// Bytes of the whole header.
    pub size: usize,
}

impl Header {
    /// Whether the length was not written in its shortest form.
    pub fn non_minimal(&self) -> bool {
        (self.extended == 2 && self.len < 126) || (self.extended == 8 && self.len <= 0xffff)
    }
}

/// The header at the start of `bytes`: `Err(needed)` if incomplete, where
/// `needed` is 2 when not even the first two bytes are there.
pub fn parse_header(bytes: &[u8]) -> Result<Header, usize> {
    if bytes.len() < 2 {
        return Err(2);
    }
    let (b0, b1) = (bytes[0], bytes[1]);
    let extended = match b1 & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let masked = b1 & 0x80 != 0;
    let size = 2 + extended + if masked { 4 } else { 0 };
    if bytes.len() < size {
        return Err(size);
    }
    let len = match extended {
        2 => u64::from(u16::from_be_bytes([bytes[2], bytes[3]])),
        8 => u64::from_be_bytes(bytes[2..10].try_into().expect("8 bytes")),
        _ => u64::from(b1 & 0x7f),
    };
    let mask = masked.then(|| {
        let at = 2 + extended;
        [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
    });
    Ok(Header {
        fin: b0 & 0x80 != 0,
        rsv: (b0 >> 4) & 7,
        opcode: b0 & 0x0f,
        mask,
        len,
        extended,
        size,
    })
}

/// `payload` unmasked with `mask`.
pub fn unmask(payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    match mask {
        Some(key) => payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect(),
        None => payload.to_vec(),
    }
}

/// Whether a peer may send close code `code` (RFC 6455 §7.4; 1014 is
/// registered later and left out, as fastwebsockets does).
pub fn sendable_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

/// What the server said after the upgrade, its frames checked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Heard {
    /// Data messages: (text, payload), inflated when compressed.
    pub messages: Vec<(bool, Vec<u8>)>,
    /// Pong payloads.
    pub pongs: Vec<Vec<u8>>,
    /// For each pong, how many of `messages` came before it.
    pub pongs_after: Vec<usize>,
    /// Pings the server sent.
    pub pings: usize,
    /// The close frame's payload, if it sent one.
    pub close: Option<Vec<u8>>,
}

impl Heard {
    /// The close code, if the server's close frame has one.
    pub fn close_code(&self) -> Option<u16> {
        self.close
            .as_ref()
            .filter(|p| p.len() >= 2)
            .map(|p| u16::from_be_bytes([p[0], p[1]]))
    }
}

/// Reads the server's side of a WebSocket conversation and checks every
/// frame: unmasked, RSV1 only on the first frame of a compressed data
/// message (when `compressed`), known opcodes, control frames final and at
/// most 125 bytes, a valid close frame whose code `allowed` accepts,
/// nothing after it, text that is UTF-8. `cut`: the connection was reset,
/// so a partial frame at the end is not the server's fault.
pub fn hear(
    bytes: &[u8],
    compressed: bool,
    allowed: impl Fn(u16) -> bool,
    cut: bool,
) -> Result<Heard, String> {
    let mut heard = Heard::default();
    let mut at = 0;
    let mut partial: Option<(bool, bool, Vec<u8>)> = None;
    while at < bytes.len() {
        let whole =
            |h: &Header| bytes.len() - at >= h.size && (bytes.len() - at - h.size) as u64 >= h.len;
        let header = match parse_header(&bytes[at..]) {
            Ok(h) if whole(&h) => h,
            _ if cut => break,
            _ => {
                return Err(format!(
                    "the server's stream ends inside a frame at byte {at}: {}",
                    hex_block(&bytes[at..bytes.len().min(at + 64)])
                ));
            }
        };
        let frame = format!("server frame at byte {at} ({header:?})");
        if heard.close.is_some() {
            return Err(format!("{frame} follows the server's close frame"));
        }
        if header.mask.is_some() {
            return Err(format!("{frame} is masked"));
        }
        let payload = &bytes[at + header.size..at + header.size + header.len as usize];
        at += header.size + header.len as usize;
        let first_data = matches!(header.opcode, 1 | 2);
        if header.rsv != 0 && !(compressed && header.rsv == 4 && first_data) {
            return Err(format!("{frame} has reserved bits set"));
        }
        match header.opcode {
            8..=10 => {
                if !header.fin || payload.len() > 125 {
                    return Err(format!(
                        "{frame} is a control frame that is fragmented or over 125 bytes \
                         ({} bytes; RFC 6455 §5.5)",
                        payload.len()
                    ));
                }
                match header.opcode {
                    8 => {
                        if payload.len() == 1 {
                            return Err(format!("{frame}: a close frame with a 1-byte payload"));
                        }
                        if payload.len() >= 2 {
                            let code = u16::from_be_bytes([payload[0], payload[1]]);
                            if !sendable_close_code(code) || !allowed(code) {
                                return Err(format!("{frame}: close code {code} is not allowed"));
                            }
                            if std::str::from_utf8(&payload[2..]).is_err() {
                                return Err(format!("{frame}: the close reason is not UTF-8"));
                            }
                        }
                        heard.close = Some(payload.to_vec());
                    }
                    9 => heard.pings += 1,
                    _ => {
                        heard.pongs.push(payload.to_vec());
                        heard.pongs_after.push(heard.messages.len());
                    }
                }
            }
            0..=2 => {
                let (text, deflated, mut data) = match (header.opcode, partial.take()) {
                    (0, Some(started)) => started,
                    (0, None) => return Err(format!("{frame} continues no message")),
                    (_, Some(_)) => return Err(format!("{frame} starts a message inside one")),
                    (opcode, None) => (opcode == 1, header.rsv == 4, Vec::new()),
                };
                data.extend_from_slice(payload);
                if !header.fin {
                    partial = Some((text, deflated, data));
                    continue;
                }
                if deflated {
                    data = inflate(&data, 16 << 20).map_err(|e| {
                        format!("{frame}: bad compressed data from the server: {e}")
                    })?;
                }
                if text && std::str::from_utf8(&data).is_err() {
                    return Err(format!("{frame}: a text message that is not UTF-8"));
                }
                heard.messages.push((text, data));
            }
            other => return Err(format!("{frame} has opcode {other}")),
        }
    }
    if partial.is_some() && !cut {
        return Err("the server's stream ends inside a fragmented message".into());
    }
    Ok(heard)
}
