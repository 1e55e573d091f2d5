// The browser's end of the WebSocket control channel (docs/protocol.md), driven like the desktop agent's: every
// message gets the next seq and stays pending until the server acknowledges it. After a dropped connection the
// channel reconnects with backoff (a fresh `ws_url` from the recording), learns where the recording stands from
// READY, and sends what is still pending with the same seqs: the server applies a seq once and acknowledges a
// repeat again, so nothing is applied twice or lost.

import { api, ApiError } from "../api";

const CLOSE_NOT_FOUND = 4404;
const OPEN_STATUSES = new Set(["PREPARING", "RECORDING", "PAUSED"]);
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
const BACKOFF_CAP_MS = 10_000;
// A connection that neither reaches READY nor acknowledges a message in this time is presumed dead (a network that
// went away without closing the socket), and is replaced.
const SILENCE_MS = 10_000;

export class ControlError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ControlError";
  }
}

/** Something the server decided: FORCE_STOP (reason), SESSION_EXPIRED, SESSION_CLOSED (status), or
 * STOPPED_WHILE_AWAY (READY found the recording no longer capturing; detail is its status). */
export interface Command {
  type: "FORCE_STOP" | "SESSION_EXPIRED" | "SESSION_CLOSED" | "STOPPED_WHILE_AWAY";
  detail: string;
}

interface Pending {
  frame: string;
  resolve(status: string): void;
  reject(error: Error): void;
}

interface Frame {
  type?: string;
  data?: Record<string, unknown>;
}

export class ControlChannel {
  /** The recording's status as the server last told it. */
  status: string | null = null;
  private url: string;
  private ws: WebSocket | null = null;
  private live: WebSocket | null = null; // the socket that has said READY
  private lastSeq = 0;
  private readonly pending = new Map<number, Pending>();
  private attempt = 0;
  private over = false;
  private silence: number | undefined;
  private retry: number | undefined;

  constructor(
    private readonly recordingId: string,
    wsUrl: string,
    private readonly onCommand: (command: Command) => void,
    private readonly onConnected: (connected: boolean) => void,
  ) {
    this.url = wsUrl;
    window.addEventListener("online", this.onOnline);
  }

  /** Connect, and stay connected until `close()` or the session ends. */
  open(): void {
    this.connect();
  }

  /** Send a message and resolve with the status of its ACK, however many reconnects that takes.
   * Rejects with ControlError when the server refuses it (nothing changed on the server) or the channel closes. */
  send(type: string, data: Record<string, unknown> = {}): Promise<string> {
    if (this.over) return Promise.reject(new ControlError("closed", "the control channel is closed"));
    const seq = ++this.lastSeq;
    const frame = JSON.stringify({ type, seq, data });
    return new Promise<string>((resolve, reject) => {
      this.pending.set(seq, { frame, resolve, reject });
      if (this.live?.readyState === WebSocket.OPEN) {
        this.live.send(frame); // if this is lost, the reconnect sends it again
        this.watchSilence();
      }
    });
  }

  close(): void {
    this.over = true;
    window.removeEventListener("online", this.onOnline);
    window.clearTimeout(this.silence);
    window.clearTimeout(this.retry);
    const ws = this.ws;
    this.ws = null;
    this.live = null;
    ws?.close(1000);
    for (const entry of this.pending.values()) entry.reject(new ControlError("closed", "the control channel was closed"));
    this.pending.clear();
  }

  private connect(): void {
    if (this.over) return;
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.url);
    } catch {
      this.reconnectLater();
      return;
    }
    this.ws = ws;
    this.watchSilence();
    ws.onmessage = (event) => {
      if (this.ws === ws && typeof event.data === "string") this.receive(ws, event.data);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return; // replaced on purpose
      this.ws = null;
      this.live = null;
      if (this.over) return;
      if (event.code === CLOSE_NOT_FOUND) return this.end({ type: "SESSION_CLOSED", detail: "NOT_FOUND" });
      // Anything else, a refused ticket (4401) included, is worth another try: the reconnect fetches a fresh
      // ws_url first, and the recording's GET says whether there still is a session to rejoin.
      this.reconnectLater();
    };
  }

  private receive(ws: WebSocket, raw: string): void {
    let message: Frame;
    try {
      message = JSON.parse(raw) as Frame;
    } catch {
      return;
    }
    const data = message.data ?? {};
    switch (message.type) {
      case "READY": {
        this.status = String(data["status"]);
        this.live = ws;
        this.attempt = 0;
        this.onConnected(true);
        if (!OPEN_STATUSES.has(this.status)) this.onCommand({ type: "STOPPED_WHILE_AWAY", detail: this.status });
        const waiting = [...this.pending.entries()].sort(([a], [b]) => a - b);
        for (const [, entry] of waiting) ws.send(entry.frame);
        this.watchSilence();
        break;
      }
      case "ACK":
        this.status = String(data["status"]);
        this.settle(Number(data["seq"]), (entry) => entry.resolve(String(data["status"])));
        break;
      case "ERROR": {
        const error = new ControlError(String(data["code"]), String(data["message"]));
        if (data["seq"] !== undefined && data["seq"] !== null) this.settle(Number(data["seq"]), (entry) => entry.reject(error));
        break;
      }
      case "FORCE_STOP":
        this.status = "UPLOADING";
        this.onCommand({ type: "FORCE_STOP", detail: String(data["reason"] ?? "requested") });
        break;
      case "SESSION_EXPIRED":
      case "SESSION_CLOSED":
        this.end({ type: message.type, detail: String(data["status"] ?? "") });
        break;
      default:
        break; // UPLOAD_READY and anything newer: the browser uploads with its session, not the ticket
    }
  }

  private settle(seq: number, how: (entry: Pending) => void): void {
    const entry = this.pending.get(seq);
    if (!entry) return;
    this.pending.delete(seq);
    how(entry);
    this.watchSilence();
  }

  private end(command: Command): void {
    this.onCommand(command);
    this.close();
  }

  /** Expect word from the server while connecting or while messages wait for their ACK; none means reconnect. */
  private watchSilence(): void {
    window.clearTimeout(this.silence);
    const waiting = this.live === null || this.pending.size > 0;
    if (this.over || !waiting) return;
    this.silence = window.setTimeout(() => this.replace(), SILENCE_MS);
  }

  private replace(): void {
    const ws = this.ws;
    if (!ws || this.over) return;
    this.ws = null;
    this.live = null;
    ws.close();
    this.reconnectLater();
  }

  /** The network is back: a socket that outlived the outage may be dead without knowing it; start afresh. */
  private readonly onOnline = (): void => {
    if (this.over) return;
    window.clearTimeout(this.retry);
    if (this.ws) this.replace();
    else this.reconnectLater(0);
  };

  private reconnectLater(delay?: number): void {
    window.clearTimeout(this.silence);
    window.clearTimeout(this.retry);
    this.onConnected(false);
    const base = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)] ?? BACKOFF_CAP_MS;
    this.attempt += 1;
    const wait = delay ?? Math.min(BACKOFF_CAP_MS, base * (0.75 + Math.random() / 2));
    this.retry = window.setTimeout(() => void this.refreshAndConnect(), wait);
  }

  /** A fresh ws_url (the ticket in the old one may have expired), then connect; ends when there is no session. */
  private async refreshAndConnect(): Promise<void> {
    try {
      const recording = await api<{ status: string; ws_url: string | null }>(`/api/v1/recordings/${this.recordingId}`);
      if (this.over) return;
      if (!recording.ws_url) {
        this.status = recording.status;
        return this.end({ type: "STOPPED_WHILE_AWAY", detail: recording.status });
      }
      this.url = recording.ws_url;
    } catch (error) {
      if (this.over) return;
      if (error instanceof ApiError && error.status === 404) return this.end({ type: "SESSION_CLOSED", detail: "DELETED" });
      // Unreachable or unwell (or signed out: the old ticket may still work): try the old URL.
    }
    this.connect();
  }
}
