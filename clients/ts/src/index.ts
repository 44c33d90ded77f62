/**
 * Croupier client for browsers (Angular, plain TypeScript) and Node: the native protocol
 * over WebSocket with JSON (docs/protocol.md).
 *
 * - `request(type, fields)` returns a Promise of the reply's `data`, or rejects with a
 *   `CroupierError` (its `code` and `name` are the protocol's error codes).
 * - `on(event, handler)` gets events in `seq` order, each once, across reconnects.
 * - After `login`, a `ping` goes out every `heartbeat` seconds (the login reply says how often).
 * - A dropped connection (network loss, a server restart: 1001, 4009) is reconnected and the
 *   session resumed (`resume` with the last `seq` seen): the events missed are replayed, and
 *   the requests that had no reply are sent again with the same id, so a spin with a `key` is
 *   applied once. If the session is gone (error 106), the state becomes "lost": log in again.
 * - In a cluster the routing key goes in the URL (`?token=` for a login, `?resume=` for a
 *   resume), and a 4010 close sends the client to the node it names.
 */

import type { Requests } from "./messages.js";

export type * from "./messages.js";

export type State = "connecting" | "connected" | "reconnecting" | "resumed" | "lost" | "closed";

export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: any) => void) | null;
  onmessage: ((ev: { data: any }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: any) => void) | null;
}

export type WebSocketCtor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export interface CroupierOptions {
  /** The WebSocket class: the browser's by default; in Node, `ws`. */
  WebSocket?: WebSocketCtor;
  /** A request without a reply after this long is rejected (its key makes a retry safe). */
  requestTimeoutMs?: number;
  /** Waits between reconnection attempts after a drop; then the session is given up. */
  reconnectDelaysMs?: number[];
}

export interface LoginFields {
  token?: string;
  guest?: boolean;
  zone?: string;
  name?: string;
}

/** An error reply (or a request that could not be answered: code 0, name "disconnected"). */
export class CroupierError extends Error {
  constructor(
    readonly code: number,
    readonly errorName: string,
    message: string,
  ) {
    super(message);
    this.name = "CroupierError";
  }
}

type EventHandler = (data: any, seq: number) => void;
type StateHandler = (state: State, info?: any) => void;

interface Pending {
  message: Record<string, unknown>;
  resolve: (data: any) => void;
  reject: (err: CroupierError) => void;
  timer: ReturnType<typeof setTimeout>;
}

const SUBPROTOCOL = "croupier.v1.json";
/** Closes after which there is nothing to resume: ours (1000), replaced, kicked, banned. */
const FINAL = new Set([1000, 4003, 4004, 4005]);
const WRONG_NODE = 4010;
const RESUME_FAILED = 106;

export class CroupierClient {
  private ws: WebSocketLike | null = null;
  private readonly WS: WebSocketCtor;
  private readonly timeoutMs: number;
  private readonly delays: number[];
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private readonly handlers = new Map<string, Set<EventHandler>>();
  private readonly stateHandlers = new Set<StateHandler>();
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private closedByUs = false;
  private _lastSeq = 0;
  private _resumeToken: string | null = null;
  private _state: State = "closed";

  constructor(
    private url: string,
    options: CroupierOptions = {},
  ) {
    const ctor = options.WebSocket ?? (globalThis as any).WebSocket;
    if (!ctor) throw new Error("no WebSocket class: pass options.WebSocket (in Node: the ws package)");
    this.WS = ctor;
    this.timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.delays = options.reconnectDelaysMs ?? [250, 500, 1000, 2000, 4000, 8000];
  }

  /** The highest event `seq` received. */
  get lastSeq(): number {
    return this._lastSeq;
  }

  get resumeToken(): string | null {
    return this._resumeToken;
  }

  get state(): State {
    return this._state;
  }

  /** Handle event `name` ("*" for every event); returns the function that removes it. */
  on(name: string, handler: EventHandler): () => void {
    let set = this.handlers.get(name);
    if (!set) this.handlers.set(name, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  onState(handler: StateHandler): () => void {
    this.stateHandlers.add(handler);
    return () => this.stateHandlers.delete(handler);
  }

  /** Log in (a signed token, or a guest of a zone); opens the connection if needed. */
  async login(fields: LoginFields): Promise<any> {
    if (!this.ws) await this.open(fields.token ? `token=${encodeURIComponent(fields.token)}` : "");
    const data = await this.request("login", { ...fields });
    this._resumeToken = data.resume_token ?? null;
    this.startHeartbeat(data.heartbeat);
    return data;
  }

  /** Send a request; resolves with the reply's data (its fields are checked by type). */
  request<K extends keyof Requests, T = any>(
    type: K,
    ...[fields]: {} extends Requests[K] ? [Requests[K]?] : [Requests[K]]
  ): Promise<T> {
    const id = ++this.nextId;
    const message: Record<string, unknown> = { ...(fields ?? {}), type, id };
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new CroupierError(0, "timeout", `no reply to ${type} in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { message, resolve, reject, timer });
      this.sendNow(message);
    });
  }

  /** End the session (close 1000: the server forgets it at once). */
  close(): void {
    this.closedByUs = true;
    this.stopHeartbeat();
    this.ws?.close(1000, "bye");
    this.failAll(new CroupierError(0, "closed", "the client was closed"));
    this.setState("closed");
  }

  // -- the connection ---------------------------------------------------------------------

  private open(query: string): Promise<void> {
    this.setState("connecting");
    const url = query ? `${this.url}${this.url.includes("?") ? "&" : "?"}${query}` : this.url;
    return new Promise<void>((resolve, reject) => {
      const ws = new this.WS(url, SUBPROTOCOL);
      this.ws = ws;
      let opened = false;
      ws.onopen = () => {
        opened = true;
        this.setState("connected");
        resolve();
      };
      ws.onmessage = (ev) => this.received(typeof ev.data === "string" ? ev.data : String(ev.data));
      ws.onerror = () => {
        if (!opened) reject(new CroupierError(0, "disconnected", `cannot connect to ${url}`));
      };
      ws.onclose = (ev) => {
        const current = this.ws === ws;
        if (current) this.ws = null;
        if (!opened) reject(new CroupierError(0, "disconnected", `cannot connect to ${url}`));
        else if (current) this.dropped(ev.code, ev.reason); // not one we gave up on
      };
    });
  }

  private sendNow(message: Record<string, unknown>): void {
    const ws = this.ws;
    if (ws && ws.readyState === 1) ws.send(JSON.stringify(message));
    // else: sent again once the connection is back (see `resumed`)
  }

  private received(raw: string): void {
    let msg: any;
    try {
      msg = JSON.parse(raw);
    } catch {
      return;
    }
    if (msg.type === "ok" || msg.type === "error") {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.type === "ok") p.resolve(msg.data);
      else p.reject(new CroupierError(msg.code, msg.name, msg.message));
    } else if (msg.type === "event") {
      if (msg.seq <= this._lastSeq) return; // seen already (a replay after a resume)
      this._lastSeq = msg.seq;
      for (const name of [msg.event, "*"]) {
        for (const h of this.handlers.get(name) ?? []) h(msg.data, msg.seq);
      }
    }
  }

  private dropped(code: number, reason: string): void {
    this.stopHeartbeat();
    if (this.closedByUs) return;
    if (code === WRONG_NODE && reason) this.url = reason; // the node that has the user
    if (FINAL.has(code)) {
      this.failAll(new CroupierError(code, "closed", `closed by the server (${code} ${reason})`));
      this.setState("closed", { code, reason });
      return;
    }
    this.setState("reconnecting", { code, reason });
    void this.reconnect();
  }

  private async reconnect(): Promise<void> {
    for (const delay of this.delays) {
      await new Promise((r) => setTimeout(r, delay));
      if (this.closedByUs) return;
      const token = this._resumeToken;
      try {
        await this.open(token ? `resume=${encodeURIComponent(token)}` : "");
      } catch {
        continue; // not reachable yet: try again
      }
      if (!token) {
        this.resendPending(); // not logged in yet (a redirect before the login): say it again
        return;
      }
      const id = ++this.nextId;
      const reply = await this.resumeOnce(id, token);
      if (reply === "retry") {
        const stale = this.ws;
        this.ws = null; // its close is not a new drop
        stale?.close();
        continue;
      }
      if (reply === "lost") return;
      this.startHeartbeat(reply.heartbeat);
      this.setState("resumed", reply);
      this.resendPending();
      return;
    }
    this.failAll(new CroupierError(0, "disconnected", "could not reconnect"));
    this.setState("lost", { reason: "unreachable" });
  }

  private resumeOnce(id: number, token: string): Promise<any> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve("retry");
      }, this.timeoutMs);
      this.pending.set(id, {
        message: {},
        timer,
        resolve: (data) => resolve(data),
        reject: (err) => {
          if (err.code === RESUME_FAILED) {
            this._resumeToken = null;
            this.failAll(new CroupierError(RESUME_FAILED, err.errorName, err.message));
            this.setState("lost", { reason: err.message });
            resolve("lost");
          } else resolve("retry");
        },
      });
      this.sendNow({ type: "resume", id, token, last_seq: this._lastSeq });
    });
  }

  /** Requests that got no reply go out again with their ids: money requests keep their keys. */
  private resendPending(): void {
    for (const p of this.pending.values()) {
      if (p.message.type) this.sendNow(p.message);
    }
  }

  private failAll(err: CroupierError): void {
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.pending.clear();
  }

  private startHeartbeat(seconds: number | undefined): void {
    this.stopHeartbeat();
    if (!seconds || seconds <= 0) return;
    this.heartbeat = setInterval(() => {
      this.request("ping").catch(() => undefined);
    }, seconds * 1000);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private setState(state: State, info?: any): void {
    this._state = state;
    for (const h of this.stateHandlers) h(state, info);
  }
}
