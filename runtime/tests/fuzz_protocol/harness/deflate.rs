//! Raw DEFLATE for permessage-deflate (RFC 7692), with flate2 as the
//! server uses it.

/// The empty stored block a sync flush ends with (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// `data` as a permessage-deflate payload: raw DEFLATE at `level`, either
/// sync-flushed with the tail stripped or finished (BFINAL set, §7.2.3.4).
pub fn deflate(data: &[u8], level: u32, finish: bool) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress, Status};
    let mut compress = Compress::new(Compression::new(level), false);
    let mut out = Vec::with_capacity(data.len() + 128);
    let flush = if finish {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    loop {
        let done = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[done..], &mut out, flush)
            .expect("deflate");
        let consumed = compress.total_in() as usize == data.len();
        if (finish && status == Status::StreamEnd)
            || (!finish && consumed && out.len() < out.capacity())
        {
            break;
        }
        out.reserve(out.capacity().max(256));
    }
    if !finish {
        assert!(
            out.ends_with(&TAIL),
            "a sync flush ends with the empty block"
        );
        out.truncate(out.len() - TAIL.len());
    }
    out
}

/// A permessage-deflate payload inflated (the tail appended), refusing
/// output over `limit`.
pub fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    use flate2::{Decompress, FlushDecompress, Status};
    let mut input = data.to_vec();
    input.extend_from_slice(&TAIL);
    let mut inflater = Decompress::new(false);
    let mut out = Vec::with_capacity(256);
    loop {
        if out.len() == out.capacity() {
            if out.len() > limit {
                return Err(format!("inflates past {limit} bytes"));
            }
            out.reserve(out.len().max(4096));
        }
        let before = (inflater.total_in(), inflater.total_out());
        let status = inflater
            .decompress_vec(
                &input[inflater.total_in() as usize..],
                &mut out,
                FlushDecompress::Sync,
            )
            .map_err(|e| e.to_string())?;
        let consumed = inflater.total_in() as usize == input.len();
        if status == Status::StreamEnd || (consumed && out.len() < out.capacity()) {
            return Ok(out);
        }
        if (inflater.total_in(), inflater.total_out()) == before && out.len() < out.capacity() {
            return Err("the inflater made no progress".into());
        }
    }
}
