/** The resume subprotocol. */
export declare const PROTOCOL: "sluice.resume.v1";

/** Exponential backoff with jitter between reconnect attempts. */
export interface Backoff {
  /** First delay (default 500 ms). */
  initialMs?: number;
  /** Longest delay (default 30 s). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Share of each delay drawn at random, 0 to 1 (default 0.5). */
  jitter?: number;
}

export interface ClientOptions {
  backoff?: Backoff;
  /** More subprotocols to offer after `sluice.resume.v1`. */
  protocols?: string[];
  /** Reconnect attempts with a position before starting afresh (default 5). */
  maxAttemptsWithPosition?: number;
  /** A WebSocket implementation (default: the platform's). */
  WebSocket?: unknown;
  /** For tests: the random source of the jitter, and the timers. */
  random?: () => number;
  setTimeout?: (fn: () => void, ms: number) => unknown;
  clearTimeout?: (timer: unknown) => void;
}

/** A record of the client's channel. */
export interface SluiceRecord {
  topic: string;
  partition: number;
  offset: number;
  /** Text payloads as strings, binary ones as bytes. */
  data: string | Uint8Array;
}

export interface ClientEvents {
  open: { resumed: boolean };
  record: SluiceRecord;
  message: string | Uint8Array | undefined;
  recovered: { records: number };
  notRecovered: { reason: string };
  reconnecting: { attempt: number; delayMs: number; code: number; reason: string };
  close: { code: number; reason: string };
  error: Error;
}

/** What a client presents when it comes back. */
export declare class Position {
  checkpoint: string;
  records: Map<string, string>;
  keep(message: { type: string; position?: string; topic?: string; partition?: number }): void;
  toString(): string;
}

export declare function backoffDelay(attempt: number, backoff?: Backoff, random?: () => number): number;

export declare class SluiceClient {
  constructor(url: string, options?: ClientOptions);
  readonly url: string;
  position: Position;
  on<E extends keyof ClientEvents>(event: E, listener: (value: ClientEvents[E]) => void): () => void;
  subscribe(handler: (data: string | Uint8Array, record: SluiceRecord) => void): () => void;
  connect(): this;
  close(code?: number, reason?: string): void;
}

export declare function connect(url: string, options?: ClientOptions): SluiceClient;
