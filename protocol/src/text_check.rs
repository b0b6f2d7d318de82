//! UTF-8 checking of a client's uncompressed text messages as their bytes
//! arrive, frame by frame and read by read, so a client that breaks the
//! encoding is failed at the byte that breaks it (RFC 6455 §8.1: "fail
//! the WebSocket connection" as soon as the data is known to be invalid),
//! not once the whole message is in. Compressed messages are checked once
//! inflated ([`crate::deflate::MessageDecoder`]).

use crate::header::{BINARY, CONTINUATION, FIN, OPCODE, RSV1, TEXT};

/// The state of the data message in progress, fed by the frame shim.
#[derive(Default)]
pub struct TextCheck {
    /// The message in progress is uncompressed text.
    text_message: bool,
    /// The frame in progress is a data frame (not a control frame).
    data_frame: bool,
    /// Its final bit.
    fin: bool,
    /// Its payload is checked, unmasked with this key.
    checked: Option<[u8; 4]>,
    /// Payload bytes of the frame seen so far (where in the mask we are).
    offset: usize,
    /// The start of a character cut by a frame's or a read's end.
    carry: [u8; 4],
    carry_len: usize,
}

impl TextCheck {
    /// A frame begins with `first`, its first header byte as sent.
    pub fn frame_start(&mut self, first: u8) {
        let opcode = first & OPCODE;
        match opcode {
            TEXT => {
                self.text_message = first & RSV1 == 0;
                self.carry_len = 0;
            }
            BINARY => self.text_message = false,
            _ => {}
        }
        self.data_frame = matches!(opcode, CONTINUATION | TEXT | BINARY);
        self.fin = first & FIN != 0;
    }

    /// The frame's header is complete; `mask` is its masking key.
    pub fn header(&mut self, mask: [u8; 4]) {
        self.checked = (self.data_frame && self.text_message).then_some(mask);
        self.offset = 0;
    }

    /// The next bytes of the frame's payload, as sent (masked); `false`
    /// once the message cannot be valid UTF-8 whatever follows.
    pub fn payload(&mut self, bytes: &[u8]) -> bool {
        let Some(mask) = self.checked else {
            return true;
        };
        let mut buffer = [0u8; 512];
        for chunk in bytes.chunks(buffer.len()) {
            let plain = &mut buffer[..chunk.len()];
            for (i, (out, byte)) in plain.iter_mut().zip(chunk).enumerate() {
                *out = byte ^ mask[(self.offset + i) % 4];
            }
            self.offset += chunk.len();
            if !self.feed(plain) {
                return false;
            }
        }
        true
    }

    /// The frame's payload is all in; `false` when it ended a text message
    /// in the middle of a character.
    pub fn frame_end(&mut self) -> bool {
        let complete = !(self.checked.is_some() && self.fin && self.carry_len > 0);
        if self.data_frame && self.fin {
            self.text_message = false;
        }
        complete
    }

    /// Checks unmasked text bytes that follow the carried ones.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        if self.carry_len > 0 {
            let want = match self.carry[0] {
                0xf0.. => 4,
                0xe0.. => 3,
                _ => 2,
            };
            let take = (want - self.carry_len).min(bytes.len());
            self.carry[self.carry_len..self.carry_len + take].copy_from_slice(&bytes[..take]);
            self.carry_len += take;
            bytes = &bytes[take..];
            match std::str::from_utf8(&self.carry[..self.carry_len]) {
                Ok(_) => self.carry_len = 0,
                Err(error) if error.error_len().is_none() => return true,
                Err(_) => return false,
            }
        }
        match std::str::from_utf8(bytes) {
            Ok(_) => true,
            // A character cut by the end of these bytes: carried.
            Err(error) if error.error_len().is_none() => {
                let tail = &bytes[error.valid_up_to()..];
                self.carry[..tail.len()].copy_from_slice(tail);
                self.carry_len = tail.len();
                true
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn masked(plain: &[u8], from: usize) -> Vec<u8> {
        plain
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[(from + i) % 4])
            .collect()
    }

    /// Feeds `frames` (first byte, payload) split into reads of `step`
    /// bytes; the index of the frame that failed, if one did.
    fn run(frames: &[(u8, &[u8])], step: usize) -> Option<usize> {
        let mut check = TextCheck::default();
        for (n, (first, payload)) in frames.iter().enumerate() {
            check.frame_start(*first);
            check.header(MASK);
            let wire = masked(payload, 0);
            for piece in wire.chunks(step) {
                if !check.payload(piece) {
                    return Some(n);
                }
            }
            if !check.frame_end() {
                return Some(n);
            }
        }
        None
    }

    const TEXT_FIN: u8 = FIN | TEXT;

    #[test]
    fn valid_text_passes_however_it_is_cut() {
        let text = "κόσμε, ✓ 𝄞 plain".as_bytes();
        for step in 1..text.len() {
            assert_eq!(run(&[(TEXT_FIN, text)], step), None, "step {step}");
            let (a, b) = text.split_at(step);
            assert_eq!(run(&[(TEXT, a), (FIN, b)], 3), None, "split {step}");
        }
    }

    #[test]
    fn invalid_text_fails_at_the_frame_that_breaks_it() {
        // Autobahn 6.4.1: the second fragment holds 0xf4 0x90 0x80 0x80
        // (past U+10FFFF).
        let parts: [&[u8]; 3] = ["κόσμε".as_bytes(), &[0xf4, 0x90, 0x80, 0x80], b"edited"];
        for step in [1, 2, 5, 100] {
            assert_eq!(
                run(&[(TEXT, parts[0]), (0, parts[1]), (FIN, parts[2])], step),
                Some(1),
                "step {step}"
            );
        }
        // A message that ends inside a character fails at its last frame.
        assert_eq!(run(&[(TEXT, b"ok"), (FIN, &[0xe2, 0x82])], 1), Some(1));
        assert_eq!(run(&[(TEXT_FIN, &[0xc3])], 1), Some(0));
    }

    #[test]
    fn binary_compressed_and_control_frames_are_not_checked() {
        let bad: &[u8] = &[0xff, 0xfe];
        assert_eq!(run(&[(FIN | BINARY, bad)], 1), None);
        assert_eq!(run(&[(FIN | RSV1 | TEXT, bad)], 1), None);
        // A ping between text fragments is left alone, and the text goes
        // on being checked across it.
        assert_eq!(
            run(
                &[(TEXT, &[0xe2]), (FIN | 0x9, bad), (FIN, &[0x82, 0xac])],
                1
            ),
            None
        );
        assert_eq!(
            run(
                &[(TEXT, &[0xe2]), (FIN | 0x9, b"x"), (FIN, &[0x82, 0x41])],
                1
            ),
            Some(2)
        );
    }
}
