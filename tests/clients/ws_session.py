"""Plays a scripted conversation over one WebSocket and reports it as JSON lines.

An independent client (Python `websockets`) for Sluice's end-to-end tests of
recording, replay and proxying: it sends exactly the frames it is told to,
with the pauses it is told to take, and reports every frame it receives with
the time it arrived. Every line on stdout is one JSON object:

  {"event": "connected", "status": 101}
  {"event": "sent", "type": "text" | "binary" | "ping", "t_ms": 12.5}
  {"event": "message", "type": "text", "data": "...", "t_ms": 40.1}
  {"event": "message", "type": "binary", "data_b64": "...", "t_ms": 41.0}
  {"event": "closed", "code": 1000, "reason": "...", "t_ms": 90.2}
      the connection closed (by either side) while a step waited on it
  {"event": "done", "why": "steps" | "closed"}
  {"event": "refused", "status": 502, "body": "..."}
  {"event": "error", "kind": "...", "message": "..."}

`t_ms` counts from the end of the handshake. Steps run in order:

  text:DATA      send a text message
  binary:B64     send a binary message (base64 of its bytes)
  ping:DATA      send a ping with DATA as its payload, wait for its pong
  sleep:SECONDS  pause
  recv[:N]       receive N messages (default 1), each within --timeout
  close[:CODE]   close with CODE (default 1000) and wait for the answer
  wait-close     receive until the server closes (messages are reported)

Usage:
  python ws_session.py ws://127.0.0.1:8080/echo --step text:hi --step recv \
      --step sleep:0.2 --step binary:AAEC --step recv --step close
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


class Session:
    def __init__(self, ws, timeout):
        self.ws = ws
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.opened = self.loop.time()

    def now_ms(self):
        return round((self.loop.time() - self.opened) * 1000, 1)

    def closed(self, error):
        frame = error.rcvd
        emit(
            event="closed",
            code=frame.code if frame else None,
            reason=frame.reason if frame else None,
            t_ms=self.now_ms(),
        )

    async def receive(self, timeout):
        message = await asyncio.wait_for(self.ws.recv(), timeout)
        t_ms = self.now_ms()
        if isinstance(message, str):
            emit(event="message", type="text", data=message, t_ms=t_ms)
        else:
            data = base64.b64encode(message).decode("ascii")
            emit(event="message", type="binary", data_b64=data, t_ms=t_ms)

    async def step(self, step):
        verb, _, arg = step.partition(":")
        if verb == "text":
            await self.ws.send(arg)
            emit(event="sent", type="text", t_ms=self.now_ms())
        elif verb == "binary":
            await self.ws.send(base64.b64decode(arg))
            emit(event="sent", type="binary", t_ms=self.now_ms())
        elif verb == "ping":
            pong = await self.ws.ping(arg.encode())
            emit(event="sent", type="ping", t_ms=self.now_ms())
            await asyncio.wait_for(pong, self.timeout)
        elif verb == "sleep":
            await asyncio.sleep(float(arg))
        elif verb == "recv":
            for _ in range(int(arg or 1)):
                await self.receive(self.timeout)
        elif verb == "close":
            await self.ws.close(int(arg or 1000))
            frame = self.ws.close_rcvd
            emit(
                event="closed",
                code=frame.code if frame else None,
                reason=frame.reason if frame else None,
                t_ms=self.now_ms(),
            )
            return True
        elif verb == "wait-close":
            while True:
                await self.receive(self.timeout)
        else:
            raise ValueError(f"unknown step {step!r}")
        return False


async def main(args):
    try:
        ws = await connect(
            args.url,
            compression=None,
            open_timeout=args.timeout,
            close_timeout=2,
            max_size=16 * 1024 * 1024,
            # Tests talk to loopback: never go through a proxy from the environment.
            proxy=None,
        )
    except InvalidStatus as refused:
        response = refused.response
        body = bytes(response.body).decode("utf-8", "replace")
        emit(event="refused", status=response.status_code, body=body)
        return
    except Exception as error:  # noqa: BLE001 - reported to the test, not hidden
        emit(event="error", kind=type(error).__name__, message=str(error))
        return

    emit(event="connected", status=ws.response.status_code)
    session = Session(ws, args.timeout)
    why = "steps"
    try:
        for step in args.step:
            if await session.step(step):
                break
    except ConnectionClosed as closed:
        session.closed(closed)
        why = "closed"
    except Exception as error:  # noqa: BLE001
        emit(event="error", kind=type(error).__name__, message=str(error))
    finally:
        await ws.close()
    emit(event="done", why=why)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("url", help="ws:// or wss:// URL")
    parser.add_argument("--step", action="append", default=[], help="see above (repeatable)")
    parser.add_argument(
        "--timeout", type=float, default=10.0, help="seconds per wait (default 10)"
    )
    asyncio.run(main(parser.parse_args(sys.argv[1:])))
    sys.exit(0)
