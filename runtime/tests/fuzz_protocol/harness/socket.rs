//! Conversations on real sockets: the upgrade, frames written in any split
//! ([`converse`]), raw HTTP requests ([`exchange`]); hangs are errors.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{PATIENCE, Rng, parse_header};
use crate::support::http_response::parse as http_response;

/// What came back on a connection.
#[derive(Debug, Default)]
pub struct Wire {
    /// Everything the server sent, in order.
    pub bytes: Vec<u8>,
    /// The connection was reset rather than closed.
    pub reset: bool,
}

/// Upgrades a connection on `addr` to `path` (with `extra` header lines)
/// and reads the 101 head and the handler's first frame. Returns the stream,
/// the response head and the bytes read after the head.
pub async fn upgrade(
    addr: &str,
    path: &str,
    extra: &str,
) -> Result<(TcpStream, String, Vec<u8>), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write the upgrade: {e}"))?;
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(i) = find(&buffer, b"\r\n\r\n") {
            break i + 4;
        }
        read_some(&mut stream, &mut buffer).await?;
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    if !head.starts_with("HTTP/1.1 101") {
        return Err(format!("the upgrade was refused: {head}"));
    }
    let rest = buffer.split_off(head_end);
    let mut rest = rest;
    // The handler's greeting, so the connection is fully open.
    while !parse_header(&rest).is_ok_and(|h| (rest.len() - h.size) as u64 >= h.len) {
        read_some(&mut stream, &mut rest).await?;
    }
    Ok((stream, head, rest))
}

async fn read_some(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Result<(), String> {
    let mut chunk = [0u8; 4096];
    match tokio::time::timeout(PATIENCE, stream.read(&mut chunk)).await {
        Ok(Ok(0)) => Err(format!(
            "the server closed during the upgrade after {:?}",
            String::from_utf8_lossy(buffer)
        )),
        Ok(Ok(n)) => {
            buffer.extend_from_slice(&chunk[..n]);
            Ok(())
        }
        Ok(Err(e)) => Err(format!("read during the upgrade: {e}")),
        Err(_) => Err("hang: no upgrade response before the hang guard".into()),
    }
}

/// Write sizes adding up to `total`, from single bytes to 4 KiB, with up
/// to 3 pauses (a 0) between them: the server must cope with any split.
pub fn write_plan(rng: &mut Rng, total: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = total;
    let mut pauses = 0;
    while left > 0 {
        let most = *rng.pick(&[1, 3, 7, 64, 512, 4096]);
        let n = rng.range(1, left.min(most));
        out.push(n);
        left -= n;
        if pauses < 3 && rng.chance(0.02) {
            out.push(0);
            pauses += 1;
        }
    }
    out
}

/// Where `needle` first occurs in `haystack`.
pub fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Writes `bytes` in `chunks` (sizes; 0 is a 2 ms pause) while reading
/// everything the server sends; half-closes once written (`fin`) and waits
/// for the server to close. Errors only on a hang.
pub async fn converse(
    stream: TcpStream,
    already: Vec<u8>,
    bytes: Vec<u8>,
    chunks: Vec<usize>,
    fin: bool,
) -> Result<Wire, String> {
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for size in chunks.into_iter().chain(std::iter::once(usize::MAX)) {
            if size == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            let end = at + size.min(bytes.len() - at);
            // The server may have closed already: what it sent is the point.
            if write.write_all(&bytes[at..end]).await.is_err() {
                return write;
            }
            at = end;
        }
        if fin {
            let _ = write.shutdown().await;
        }
        write
    });
    let mut wire = Wire {
        bytes: already,
        reset: false,
    };
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match tokio::time::timeout(PATIENCE, read.read(&mut chunk)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => wire.bytes.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => {
                wire.reset = true;
                break;
            }
            Err(_) => {
                writer.abort();
                return Err(format!(
                    "hang: the server neither closed nor sent anything for {PATIENCE:?} \
                     (after {} bytes from it{})",
                    wire.bytes.len(),
                    if fin { ", our side half-closed" } else { "" }
                ));
            }
        }
    }
    let _ = tokio::time::timeout(PATIENCE, writer).await;
    Ok(wire)
}

/// Sends a raw HTTP request on a fresh connection to `addr`, in `chunks`
/// (sizes; 0 is a 2 ms pause), and reads until the first response is
/// whole (`to_head`: it answers a HEAD request), or nothing came for
/// `quiet` once everything was written; then half-closes (unless `fin` is
/// false: the server must hang up by itself) and reads until the server
/// closes. Errors only on a hang.
pub async fn exchange(
    addr: &str,
    bytes: Vec<u8>,
    chunks: Vec<usize>,
    (fin, to_head): (bool, bool),
    quiet: Duration,
) -> Result<Wire, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut read, mut write) = stream.into_split();
    let (written_tx, mut written) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn(async move {
        let mut at = 0;
        for size in chunks.into_iter().chain(std::iter::once(usize::MAX)) {
            if size == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
                continue;
            }
            let end = at + size.min(bytes.len() - at);
            if write.write_all(&bytes[at..end]).await.is_err() {
                break;
            }
            at = end;
        }
        let _ = written_tx.send(());
        write
    });
    let mut wire = Wire::default();
    let mut chunk = vec![0u8; 16 * 1024];
    let started = Instant::now();
    let mut done_writing = false;
    let mut eof = false;
    // Until a whole response, or silence once the request is out.
    loop {
        if http_response(&wire.bytes, false, to_head).is_ok_and(|r| r.is_some()) {
            break;
        }
        if started.elapsed() > PATIENCE {
            writer.abort();
            return Err(format!(
                "hang: neither a response nor a close within {PATIENCE:?} (got {:?})",
                String::from_utf8_lossy(&wire.bytes)
            ));
        }
        if !done_writing && written.try_recv().is_ok() {
            done_writing = true;
        }
        match tokio::time::timeout(quiet, read.read(&mut chunk)).await {
            Ok(Ok(0)) => {
                eof = true;
                break;
            }
            Ok(Ok(n)) => wire.bytes.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => {
                wire.reset = true;
                eof = true;
                break;
            }
            Err(_) => {
                if done_writing || written.try_recv().is_ok() {
                    break;
                }
            }
        }
    }
    let mut write = match tokio::time::timeout(PATIENCE, writer).await {
        Ok(Ok(write)) => Some(write),
        Ok(Err(_)) => None,
        Err(_) if eof => None,
        Err(_) => {
            return Err(format!(
                "hang: the server stopped reading the request but kept the connection \
                 (got {:?})",
                String::from_utf8_lossy(&wire.bytes)
            ));
        }
    };
    if fin && let Some(write) = write.as_mut() {
        let _ = write.shutdown().await;
    }
    while !eof {
        match tokio::time::timeout(PATIENCE, read.read(&mut chunk)).await {
            Ok(Ok(0)) => eof = true,
            Ok(Ok(n)) => wire.bytes.extend_from_slice(&chunk[..n]),
            Ok(Err(_)) => {
                wire.reset = true;
                eof = true;
            }
            Err(_) => {
                return Err(format!(
                    "hang: the server kept the connection open for {PATIENCE:?}{} \
                     (got {} bytes: {:?})",
                    if fin {
                        " after our half-close"
                    } else {
                        " with an unfinished request (handshake_timeout_ms?)"
                    },
                    wire.bytes.len(),
                    String::from_utf8_lossy(&wire.bytes[..wire.bytes.len().min(300)])
                ));
            }
        }
    }
    drop(write);
    Ok(wire)
}
