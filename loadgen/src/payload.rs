//! The record payload: a small JSON object whose first field is a fixed-width
//! ASCII stamp (channel index, sequence number, intended send time), then
//! padding up to the requested size.
//!
//! ```text
//! {"lg":"SLG1:cccccccc:ssssssssssssssss:tttttttttttttttt","pad":"xxxx…"}
//! ```
//!
//! `c` is the channel index, `s` the record's sequence number in its
//! channel, `t` the intended send time in nanoseconds since the run started,
//! all lowercase hex. JSON so bridges that insist on JSON pass it; a stamp
//! of hex digits and colons so it survives being embedded in another JSON
//! string (escaping changes nothing in it). A receiver looks at the fixed
//! offset first and searches the frame only if the stamp is not there.

/// What starts the stamp.
pub const MARKER: &[u8] = b"SLG1:";
/// What precedes the stamp in a payload as produced.
const PREFIX: &[u8] = b"{\"lg\":\"";
/// Between the stamp and the padding.
const MIDDLE: &[u8] = b"\",\"pad\":\"";
/// After the padding.
const SUFFIX: &[u8] = b"\"}";
/// Length of the stamp: marker, 8 + 16 + 16 hex digits, two colons.
pub const STAMP_LEN: usize = MARKER.len() + 8 + 1 + 16 + 1 + 16;
/// The smallest payload (no padding).
pub const MIN_SIZE: usize = PREFIX.len() + STAMP_LEN + MIDDLE.len() + SUFFIX.len();

/// What a stamp says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Index of the record's channel.
    pub channel: u32,
    /// Sequence number of the record within its channel.
    pub seq: u64,
    /// Intended send time, nanoseconds since the run's start.
    pub sent_ns: u64,
}

/// A reusable payload buffer of a fixed size; [`PayloadBuf::stamp`]
/// rewrites only the stamp.
#[derive(Debug, Clone)]
pub struct PayloadBuf {
    buf: Vec<u8>,
}

impl PayloadBuf {
    /// A payload of `size` bytes (at least [`MIN_SIZE`]).
    pub fn new(size: usize) -> Self {
        let size = size.max(MIN_SIZE);
        let mut buf = Vec::with_capacity(size);
        buf.extend_from_slice(PREFIX);
        buf.extend_from_slice(MARKER);
        buf.resize(PREFIX.len() + STAMP_LEN, b'0');
        buf.extend_from_slice(MIDDLE);
        buf.resize(size - SUFFIX.len(), b'x');
        buf.extend_from_slice(SUFFIX);
        let mut payload = Self { buf };
        payload.stamp(Stamp {
            channel: 0,
            seq: 0,
            sent_ns: 0,
        });
        payload
    }

    /// Writes `stamp` and returns the whole payload.
    pub fn stamp(&mut self, stamp: Stamp) -> &[u8] {
        let at = PREFIX.len() + MARKER.len();
        let out = &mut self.buf[at..at + STAMP_LEN - MARKER.len()];
        write_hex(&mut out[0..8], u64::from(stamp.channel));
        out[8] = b':';
        write_hex(&mut out[9..25], stamp.seq);
        out[25] = b':';
        write_hex(&mut out[26..42], stamp.sent_ns);
        &self.buf
    }

    /// The payload as it is.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// Finds and reads the stamp in a received frame; `None` if it has none.
pub fn parse(frame: &[u8]) -> Option<Stamp> {
    let fast = PREFIX.len();
    let at = if frame.get(fast..fast + MARKER.len()) == Some(MARKER) {
        fast
    } else {
        frame
            .windows(MARKER.len())
            .position(|window| window == MARKER)?
    };
    let stamp = frame.get(at + MARKER.len()..at + STAMP_LEN)?;
    if stamp[8] != b':' || stamp[25] != b':' {
        return None;
    }
    Some(Stamp {
        channel: u32::try_from(read_hex(&stamp[0..8])?).ok()?,
        seq: read_hex(&stamp[9..25])?,
        sent_ns: read_hex(&stamp[26..42])?,
    })
}

fn write_hex(out: &mut [u8], mut value: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for byte in out.iter_mut().rev() {
        *byte = DIGITS[(value & 0xf) as usize];
        value >>= 4;
    }
}

fn read_hex(digits: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    for &digit in digits {
        let nibble = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            b'A'..=b'F' => digit - b'A' + 10,
            _ => return None,
        };
        value = (value << 4) | u64::from(nibble);
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_round_trips_at_every_size() {
        for size in [0, MIN_SIZE, 100, 1024] {
            let mut payload = PayloadBuf::new(size);
            let stamp = Stamp {
                channel: 7,
                seq: 123_456_789,
                sent_ns: u64::MAX - 5,
            };
            let bytes = payload.stamp(stamp).to_vec();
            assert_eq!(bytes.len(), size.max(MIN_SIZE));
            assert_eq!(parse(&bytes), Some(stamp));
            let json: serde_json::Value = serde_json::from_slice(&bytes).expect("valid JSON");
            assert!(json["lg"].as_str().unwrap().starts_with("SLG1:"));
        }
    }

    #[test]
    fn a_stamp_is_found_inside_an_envelope() {
        let mut payload = PayloadBuf::new(100);
        let stamp = Stamp {
            channel: 1,
            seq: 2,
            sent_ns: 3,
        };
        let inner = String::from_utf8(payload.stamp(stamp).to_vec()).unwrap();
        let wrapped = serde_json::json!({ "messageType": "KAFKA", "content": inner }).to_string();
        assert_eq!(parse(wrapped.as_bytes()), Some(stamp));
    }

    #[test]
    fn frames_without_a_stamp_are_not_parsed() {
        assert_eq!(parse(b""), None);
        assert_eq!(parse(b"{\"messageType\":\"SYSTEM\"}"), None);
        assert_eq!(parse(b"SLG1:zz"), None);
        assert_eq!(
            parse(b"SLG1:0000000g:0000000000000000:0000000000000000"),
            None
        );
    }
}
