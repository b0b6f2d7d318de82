// A Sluice client for browsers and Node: one WebSocket to one channel of a
// pipeline, reconnected with exponential backoff and jitter, and resumed
// from the position it kept (the `sluice.resume.v1` subprotocol, see
// docs/resume.md), so a client that drops gets exactly what it missed.
// No dependencies: it uses the platform's WebSocket (or the one given).

/** The resume subprotocol. */
export const PROTOCOL = "sluice.resume.v1";

const DEFAULT_BACKOFF = { initialMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 };

/** Close codes after which coming back cannot help. */
const FINAL_CLOSES = new Set([1000, 1002, 1003, 1007, 1009, 1010]);

/**
 * What a client keeps to present when it comes back: the latest `position`
 * token, and the latest record token per (topic, partition) since.
 */
export class Position {
  constructor() {
    this.checkpoint = "";
    this.records = new Map();
  }

  /** Takes the token of one server message (`position` or `record`). */
  keep(message) {
    if (message.type === "position") {
      this.checkpoint = message.position;
      this.records.clear();
    } else if (message.type === "record") {
      this.records.set(`${message.topic}\u0000${message.partition}`, message.position);
    }
  }

  /** The `resume` query value: every kept token, comma separated. */
  toString() {
    if (!this.checkpoint) return "";
    return [this.checkpoint, ...this.records.values()].join(",");
  }
}

/** The delay before reconnect attempt `attempt` (0-based), in ms. */
export function backoffDelay(attempt, backoff = DEFAULT_BACKOFF, random = Math.random) {
  const { initialMs, maxMs, factor, jitter } = { ...DEFAULT_BACKOFF, ...backoff };
  const base = Math.min(maxMs, initialMs * factor ** attempt);
  // Full range [base * (1 - jitter), base]: clients dropped together do
  // not all come back at the same instant.
  return Math.round(base * (1 - jitter * random()));
}

function decodeData(message) {
  if (typeof message.data === "string") return message.data;
  if (typeof message.data_base64 === "string") {
    const text = atob(message.data_base64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    return bytes;
  }
  return undefined;
}

/**
 * A connection to `url` (`ws://` or `wss://`; the path names the channel)
 * that comes back by itself. Events (`client.on(name, listener)`):
 * `open`, `record` ({topic, partition, offset, data}), `message` (data),
 * `recovered` ({records}), `notRecovered` ({reason}), `reconnecting`
 * ({attempt, delayMs, code, reason}), `close` ({code, reason}: final),
 * `error` (an Error).
 */
export class SluiceClient {
  /**
   * @param {string} url
   * @param {object} [options]
   */
  constructor(url, options = {}) {
    this.url = url;
    this.options = options;
    this.position = new Position();
    this.listeners = new Map();
    this.socket = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = false;
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.setTimeout = options.setTimeout ?? globalThis.setTimeout.bind(globalThis);
    this.clearTimeout = options.clearTimeout ?? globalThis.clearTimeout.bind(globalThis);
    if (!this.WebSocket) throw new Error("no WebSocket implementation: pass options.WebSocket");
  }

  /** Adds a listener; returns a function that removes it. */
  on(event, listener) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(listener);
    return () => this.listeners.get(event)?.delete(listener);
  }

  /** Calls `handler` with every record's data; returns the unsubscribe function. */
  subscribe(handler) {
    return this.on("record", (record) => handler(record.data, record));
  }

  emit(event, value) {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        listener(value);
      } catch (error) {
        if (event !== "error") this.emit("error", error);
      }
    }
  }

  /** Connects (again); resumes from the kept position if there is one. */
  connect() {
    this.stopped = false;
    const resume = this.position.toString();
    let url = this.url;
    if (resume) {
      url += (url.includes("?") ? "&" : "?") + "resume=" + encodeURIComponent(resume);
    }
    const protocols = [PROTOCOL, ...(this.options.protocols ?? [])];
    const socket = new this.WebSocket(url, protocols);
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.emit("open", { resumed: Boolean(resume) });
    };
    // A pipeline without `resume` does not choose the subprotocol: its
    // frames are the records themselves, and there is nothing to resume.
    socket.onmessage = (event) => {
      if (socket.protocol === PROTOCOL) this.receive(event.data);
      else this.emit("record", { data: event.data });
    };
    socket.onerror = () => this.emit("error", new Error(`WebSocket error on ${this.url}`));
    socket.onclose = (event) => this.closed(socket, event.code, event.reason);
    return this;
  }

  receive(raw) {
    let message;
    try {
      message = JSON.parse(typeof raw === "string" ? raw : new TextDecoder().decode(raw));
    } catch (error) {
      this.emit("error", new Error(`not a ${PROTOCOL} message: ${error.message}`));
      return;
    }
    switch (message.type) {
      case "record":
        this.position.keep(message);
        this.emit("record", {
          topic: message.topic,
          partition: message.partition,
          offset: message.offset,
          data: decodeData(message),
        });
        break;
      case "position":
        this.position.keep(message);
        break;
      case "message":
        this.emit("message", decodeData(message));
        break;
      case "recovered":
        if (message.complete) this.emit("recovered", { records: message.records });
        else this.emit("notRecovered", { reason: message.reason });
        break;
      default:
        this.emit("error", new Error(`unknown message type ${JSON.stringify(message.type)}`));
    }
  }

  closed(socket, code, reason) {
    if (socket !== this.socket) return;
    this.socket = null;
    // A refused handshake (say, a position signed with a retired key)
    // closes with 1006 before `open`: coming back without the position
    // starts afresh rather than failing forever.
    if (this.stopped || FINAL_CLOSES.has(code)) {
      this.emit("close", { code, reason });
      return;
    }
    const delayMs = backoffDelay(this.attempt, this.options.backoff, this.options.random);
    this.attempt += 1;
    if (this.attempt > (this.options.maxAttemptsWithPosition ?? 5) && this.position.toString()) {
      this.position = new Position();
      this.emit("notRecovered", { reason: "the server kept refusing the position" });
    }
    this.emit("reconnecting", { attempt: this.attempt, delayMs, code, reason });
    this.timer = this.setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.connect();
    }, delayMs);
  }

  /** Closes for good (no reconnect). */
  close(code = 1000, reason = "") {
    this.stopped = true;
    if (this.timer !== null) {
      this.clearTimeout(this.timer);
      this.timer = null;
    }
    if (this.socket) this.socket.close(code, reason);
    else this.emit("close", { code, reason });
  }
}

/** Connects a client to `url` with `options` (see {@link SluiceClient}). */
export function connect(url, options) {
  return new SluiceClient(url, options).connect();
}
