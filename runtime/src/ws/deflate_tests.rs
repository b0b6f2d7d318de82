//! The whole stack in memory: a fastwebsockets echo server on the shims
//! and codecs, against a client that compresses by hand (tungstenite 0.30
//! has no permessage-deflate and refuses RSV1, so only its frame codec is
//! used here) or, uncompressed, a plain tokio-tungstenite client.

use std::convert::Infallible;
use std::io::Cursor;

use fastwebsockets::{Frame, OpCode, Role, WebSocketError};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use futures_util::{SinkExt, StreamExt};
use hyper::HeaderMap;
use hyper::header::SEC_WEBSOCKET_EXTENSIONS;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode as WireOp};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame as WireFrame, FrameHeader};
use tokio_tungstenite::tungstenite::{Message, protocol::Role as WireRole};

use crate::hub::{Frame as HubFrame, Kind};
use crate::ws::writer::Writer;
use sluice_protocol::deflate::{DeflateError, Policy, Session, negotiate};
use sluice_protocol::frame_shim::Refused;

/// The server's limit on a decompressed message.
const LIMIT: usize = 64 * 1024;

const TEXT: WireOp = WireOp::Data(Data::Text);
const BINARY: WireOp = WireOp::Data(Data::Binary);
const CONTINUE: WireOp = WireOp::Data(Data::Continue);
const PING: WireOp = WireOp::Control(Control::Ping);
const PONG: WireOp = WireOp::Control(Control::Pong);
const CLOSE: WireOp = WireOp::Control(Control::Close);

/// How the echo server stopped.
#[derive(Debug)]
enum Ended {
    Closed,
    Deflate(DeflateError),
    Socket(WebSocketError),
}

/// Echoes every message, wired as the connection is: the read shim under
/// fastwebsockets' read half, fragments joined by the reader, codecs
/// around, and the connection's own writer.
async fn echo(io: DuplexStream, session: Session) -> Ended {
    let (read, write) = tokio::io::split(io);
    let read = session.read_shim(read);
    let (mut read, _) =
        fastwebsockets::after_handshake_split(read, tokio::io::sink(), Role::Server);
    read.set_max_message_size(LIMIT + 1);
    let (mut inbound, outbound) = session.into_codecs(LIMIT);
    let mut write = Writer::new(write, outbound);
    let mut partial: Option<(bool, Vec<u8>)> = None;
    loop {
        let mut obliged = Vec::new();
        let mut send = |frame: Frame<'_>| {
            obliged.push((frame.opcode, frame.payload.to_vec()));
            async { Ok::<_, Infallible>(()) }
        };
        let result = read.read_frame(&mut send).await;
        for (opcode, payload) in obliged {
            write.control(opcode, &payload);
        }
        write.flush().await.unwrap();
        let frame = match result {
            Ok(frame) => frame,
            Err(error) => return Ended::Socket(error),
        };
        let (text, data) = match frame.opcode {
            OpCode::Close => return Ended::Closed,
            OpCode::Text | OpCode::Binary => (frame.opcode == OpCode::Text, frame.payload.to_vec()),
            OpCode::Continuation => {
                let (text, mut data) = partial.take().expect("a message started");
                data.extend_from_slice(&frame.payload);
                (text, data)
            }
            _ => continue,
        };
        if !frame.fin {
            partial = Some((text, data));
            continue;
        }
        match inbound.message(text, data) {
            Ok((text, data)) => {
                // Sent as the hub sends records (shared encodings).
                let kind = if text { Kind::Text } else { Kind::Binary };
                write.data(&HubFrame::new(kind, data)).unwrap();
                write.flush().await.unwrap();
            }
            Err(error) => {
                let (code, reason) = error.close();
                let mut payload = code.to_be_bytes().to_vec();
                payload.extend_from_slice(reason.as_bytes());
                write.control(OpCode::Close, &payload);
                write.flush().await.unwrap();
                return Ended::Deflate(error);
            }
        }
    }
}

/// A client speaking permessage-deflate by hand: tungstenite formats and
/// parses frames, flate2 compresses, the agreed takeover is honoured.
struct Client {
    io: DuplexStream,
    buffer: Vec<u8>,
    compress: Compress,
    decompress: Decompress,
    /// client_no_context_takeover / server_no_context_takeover.
    reset_ours: bool,
    reset_theirs: bool,
}

impl Client {
    async fn send(&mut self, opcode: WireOp, fin: bool, rsv1: bool, payload: &[u8]) {
        let header = FrameHeader {
            is_final: fin,
            rsv1,
            opcode,
            mask: Some([0x37, 0xfa, 0x21, 0x3d]),
            ..FrameHeader::default()
        };
        let mut bytes = Vec::new();
        WireFrame::from_payload(header, payload.to_vec().into())
            .format(&mut bytes)
            .unwrap();
        self.io.write_all(&bytes).await.unwrap();
    }

    fn compress(&mut self, message: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(message.len() + 1024);
        let before = self.compress.total_in();
        self.compress
            .compress_vec(message, &mut out, FlushCompress::Sync)
            .unwrap();
        assert_eq!((self.compress.total_in() - before) as usize, message.len());
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        if self.reset_ours {
            self.compress.reset();
        }
        out
    }

    /// The next frame: (opcode, rsv1, payload).
    async fn recv(&mut self) -> (WireOp, bool, Vec<u8>) {
        loop {
            let mut cursor = Cursor::new(&self.buffer);
            if let Some((header, len)) = FrameHeader::parse(&mut cursor).unwrap() {
                let start = cursor.position() as usize;
                if self.buffer.len() >= start + len as usize {
                    assert!(header.mask.is_none(), "servers do not mask");
                    let payload = self.buffer[start..start + len as usize].to_vec();
                    self.buffer.drain(..start + len as usize);
                    return (header.opcode, header.rsv1, payload);
                }
            }
            let mut chunk = [0; 4096];
            let n = self.io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "server hung up");
            self.buffer.extend_from_slice(&chunk[..n]);
        }
    }

    /// The next message (single frames only, from this server), inflated.
    async fn recv_message(&mut self) -> (WireOp, bool, Vec<u8>) {
        let (opcode, rsv1, payload) = self.recv().await;
        if !rsv1 {
            return (opcode, rsv1, payload);
        }
        let mut input = payload;
        input.extend_from_slice(&[0, 0, 0xff, 0xff]);
        let mut out = Vec::with_capacity(LIMIT * 2);
        self.decompress
            .decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        if self.reset_theirs {
            self.decompress.reset(false);
        }
        (opcode, rsv1, out)
    }
}

/// Negotiates `offer` under `policy`, starts the echo server, returns the
/// client for the agreed parameters.
fn connect(offer: &str, policy: &Policy) -> (Client, tokio::task::JoinHandle<Ended>) {
    let mut headers = HeaderMap::new();
    headers.insert(SEC_WEBSOCKET_EXTENSIONS, offer.parse().unwrap());
    let (_, session) = negotiate(&headers, policy).expect("offer accepted");
    let params = *session.params().unwrap();
    let (client, server) = tokio::io::duplex(64);
    let server = tokio::spawn(echo(server, session));
    let client = Client {
        io: client,
        buffer: Vec::new(),
        compress: Compress::new(Compression::default(), false),
        decompress: Decompress::new(false),
        reset_ours: params.client_no_context_takeover,
        reset_theirs: params.server_no_context_takeover,
    };
    (client, server)
}

fn record(i: usize) -> String {
    format!(r#"{{"channel":"channel{i}","key":"k{i}","value":{{"hello":"world","n":{i}}}}}"#)
}

#[tokio::test]
async fn compressed_messages_echo_both_ways() {
    for no_context_takeover in [false, true] {
        let policy = Policy {
            no_context_takeover,
            ..Policy::default()
        };
        let (mut client, server) = connect("permessage-deflate; client_max_window_bits", &policy);
        let hello = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
        // RFC 7692 §7.2.3.1, one frame and fragmented; §7.2.3.2 needs
        // takeover. "Hello" is under min_size: echoed uncompressed.
        client.send(TEXT, true, true, &hello).await;
        client.send(TEXT, false, true, &hello[..3]).await;
        client.send(CONTINUE, true, false, &hello[3..]).await;
        for _ in 0..2 {
            assert_eq!(
                client.recv_message().await,
                (TEXT, false, b"Hello".to_vec())
            );
        }
        if !no_context_takeover {
            client
                .send(TEXT, true, true, &[0xf2, 0x00, 0x11, 0x00, 0x00])
                .await;
            assert_eq!(
                client.recv_message().await,
                (TEXT, false, b"Hello".to_vec())
            );
        }

        // Records, compressed each way, with the agreed takeover.
        for i in 0..20 {
            let message = (0..=i).map(record).collect::<Vec<_>>().join(",");
            let packed = client.compress(message.as_bytes());
            client.send(TEXT, true, true, &packed).await;
            assert_eq!(
                client.recv_message().await,
                (TEXT, true, message.into_bytes())
            );
        }

        // A fragmented compressed message with a ping between fragments:
        // the pong comes first, RSV1-free.
        let message: String = (0..200).map(record).collect();
        let packed = client.compress(message.as_bytes());
        let third = packed.len() / 3;
        client.send(TEXT, false, true, &packed[..third]).await;
        client.send(PING, true, false, b"ping").await;
        client
            .send(CONTINUE, false, false, &packed[third..2 * third])
            .await;
        client
            .send(CONTINUE, true, false, &packed[2 * third..])
            .await;
        assert_eq!(client.recv_message().await, (PONG, false, b"ping".to_vec()));
        assert_eq!(
            client.recv_message().await,
            (TEXT, true, message.into_bytes())
        );

        // Binary (not UTF-8), and an uncompressed message the server
        // compresses back.
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8 | 0x80).collect();
        let packed = client.compress(&bytes);
        client.send(BINARY, true, true, &packed).await;
        assert_eq!(client.recv_message().await, (BINARY, true, bytes));
        let plain = record(7).repeat(3);
        client.send(TEXT, true, false, plain.as_bytes()).await;
        assert_eq!(
            client.recv_message().await,
            (TEXT, true, plain.into_bytes())
        );

        // Past the limit once inflated, though small on the wire: 1009.
        let bomb = vec![b'a'; LIMIT + 1];
        let packed = client.compress(&bomb);
        assert!(packed.len() < 1024);
        client.send(BINARY, true, true, &packed).await;
        let (opcode, _, payload) = client.recv().await;
        assert_eq!((opcode, &payload[..2]), (CLOSE, &1009u16.to_be_bytes()[..]));
        assert!(matches!(
            server.await.unwrap(),
            Ended::Deflate(DeflateError::TooLarge { limit: LIMIT })
        ));
    }
}

#[tokio::test]
async fn invalid_compressed_text_closes_with_1007() {
    let (mut client, server) = connect("permessage-deflate", &Policy::default());
    let packed = client.compress(&[0xff, 0xfe, 0xfd]);
    client.send(TEXT, true, true, &packed).await;
    let (opcode, _, payload) = client.recv().await;
    assert_eq!((opcode, &payload[..2]), (CLOSE, &1007u16.to_be_bytes()[..]));
    assert!(matches!(
        server.await.unwrap(),
        Ended::Deflate(DeflateError::InvalidUtf8)
    ));

    let (mut client, server) = connect("permessage-deflate", &Policy::default());
    client.send(BINARY, true, true, &[0xff, 0xff, 0xff]).await;
    let (opcode, _, payload) = client.recv().await;
    assert_eq!((opcode, &payload[..2]), (CLOSE, &1007u16.to_be_bytes()[..]));
    assert!(matches!(
        server.await.unwrap(),
        Ended::Deflate(DeflateError::Corrupt(_))
    ));
}

/// The shim refused a frame from its header (RSV1 where it is not allowed).
fn bad_header(ended: Ended) -> bool {
    matches!(ended, Ended::Socket(WebSocketError::IoError(e)) if Refused::of(&e) == Some(Refused::BadHeader))
}

#[tokio::test]
async fn rsv1_off_a_message_start_fails_the_connection() {
    let policy = Policy::default();
    let (mut client, server) = connect("permessage-deflate", &policy);
    client.send(PING, true, true, b"x").await;
    assert!(bad_header(server.await.unwrap()));

    let (mut client, server) = connect("permessage-deflate", &policy);
    client.send(BINARY, false, true, &[0xf2]).await;
    client.send(CONTINUE, true, true, &[0x48]).await;
    assert!(bad_header(server.await.unwrap()));
}

#[tokio::test]
async fn without_agreement_everything_passes_through() {
    let (client, server) = tokio::io::duplex(64);
    let server = tokio::spawn(echo(server, Session::off()));
    let mut client =
        tokio_tungstenite::WebSocketStream::from_raw_socket(client, WireRole::Client, None).await;
    let text = record(1).repeat(10);
    for message in [Message::text(text), Message::binary(vec![0x80; 3000])] {
        client.send(message.clone()).await.unwrap();
        assert_eq!(client.next().await.unwrap().unwrap(), message);
    }
    client.close(None).await.unwrap();
    assert!(matches!(server.await.unwrap(), Ended::Closed));
}
