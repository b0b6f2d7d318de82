#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (checked in): a few
inputs per target that reach each path the target checks, so a short run
starts from valid frames, requests and files rather than noise. Run it
again after changing a target's input layout."""
import os
import pathlib
import zlib

ROOT = pathlib.Path(__file__).resolve().parent
REPO = ROOT.parent


def frame(op, payload, fin=True, mask=b"\x01\x02\x03\x04", rsv1=False):
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | op
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head = bytes([first, bit | n])
    elif n < 65536:
        head = bytes([first, bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, bit | 127]) + n.to_bytes(8, "big")
    if not mask:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def deflated(data):
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def upgrade(request_line="GET /news HTTP/1.1", extra=(), key="dGhlIHNhbXBsZSBub25jZQ=="):
    lines = [request_line, "Host: example.com", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


SEEDS = {
    "frame_reader": {
        "text": b"\x00\x00" + frame(1, b"hello"),
        "fragments": b"\x00\x02" + frame(1, b"hel", fin=False) + frame(9, b"ping") + frame(0, b"lo"),
        "split_char": b"\x00\x00" + frame(1, "é".encode()[:1], fin=False) + frame(0, "é".encode()[1:]),
        "close": b"\x00\x00" + frame(8, b"\x03\xe8bye"),
        "unmasked": b"\x00\x00" + frame(1, b"hello", mask=None),
        "bad_utf8": b"\x00\x00" + frame(1, b"ok\xff", fin=False) + frame(0, b"x"),
        "binary_16bit": b"\x00\x07" + frame(2, bytes(range(200))),
        "compressed": b"\x01\x00" + frame(1, deflated(b"hello hello hello"), rsv1=True) + frame(1, b"plain"),
        "long_control": b"\x00\x00" + frame(9, b"p" * 126),
    },
    "frame_writer": {
        "text": b"\x00\x00\x05hello",
        "binary_16bit": b"\x01\x01\x00\xab",
        "compressed_64bit": b"\x89\xff\xff\x01\x02",
        "close": b"\x02\x00\x02\x03\xe8",
    },
    "handshake": {
        "valid": upgrade(),
        "origin": upgrade(extra=["Origin: https://example.com"]),
        "absolute_form": upgrade("GET http://tenant.example.com/news HTTP/1.1"),
        "post": upgrade("POST /news HTTP/1.1"),
        "http10": upgrade("GET /news HTTP/1.0"),
        "short_key": upgrade(key="AAAAAAAAAAA="),
        "two_keys": upgrade(extra=["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="]),
        "dot_segment": upgrade("GET /acme/../globex/x HTTP/1.1"),
        "version_8": upgrade(extra=[]).replace(b"Version: 13", b"Version: 8"),
    },
    "deflate": {
        "inflate": b"\x00\x10" + deflated(b"a" * 4000),
        "inflate_takeover": b"\x00\x90" + deflated(b"message one") + deflated(b"message two"),
        "round_trip": b"\x01\x00" + b"first\x00second\x00" + bytes(range(256)),
        "round_trip_takeover": b"\x01\x80" + b"same same\x80same same same",
        "offer": b"\x02\x01permessage-deflate; client_max_window_bits; server_no_context_takeover",
        "offers": b"\x02\xa0x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=\"15\", permessage-deflate",
    },
    "template": {
        "channel": b"/{channel}\n/news",
        "typed": b"/t/{id:int}/feeds/{feed:uuid}\n/t/-7/feeds/0f8fad5b-d9cb-469f-a165-70867728950e",
        "literal": b"/acme/{room}\n/acme/lobby%20one",
        "root": b"/\n/",
    },
}


def main():
    for target, seeds in SEEDS.items():
        folder = ROOT / "corpus" / target
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (folder / name).write_bytes(data)
    # Pipeline files: the repository's own, as written by its users.
    folder = ROOT / "corpus" / "config"
    folder.mkdir(parents=True, exist_ok=True)
    for path in [REPO / "pipeline.toml", *sorted((REPO / "examples").rglob("*.toml"))]:
        name = str(path.relative_to(REPO)).replace(os.sep, "_")
        (folder / name).write_bytes(path.read_bytes())


if __name__ == "__main__":
    main()
