"""Connects to a WebSocket URL and reports what happens as JSON lines.

An independent client (Python `websockets`) for Sluice's end-to-end tests.
Every line printed on stdout is one JSON object with an "event" field:

  {"event": "connected", "status": 101, "subprotocol": null, "headers": {...}}
      the handshake succeeded (always the first line of a connection)
  {"event": "message", "type": "text", "data": "..."}
  {"event": "message", "type": "binary", "data_b64": "..."}
      one received message, in order
  {"event": "closed", "code": 1000, "reason": "..."}
      the server closed the connection before the collection ended
  {"event": "done", "received": 3, "why": "count" | "timeout" | "closed"}
      the last line after a successful handshake
  {"event": "refused", "status": 401, "reason": "...", "headers": {...}, "body": "..."}
      the server answered the handshake with a non-101 HTTP status
  {"event": "error", "kind": "ConnectionRefusedError", "message": "..."}
      anything else went wrong (connection refused, timeout while opening...)

Header names are lower-cased; repeated headers are joined with ", ".
The exit status is 0 whenever the outcome was reported, 2 for bad arguments.

Usage:
  python ws_collect.py ws://127.0.0.1:8080/feeds/a --count 5 --timeout 10 \
      --basic alice:secret --header "X-Trace: 1" --send '{"hello": 1}'
"""

import argparse
import asyncio
import base64
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus


def emit(**event):
    print(json.dumps(event, sort_keys=True), flush=True)


def header_dict(headers):
    out = {}
    for name, value in headers.raw_items():
        name = name.lower()
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", help="ws:// or wss:// URL")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra handshake header (repeatable)",
    )
    parser.add_argument(
        "--basic", metavar="USER:PASSWORD", help="send HTTP Basic credentials"
    )
    parser.add_argument("--origin", help="Origin header to send")
    parser.add_argument(
        "--subprotocol", action="append", default=[], help="offered subprotocol (repeatable)"
    )
    parser.add_argument(
        "--count", type=int, help="stop after this many messages (default: no limit)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to collect after the handshake (default 10)",
    )
    parser.add_argument(
        "--open-timeout",
        type=float,
        default=10.0,
        help="seconds allowed for connecting and the handshake (default 10)",
    )
    parser.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="TEXT",
        help="text message to send right after connecting (repeatable, in order)",
    )
    parser.add_argument(
        "--no-deflate", action="store_true", help="do not offer permessage-deflate"
    )
    args = parser.parse_args(argv)

    headers = []
    for raw in args.header:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            parser.error(f"--header needs 'NAME: VALUE', got {raw!r}")
        headers.append((name.strip(), value.strip()))
    if args.basic is not None:
        if ":" not in args.basic:
            parser.error("--basic needs USER:PASSWORD")
        token = base64.b64encode(args.basic.encode()).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))
    args.headers = headers
    return args


async def collect(ws, count, timeout):
    """Receives until `count` messages, the timeout, or the close; returns why."""
    received = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while count is None or received < count:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return received, "timeout"
        try:
            message = await asyncio.wait_for(ws.recv(), remaining)
        except asyncio.TimeoutError:
            return received, "timeout"
        except ConnectionClosed as closed:
            frame = closed.rcvd
            emit(
                event="closed",
                code=frame.code if frame else None,
                reason=frame.reason if frame else None,
            )
            return received, "closed"
        received += 1
        if isinstance(message, str):
            emit(event="message", type="text", data=message)
        else:
            emit(
                event="message",
                type="binary",
                data_b64=base64.b64encode(message).decode("ascii"),
            )
    return received, "count"


async def main(args):
    try:
        ws = await connect(
            args.url,
            additional_headers=args.headers or None,
            origin=args.origin,
            subprotocols=args.subprotocol or None,
            compression=None if args.no_deflate else "deflate",
            open_timeout=args.open_timeout,
            close_timeout=2,
            max_size=16 * 1024 * 1024,
            # Tests talk to loopback: never go through a proxy from the environment.
            proxy=None,
        )
    except InvalidStatus as refused:
        response = refused.response
        emit(
            event="refused",
            status=response.status_code,
            reason=response.reason_phrase,
            headers=header_dict(response.headers),
            body=bytes(response.body).decode("utf-8", "replace"),
        )
        return
    except Exception as error:  # noqa: BLE001 - reported to the test, not hidden
        emit(event="error", kind=type(error).__name__, message=str(error))
        return

    try:
        emit(
            event="connected",
            status=ws.response.status_code,
            subprotocol=ws.subprotocol,
            headers=header_dict(ws.response.headers),
        )
        for text in args.send:
            await ws.send(text)
        received, why = await collect(ws, args.count, args.timeout)
        emit(event="done", received=received, why=why)
    except Exception as error:  # noqa: BLE001
        emit(event="error", kind=type(error).__name__, message=str(error))
    finally:
        await ws.close()


if __name__ == "__main__":
    asyncio.run(main(parse_args(sys.argv[1:])))
    sys.exit(0)
