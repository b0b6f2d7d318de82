//! RFC 7692 §7.2: one message's payload compressed and decompressed with
//! raw DEFLATE (flate2 on miniz_oxide).

use std::cell::Cell;
use std::thread::LocalKey;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::DeflateError;

/// The empty stored block a sync flush ends with: stripped when sending,
/// appended when receiving (§7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Fast over small: every connection compresses every record it is sent.
fn level() -> Compression {
    Compression::fast()
}

thread_local! {
    // Without context takeover no state outlives a message, so one
    // compressor (~230 KiB) and one decompressor (~43 KiB) per worker
    // thread serve every connection, instead of one per connection.
    static SPARE_COMPRESS: Cell<Option<Compress>> = const { Cell::new(None) };
    static SPARE_DECOMPRESS: Cell<Option<Decompress>> = const { Cell::new(None) };
}

/// Lends this thread's spare state (made on first use) for one
/// synchronous call.
fn lend<T, R>(
    spare: &'static LocalKey<Cell<Option<T>>>,
    make: impl FnOnce() -> T,
    with: impl FnOnce(&mut T) -> R,
) -> R {
    let mut state = spare.take().unwrap_or_else(make);
    let result = with(&mut state);
    spare.set(Some(state));
    result
}

/// Compresses the messages one connection sends.
pub struct Compressor {
    takeover: bool,
    /// Made on first use: a connection that never compresses pays nothing.
    own: Option<Compress>,
}

impl Compressor {
    /// `takeover`: later messages may refer back to earlier ones (the
    /// agreed parameters lack `server_no_context_takeover`).
    pub fn new(takeover: bool) -> Self {
        Self {
            takeover,
            own: None,
        }
    }

    /// Whether later messages refer back to earlier ones (so each
    /// connection's output differs).
    pub fn takes_over(&self) -> bool {
        self.takeover
    }

    /// The payload of a compressed frame carrying `message`.
    pub fn compress(&mut self, message: &[u8]) -> Result<Vec<u8>, DeflateError> {
        let make = || Compress::new(level(), false);
        if self.takeover {
            deflate(self.own.get_or_insert_with(make), message)
        } else {
            lend(&SPARE_COMPRESS, make, |c| {
                let result = deflate(c, message);
                c.reset();
                result
            })
        }
    }
}

/// Decompresses the messages one connection receives, refusing any that
/// would inflate past a limit.
pub struct Decompressor {
    takeover: bool,
    own: Option<Decompress>,
    limit: usize,
}

impl Decompressor {
    /// `takeover`: the peer's messages may refer back to earlier ones (the
    /// agreed parameters lack `client_no_context_takeover`); `limit`: the
    /// largest decompressed message accepted.
    pub fn new(takeover: bool, limit: usize) -> Self {
        Self {
            takeover,
            own: None,
            limit,
        }
    }

    /// The message carried by a compressed payload (all its frames'
    /// payloads, joined).
    pub fn decompress(&mut self, payload: &[u8]) -> Result<Vec<u8>, DeflateError> {
        let mut out = Vec::new();
        // No DEFLATE block fits in zero bytes, and feeding one would leave
        // the inflater inside the appended stored block.
        if payload.is_empty() {
            return Ok(out);
        }
        let make = || Decompress::new(false);
        let limit = self.limit;
        if self.takeover {
            inflate(self.own.get_or_insert_with(make), payload, limit, &mut out)?;
        } else {
            lend(&SPARE_DECOMPRESS, make, |d| {
                let result = inflate(d, payload, limit, &mut out);
                d.reset(false);
                result
            })?;
        }
        Ok(out)
    }
}

/// §7.2.1: compress, sync flush, drop the flush's trailing empty block.
fn deflate(c: &mut Compress, message: &[u8]) -> Result<Vec<u8>, DeflateError> {
    // Room for incompressible input in one pass (stored blocks cost 5 bytes
    // per 64 KiB) plus the flush.
    let mut out = Vec::with_capacity(message.len() + message.len() / 1024 + 64);
    let start = c.total_in();
    loop {
        let done = (c.total_in() - start) as usize;
        c.compress_vec(&message[done..], &mut out, FlushCompress::Sync)?;
        // Spare room left means the flush is complete.
        if (c.total_in() - start) as usize == message.len() && out.len() < out.capacity() {
            break;
        }
        out.reserve(out.capacity());
    }
    if !out.ends_with(&TAIL) {
        return Err(DeflateError::Unflushed);
    }
    out.truncate(out.len() - TAIL.len());
    Ok(out)
}

/// §7.2.2: append the empty block, inflate. `out` never grows past
/// `limit + 1` bytes: reaching that proves the message too large.
fn inflate(
    d: &mut Decompress,
    payload: &[u8],
    limit: usize,
    out: &mut Vec<u8>,
) -> Result<(), DeflateError> {
    let most = limit.saturating_add(1);
    out.reserve_exact(payload.len().saturating_mul(4).max(256).min(most));
    'feed: for mut input in [payload, &TAIL[..]] {
        loop {
            if out.len() == out.capacity() {
                if out.len() >= most {
                    return Err(DeflateError::TooLarge { limit });
                }
                out.reserve_exact(out.len().max(4096).min(most - out.len()));
            }
            let (read, wrote) = (d.total_in(), d.total_out());
            let status = d.decompress_vec(input, out, FlushDecompress::Sync)?;
            input = &input[(d.total_in() - read) as usize..];
            if status == Status::StreamEnd {
                // A block with BFINAL set (§7.2.3.4): what follows is
                // padding, and the peer's next message is a new stream.
                d.reset(false);
                break 'feed;
            }
            if out.len() < out.capacity() {
                if input.is_empty() {
                    break;
                }
                if (d.total_in(), d.total_out()) == (read, wrote) {
                    return Err(DeflateError::Stalled);
                }
            }
        }
    }
    if out.len() > limit {
        return Err(DeflateError::TooLarge { limit });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &[u8] = b"Hello";

    fn inflater(takeover: bool) -> Decompressor {
        Decompressor::new(takeover, 1 << 20)
    }

    #[test]
    fn rfc_7692_examples_decompress() {
        // §7.2.3.1 (one frame, or its two fragments joined), §7.2.3.3
        // (stored block), §7.2.3.4 (BFINAL set), §7.2.3.5 (two blocks).
        for payload in [
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00][..],
            &[
                0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
            ],
            &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
            &[
                0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
            ],
        ] {
            for takeover in [true, false] {
                let mut d = inflater(takeover);
                assert_eq!(d.decompress(payload).unwrap(), HELLO, "{payload:02x?}");
                // The state is fit for the next message either way.
                assert_eq!(d.decompress(payload).unwrap(), HELLO, "{payload:02x?}");
            }
        }
    }

    #[test]
    fn rfc_7692_shared_window_example() {
        // §7.2.3.2: the second "Hello" refers back into the first.
        let mut d = inflater(true);
        assert_eq!(
            d.decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
                .unwrap(),
            HELLO
        );
        assert_eq!(
            d.decompress(&[0xf2, 0x00, 0x11, 0x00, 0x00]).unwrap(),
            HELLO
        );
        // Without takeover that back-reference points before the start
        // (miniz_oxide need not report that as an error).
        let mut d = inflater(false);
        assert_eq!(
            d.decompress(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00])
                .unwrap(),
            HELLO
        );
        assert_ne!(
            d.decompress(&[0xf2, 0x00, 0x11, 0x00, 0x00])
                .ok()
                .as_deref(),
            Some(HELLO)
        );
    }

    #[test]
    fn hello_compresses_to_the_rfc_bytes() {
        let (mut c, mut d) = (Compressor::new(true), inflater(true));
        let first = c.compress(HELLO).unwrap();
        assert_eq!(first, [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        assert_eq!(d.decompress(&first).unwrap(), HELLO);
        // The second one, with takeover, is a back-reference as in
        // §7.2.3.2 (miniz_oxide encodes it in 4 bytes, the RFC in 5).
        let second = c.compress(HELLO).unwrap();
        assert!(second.len() < 5, "{second:02x?}");
        assert_eq!(d.decompress(&second).unwrap(), HELLO);
        let mut c = Compressor::new(false);
        for _ in 0..2 {
            assert_eq!(
                c.compress(HELLO).unwrap(),
                [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
            );
        }
    }

    fn record(i: usize) -> Vec<u8> {
        format!(r#"{{"channel":"channel1","offset":{i},"payload":{{"hello":"world","n":{i}}}}}"#)
            .repeat(1 + i % 7)
            .into_bytes()
    }

    #[test]
    fn messages_round_trip_with_and_without_takeover() {
        for takeover in [true, false] {
            let (mut c, mut d) = (Compressor::new(takeover), inflater(takeover));
            let mut sizes = Vec::new();
            for i in 0..50 {
                let message = record(i);
                let packed = c.compress(&message).unwrap();
                sizes.push(packed.len());
                assert_eq!(d.decompress(&packed).unwrap(), message);
            }
            // The empty message is one header byte (§7.2.3.6) and back.
            let packed = c.compress(b"").unwrap();
            assert_eq!(packed, [0x00]);
            assert_eq!(d.decompress(&packed).unwrap(), b"");
            assert_eq!(d.decompress(b"").unwrap(), b"");
            let message = record(3);
            assert_eq!(
                d.decompress(&c.compress(&message).unwrap()).unwrap(),
                message
            );
            // Takeover pays off on repeated content.
            let again = c.compress(&record(0)).unwrap().len();
            if takeover {
                assert!(again < sizes[0], "{again} vs {}", sizes[0]);
            } else {
                assert_eq!(again, sizes[0]);
            }
        }
    }

    #[test]
    fn incompressible_and_large_messages_round_trip() {
        // A xorshift stream: deflate cannot shrink it.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut c = Compressor::new(true);
        let mut d = Decompressor::new(true, noise.len());
        assert_eq!(d.decompress(&c.compress(&noise).unwrap()).unwrap(), noise);
        let zeros = vec![0u8; 1 << 20];
        let mut d = Decompressor::new(true, zeros.len());
        assert_eq!(d.decompress(&c.compress(&zeros).unwrap()).unwrap(), zeros);
    }

    #[test]
    fn a_bomb_is_refused_within_the_limit() {
        let size = 16 << 20;
        let bomb = Compressor::new(false).compress(&vec![b'a'; size]).unwrap();
        assert!(bomb.len() < size / 200, "{}", bomb.len());
        let limit = 64 * 1024;
        for takeover in [true, false] {
            let mut d = Decompressor::new(takeover, limit);
            assert!(matches!(
                d.decompress(&bomb),
                Err(DeflateError::TooLarge { limit: 65536 })
            ));
        }
        // The output buffer never grew past the limit plus one byte.
        let mut out = Vec::new();
        let result = inflate(&mut Decompress::new(false), &bomb, limit, &mut out);
        assert!(matches!(result, Err(DeflateError::TooLarge { .. })));
        assert!(out.capacity() <= limit + 1, "{}", out.capacity());
    }

    #[test]
    fn the_limit_is_inclusive() {
        let message = vec![b'x'; 1000];
        let packed = Compressor::new(false).compress(&message).unwrap();
        assert_eq!(
            Decompressor::new(false, 1000).decompress(&packed).unwrap(),
            message
        );
        assert!(matches!(
            Decompressor::new(false, 999).decompress(&packed),
            Err(DeflateError::TooLarge { limit: 999 })
        ));
    }

    #[test]
    fn invalid_data_is_an_error() {
        // BTYPE 11 is reserved; a stored block's NLEN must complement LEN.
        for payload in [
            &[0xff, 0xff, 0xff][..],
            &[0x00, 0x05, 0x00, 0x00, 0x00, b'a'],
        ] {
            for takeover in [true, false] {
                assert!(
                    matches!(
                        inflater(takeover).decompress(payload),
                        Err(DeflateError::Corrupt(_))
                    ),
                    "{payload:02x?}"
                );
            }
        }
    }
}
