// The client's own logic against a scripted WebSocket: what it keeps,
// what it presents when it comes back, its events, and its backoff.
// (The browser test in runtime/tests/e2e_browser.rs runs it against a real
// Sluice.)
import assert from "node:assert/strict";
import test from "node:test";

import { PROTOCOL, Position, SluiceClient, backoffDelay } from "../src/index.js";

/** A WebSocket the test drives; every instance is kept in `sockets`. */
function fakeWebSocket() {
  const sockets = [];
  class FakeSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.closedWith = null;
      sockets.push(this);
    }
    open(protocol = PROTOCOL) {
      this.protocol = protocol;
      this.onopen?.({});
    }
    send(message) {
      this.onmessage?.({ data: JSON.stringify(message) });
    }
    drop(code = 1006, reason = "") {
      this.onclose?.({ code, reason });
    }
    close(code, reason) {
      this.closedWith = { code, reason };
      this.onclose?.({ code, reason });
    }
  }
  return { FakeSocket, sockets };
}

/** Timers the test fires by hand. */
function manualTimers() {
  const pending = [];
  return {
    pending,
    setTimeout: (fn, ms) => {
      pending.push({ fn, ms });
      return pending.length;
    },
    clearTimeout: () => {},
    fire() {
      pending.shift().fn();
    },
  };
}

function client(options = {}) {
  const { FakeSocket, sockets } = fakeWebSocket();
  const timers = manualTimers();
  const c = new SluiceClient("wss://example.test/ticks/AAPL", {
    WebSocket: FakeSocket,
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    random: () => 0.5,
    ...options,
  });
  const events = [];
  for (const name of ["open", "record", "message", "recovered", "notRecovered", "reconnecting", "close", "error"]) {
    c.on(name, (value) => events.push([name, value]));
  }
  return { c, sockets, timers, events };
}

test("it offers the resume subprotocol and comes back with what it kept", () => {
  const { c, sockets, timers, events } = client();
  c.connect();
  assert.deepEqual(sockets[0].protocols, [PROTOCOL]);
  assert.equal(sockets[0].url, "wss://example.test/ticks/AAPL");
  sockets[0].open();
  sockets[0].send({ type: "position", position: "k1.base.mac" });
  sockets[0].send({ type: "record", topic: "ticks", partition: 0, offset: 4, position: "k1.p0o4.mac", data: "a" });
  sockets[0].send({ type: "record", topic: "ticks", partition: 1, offset: 9, position: "k1.p1o9.mac", data: "b" });
  sockets[0].send({ type: "record", topic: "ticks", partition: 0, offset: 5, position: "k1.p0o5.mac", data: "c" });
  sockets[0].drop(1006);
  assert.deepEqual(events.at(-1), ["reconnecting", { attempt: 1, delayMs: 375, code: 1006, reason: "" }]);
  timers.fire();
  const resume = new URL(sockets[1].url).searchParams.get("resume");
  assert.equal(resume, "k1.base.mac,k1.p0o5.mac,k1.p1o9.mac", "the latest token per partition");
  const records = events.filter(([name]) => name === "record").map(([, r]) => r.data);
  assert.deepEqual(records, ["a", "b", "c"]);
});

test("a pipeline without resume gets its frames as records, with nothing kept", () => {
  const { c, sockets, timers, events } = client();
  c.connect();
  sockets[0].open("");
  sockets[0].onmessage({ data: "plain record" });
  assert.deepEqual(events.at(-1), ["record", { data: "plain record" }]);
  sockets[0].drop();
  timers.fire();
  assert.equal(new URL(sockets[1].url).searchParams.get("resume"), null);
});

test("a position message replaces the record tokens before it", () => {
  const position = new Position();
  position.keep({ type: "record", topic: "t", partition: 0, position: "r1" });
  position.keep({ type: "position", position: "checkpoint" });
  assert.equal(position.toString(), "checkpoint");
  position.keep({ type: "record", topic: "t", partition: 2, position: "r2" });
  assert.equal(position.toString(), "checkpoint,r2");
  assert.equal(new Position().toString(), "", "nothing to present before the first position");
});

test("it reports recovery, messages and binary records", () => {
  const { c, sockets, events } = client();
  c.connect();
  sockets[0].open();
  sockets[0].send({ type: "recovered", complete: true, records: 3 });
  sockets[0].send({ type: "recovered", complete: false, reason: "too old" });
  sockets[0].send({ type: "message", data: "hello" });
  sockets[0].send({ type: "record", topic: "t", partition: 0, offset: 1, position: "p", data_base64: "AAH/" });
  assert.deepEqual(events.slice(1, 4), [
    ["recovered", { records: 3 }],
    ["notRecovered", { reason: "too old" }],
    ["message", "hello"],
  ]);
  assert.deepEqual([...events[4][1].data], [0, 1, 255]);
});

test("backoff grows to its cap, with jitter, and resets once connected", () => {
  const backoff = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };
  assert.equal(backoffDelay(0, backoff, () => 0), 100);
  assert.equal(backoffDelay(3, backoff, () => 0), 800);
  assert.equal(backoffDelay(10, backoff, () => 0), 1000);
  assert.equal(backoffDelay(10, backoff, () => 1), 500);
  const { c, sockets, timers, events } = client({ backoff });
  c.connect();
  sockets[0].drop();
  timers.fire();
  sockets[1].drop();
  timers.fire();
  const delays = events.filter(([n]) => n === "reconnecting").map(([, e]) => e.delayMs);
  assert.deepEqual(delays, [75, 150]);
  sockets[2].open();
  sockets[2].drop();
  assert.equal(events.at(-1)[1].delayMs, 75, "reset after a successful open");
});

test("close stops for good; a final close code does not reconnect", () => {
  const { c, sockets, timers, events } = client();
  c.connect();
  sockets[0].open();
  c.close();
  assert.deepEqual(sockets[0].closedWith, { code: 1000, reason: "" });
  assert.deepEqual(events.at(-1), ["close", { code: 1000, reason: "" }]);
  assert.equal(timers.pending.length, 0);
  const second = client();
  second.c.connect();
  second.sockets[0].drop(1003, "unsupported");
  assert.deepEqual(second.events.at(-1), ["close", { code: 1003, reason: "unsupported" }]);
});

test("a position the server keeps refusing is dropped after a few attempts", () => {
  const { c, sockets, timers, events } = client({ maxAttemptsWithPosition: 2 });
  c.connect();
  sockets[0].open();
  sockets[0].send({ type: "position", position: "stale" });
  for (let i = 0; i < 3; i++) {
    sockets.at(-1).drop(1006);
    timers.fire();
  }
  assert.ok(events.some(([n, e]) => n === "notRecovered" && e.reason.includes("refusing")));
  assert.equal(new URL(sockets.at(-1).url).searchParams.get("resume"), null);
});
