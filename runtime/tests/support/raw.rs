//! A raw WebSocket client over TCP that can break the protocol on purpose:
//! it writes frames byte by byte as told (reserved bits, bad UTF-8, stray
//! continuations) and reads the server's frames without judging them.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ws::PATIENCE;

/// A server frame as read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code, for a close frame with one.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// A connection after a successful upgrade.
pub struct RawClient {
    stream: TcpStream,
    buffer: Vec<u8>,
}

/// Text, binary, close, ping, pong, continuation opcodes.
pub const TEXT: u8 = 1;
pub const BINARY: u8 = 2;
pub const CONTINUATION: u8 = 0;
pub const CLOSE: u8 = 8;

impl RawClient {
    /// Connects to `addr` (`host:port`) and upgrades `path`; returns the
    /// HTTP status and head if the server refused.
    pub async fn connect(addr: &str, path: &str, extra_headers: &str) -> Result<Self, String> {
        let mut stream = TcpStream::connect(addr).await.expect("tcp connect");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra_headers}\r\n"
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            let n = tokio::time::timeout(PATIENCE, stream.read(&mut byte))
                .await
                .expect("response head before the hang guard")
                .unwrap();
            if n == 0 {
                return Err(String::from_utf8_lossy(&head).into_owned());
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            return Err(head);
        }
        Ok(Self {
            stream,
            buffer: Vec::new(),
        })
    }

    /// Writes one masked frame with the given first-byte bits.
    pub async fn send(&mut self, fin: bool, rsv: u8, opcode: u8, payload: &[u8]) {
        let mut frame = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
        let len = payload.len();
        if len < 126 {
            frame.push(0x80 | len as u8);
        } else if len <= 0xffff {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // The server may already have closed: a failed write is not our
        // concern here, the frames it sent are.
        let _ = self.stream.write_all(&frame).await;
    }

    /// Writes raw bytes as they are.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// The next frame from the server, or `None` when it closed the TCP
    /// connection.
    pub async fn next(&mut self) -> Option<RawFrame> {
        self.next_within(PATIENCE).await
    }

    /// [`next`](Self::next) with another hang guard.
    pub async fn next_within(&mut self, patience: Duration) -> Option<RawFrame> {
        loop {
            if let Some(frame) = self.parse() {
                return Some(frame);
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(patience, self.stream.read(&mut chunk))
                .await
                .expect("a frame or EOF before the hang guard")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads until a close frame and returns its code; panics on EOF first.
    pub async fn expect_close(&mut self) -> u16 {
        loop {
            match self.next().await {
                Some(frame) if frame.opcode == CLOSE => {
                    return frame.close_code().unwrap_or(1005);
                }
                Some(_) => {}
                None => panic!("the server dropped the connection without a close frame"),
            }
        }
    }

    fn parse(&mut self) -> Option<RawFrame> {
        let b = &self.buffer;
        if b.len() < 2 {
            return None;
        }
        let (mut len, mut at) = (usize::from(b[1] & 0x7f), 2);
        if len == 126 {
            if b.len() < 4 {
                return None;
            }
            len = usize::from(u16::from_be_bytes([b[2], b[3]]));
            at = 4;
        } else if len == 127 {
            if b.len() < 10 {
                return None;
            }
            len = u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize;
            at = 10;
        }
        if b.len() < at + len {
            return None;
        }
        let frame = RawFrame {
            fin: b[0] & 0x80 != 0,
            opcode: b[0] & 0x0f,
            payload: b[at..at + len].to_vec(),
        };
        self.buffer.drain(..at + len);
        Some(frame)
    }
}
