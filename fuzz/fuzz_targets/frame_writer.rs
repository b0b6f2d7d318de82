//! Server frames as the writer encodes them (`wire::put_frame`): decoded
//! by an independent reading of RFC 6455 §5.2, each must be one whole,
//! unmasked frame with the opcode, RSV1 and payload given, its length in
//! the shortest form, and `frame_bytes` must give the same bytes.
#![no_main]

use fastwebsockets::OpCode;
use libfuzzer_sys::fuzz_target;
use sluice_protocol::wire::{frame_bytes, put_frame};

const OPCODES: [OpCode; 5] = [
    OpCode::Text,
    OpCode::Binary,
    OpCode::Close,
    OpCode::Ping,
    OpCode::Pong,
];

/// (first byte, payload) of the one frame in `bytes`.
fn decode(bytes: &[u8]) -> (u8, &[u8]) {
    assert!(bytes.len() >= 2, "a frame has two header bytes");
    assert_eq!(bytes[1] & 0x80, 0, "server frames are never masked");
    let (len, at) = match bytes[1] & 0x7f {
        126 => {
            let len = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
            assert!(len >= 126, "16-bit length {len} is not the shortest form");
            (len, 4)
        }
        127 => {
            let len = u64::from_be_bytes(bytes[2..10].try_into().unwrap());
            assert!(
                len >= 65536 && len >> 63 == 0,
                "64-bit length {len} is not the shortest form"
            );
            (len as usize, 10)
        }
        short => (usize::from(short), 2),
    };
    assert_eq!(bytes.len(), at + len, "exactly one frame");
    (bytes[0], &bytes[at..])
}

fuzz_target!(|input: &[u8]| {
    let [choice, size_hi, size_lo, rest @ ..] = input else {
        return;
    };
    let opcode = OPCODES[usize::from(choice % 5)];
    let rsv1 = choice & 0x80 != 0;
    // Lengths across all three forms (up to 70,000 bytes) without needing
    // that much input: the payload repeats the input's tail.
    let len = (usize::from(*size_hi) << 8 | usize::from(*size_lo))
        + usize::from(choice & 0x08 != 0) * 4464;
    let payload: Vec<u8> = if rest.is_empty() {
        vec![0; len]
    } else {
        rest.iter().copied().cycle().take(len).collect()
    };

    let mut out = vec![0xee];
    put_frame(&mut out, rsv1, opcode, &payload);
    assert_eq!(out[0], 0xee, "put_frame appends");
    let (first, decoded) = decode(&out[1..]);
    assert_eq!(first & 0x80, 0x80, "FIN");
    assert_eq!(first & 0x40 != 0, rsv1, "RSV1");
    assert_eq!(first & 0x30, 0, "RSV2 and RSV3 are clear");
    assert_eq!(first & 0x0f, opcode as u8, "opcode");
    assert_eq!(decoded, &payload[..], "payload");
    assert_eq!(&frame_bytes(rsv1, opcode, &payload)[..], &out[1..]);
});
