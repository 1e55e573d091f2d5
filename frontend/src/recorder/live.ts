// Recordings go up as live segments (docs/live.md): MediaRecorder's stream is cut into an init segment and segments
// of about two seconds, and each is PUT as soon as it is whole, with its SHA-256 in Content-Digest. MP4 (Chromium
// 126+, Safari) is cut at its fragments (recorder/boxes.ts, recorder/segments.ts) and played as it is, with no
// transcode; WebM (Firefox) is cut at Clusters that start on a keyframe (recorder/webm.ts) and the server transcodes
// each segment as it arrives. The share link plays while recording; at stop the last segment goes up, the run is
// ended, and completion makes the recording READY at once, with no processing in between.
//
// The whole recording is one run: MediaRecorder's pause and resume keep one stream whose timestamps leave the pause
// out (checked in Chromium), so there is nothing for a discontinuity to mark.
//
// Nothing is lost to a network blip: a segment stays in memory until the server has acknowledged it, and requests
// are retried with backoff for as long as the page is open (at once when the browser says it is online again). A
// segment the server found damaged (400 segment_corrupt) is sent again as it was; a segment whose init segment the
// server does not have (409 init_missing) waits for the init segment to be sent again. If the MP4 turns out not to
// be fragmented or the WebM not to be WebM, nothing has been sent yet, and the recording goes up whole through tus
// instead; so does WebM whose codecs the server cannot transcode live (415 unsupported_media for the init segment),
// which is why WebM's chunks are kept until the server has taken its init segment.

import { type Answer, request } from "../api";
import { BoxError } from "./boxes";
import { NotFragmented, type Segment } from "./segments";
import type { Cutter, LiveFormat, Transport, TransportEvents } from "./transport";
import { OFFLINE, UploadRefused } from "./upload";
import { WebmError } from "./webm";

const RUN = 1;
const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000, 10_000, 15_000];
// A request that has not been answered in this time is presumed lost (a network that went away without saying).
const REQUEST_TIMEOUT_MS = 120_000;
// A segment the server keeps finding damaged is not damaged on the way: the recording itself is broken.
const CORRUPT_RESENDS = 3;
// Acknowledged segments are kept (up to this much, the newest) in case completion says the server lost one.
const RETAIN_BYTES = 64 * 1024 * 1024;
const COMPLETE_ROUNDS = 5;
// How long a cancel waits for a request on its way to be answered before abandoning it.
const QUIET_WAIT_MS = 5000;

interface Piece {
  /** null for the init segment */
  index: number | null;
  body: Blob;
  size: number;
  digest: Promise<string>;
  accepted: boolean;
}

interface LiveState {
  status: string;
  missing: { run: number; index: number | null }[];
  complete: boolean;
}

export class LiveTransport implements Transport {
  private recorded = 0;
  private sent = 0;
  private readonly base: string;
  private readonly cutter: Cutter;
  private reading: Promise<void> = Promise.resolve();
  /** The chunks as recorded, until the stream is known to go up as segments (then null): a fallback sends them. For
   * MP4 that is once the init segment is cut; for WebM once the server has taken it. */
  private held: Blob[] | null = [];
  private fallback: Transport | null = null;
  private init: Piece | null = null;
  private readonly queue: Piece[] = [];
  private readonly retained = new Map<number, Piece>();
  private retainedBytes = 0;
  private busy = false;
  private inFlight: Promise<unknown> | null = null;
  private controller: AbortController | null = null;
  private waiters: { resolve(): void; reject(error: Error): void }[] = [];
  private refused: UploadRefused | null = null;
  private over = false;
  private troubled = false;
  private wake: (() => void) | null = null;
  private ending: Promise<void> | null = null;

  constructor(
    recordingId: string,
    private readonly events: TransportEvents,
    private readonly makeFallback: () => Transport,
    private readonly format: LiveFormat,
  ) {
    this.cutter = format.cutter;
    this.base = `/api/v1/recordings/${recordingId}/live`;
    window.addEventListener("online", this.onOnline);
  }

  get kind(): "live" | "tus" {
    return this.fallback ? this.fallback.kind : "live";
  }

  get captured(): number {
    return this.fallback ? this.fallback.captured : this.recorded;
  }

  get accepted(): number {
    return this.fallback ? this.fallback.accepted : this.sent;
  }

  push(chunk: Blob): void {
    if (this.over || chunk.size === 0) return;
    if (this.fallback) return this.fallback.push(chunk);
    this.recorded += chunk.size;
    this.held?.push(chunk);
    this.reading = this.reading.then(() => this.read(chunk));
  }

  end(): void {
    if (this.ending) return;
    this.ending = this.sendRest();
    this.ending.catch(() => undefined); // `finish` reports it
  }

  async finish(): Promise<void> {
    this.end();
    // Completion is declared while the last segment is on its way, so the server makes the link complete the moment
    // it lands. That answer may count what is still on its way as missing: it settles the matter only if it says
    // READY; otherwise completion is asked again below, once everything has been answered.
    const early =
      this.init?.accepted && !this.fallback
        ? this.post<LiveState>("complete", { runs: RUN }).catch(() => null) // a refusal is left to the rounds below
        : null;
    await this.ending;
    if (this.fallback) return this.fallback.finish();
    const first = await early;
    if (first && (first.complete || first.status === "READY")) return this.completed();
    for (let round = 0; ; round += 1) {
      const state = await this.post<LiveState>("complete", { runs: RUN });
      if (state.complete || state.status === "READY") return this.completed();
      if (round >= COMPLETE_ROUNDS) {
        const what = state.missing.length > 0 ? `: it is missing ${describe(state.missing)}` : "";
        throw new UploadRefused(`The server did not complete the recording${what}.`);
      }
      const missing = state.missing.filter((gap) => gap.run === RUN);
      if (missing.length === 0) {
        await this.pause(delay(round)); // nothing missing, not complete yet: the last segment is being stored
        continue;
      }
      for (const gap of missing) {
        const piece = gap.index === null ? this.init : (this.retained.get(gap.index) ?? null);
        if (!piece) throw new UploadRefused("The server lost part of the recording that this tab no longer holds.");
        this.queue.push(piece);
      }
      void this.pump();
      await this.drained();
      if (missing.some((gap) => gap.index === null)) await this.post(`${RUN}/end`, { segments: this.cutter.count });
    }
  }

  private completed(): void {
    window.removeEventListener("online", this.onOnline);
    this.retained.clear();
    this.clear();
  }

  async discard(): Promise<void> {
    if (this.fallback) return this.fallback.discard();
    this.over = true;
    window.removeEventListener("online", this.onOnline);
    this.wake?.();
    this.queue.length = 0;
    this.retained.clear();
    this.held = null;
    // A request already on its way is let finish, so nothing lands after the server has been told to drop it all.
    const flying = this.inFlight;
    if (flying) {
      let timer = 0;
      await Promise.race([flying, new Promise<void>((resolve) => (timer = window.setTimeout(resolve, QUIET_WAIT_MS)))]);
      window.clearTimeout(timer);
    }
    this.controller?.abort();
    this.settle();
  }

  // -- cutting the stream -----------------------------------------------------------------------------------------

  private async read(chunk: Blob): Promise<void> {
    if (this.fallback || this.refused || this.over) return;
    try {
      const bytes = new Uint8Array(await chunk.arrayBuffer());
      this.take(this.cutter.push(bytes));
    } catch (error) {
      this.broken(error);
    }
  }

  /** Queue the init segment (once it is whole) and the segments that are. */
  private take(segments: Segment[]): void {
    const type = this.format.contentType;
    if (this.init === null && this.cutter.init !== null) {
      if (!this.format.transcoded) this.held = null; // fragmented MP4: from here on the segments are what goes up
      this.init = piece(null, this.cutter.init, type);
      this.queue.push(this.init);
    }
    for (const segment of segments) this.queue.push(piece(segment.index, segment.bytes, type));
    void this.pump();
  }

  private broken(error: unknown): void {
    const uncut = error instanceof NotFragmented || error instanceof BoxError || error instanceof WebmError;
    if (this.held && this.init === null && uncut) return this.goWhole(this.held);
    const message = error instanceof Error ? error.message : String(error);
    this.refuse(new UploadRefused(`The browser's recording could not be cut into segments (${message}).`));
  }

  /** Nothing has gone up as segments: the recording goes up whole instead, to be processed after stop. */
  private goWhole(held: Blob[]): void {
    this.held = null;
    this.queue.length = 0;
    this.clear();
    window.removeEventListener("online", this.onOnline);
    this.fallback = this.makeFallback();
    for (const chunk of held) this.fallback.push(chunk);
  }

  /** The recorder has stopped: the last segment and the run's end. */
  private async sendRest(): Promise<void> {
    await this.reading;
    if (!this.fallback && !this.refused && !this.over) {
      try {
        this.take(this.cutter.end());
      } catch (error) {
        this.broken(error);
      }
    }
    if (!this.fallback && this.init?.accepted && this.cutter.count > 0) {
      // The server takes the recording as segments: the run's end goes with its last ones, not after them (the server
      // waits for them all the same).
      const ended = this.post(`${RUN}/end`, { segments: this.cutter.count });
      ended.catch(() => undefined); // awaited below, once the segments are in
      await this.drained();
      await ended;
      return;
    }
    if (!this.fallback) await this.drained();
    if (this.fallback) return this.fallback.end(); // also when the server has refused the codecs meanwhile
    if (this.init === null || this.cutter.count === 0) throw new UploadRefused("The browser recorded nothing that can be played.");
    await this.post(`${RUN}/end`, { segments: this.cutter.count });
  }

  // -- sending ----------------------------------------------------------------------------------------------------

  /** Send what is queued, in order, one request at a time. */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (this.queue.length > 0 && !this.over && !this.refused) {
        const next = this.queue[0] as Piece;
        if (!(await this.deliver(next))) break;
        this.queue.shift();
      }
    } finally {
      this.busy = false;
    }
    this.settle();
  }

  /** PUT one piece until the server has it: true then, false when the server refused it or the upload is over. */
  private async deliver(piece: Piece): Promise<boolean> {
    const path = `${this.base}/${RUN}/${piece.index ?? "init"}`;
    let corrupt = 0;
    for (let attempt = 0; !this.over; attempt += 1) {
      const headers = { "Content-Type": this.format.contentType, "Content-Digest": await piece.digest };
      const answer = await this.send(path, { method: "PUT", body: piece.body, headers });
      if (this.over) return false;
      if (answer && answer.status >= 200 && answer.status < 300) {
        this.accept(piece);
        return true;
      }
      if (answer?.code === "segment_corrupt" && corrupt < CORRUPT_RESENDS) {
        corrupt += 1; // damaged on the way: the same bytes again
        continue;
      }
      if (answer?.code === "unsupported_media" && piece.index === null && this.held) {
        this.goWhole(this.held); // the server cannot transcode these codecs as they arrive
        return false;
      }
      if (answer?.code === "init_missing" && piece.index !== null && this.init) {
        if (!(await this.deliver(this.init))) return false;
        continue;
      }
      if (answer === null || retriable(answer.status)) {
        if (answer === null) this.trouble(OFFLINE);
        await this.pause(delay(attempt));
        continue;
      }
      this.refuse(new UploadRefused(`The server refused the recording: ${answer.message}`));
      return false;
    }
    return false;
  }

  /** POST to the live API until it answers; rejects with UploadRefused when it refuses. */
  private async post<T>(path: string, json: unknown): Promise<T> {
    for (let attempt = 0; ; attempt += 1) {
      if (this.over) throw new UploadRefused("The recording was discarded.");
      const answer = await this.send<T>(`${this.base}/${path}`, { method: "POST", json });
      if (answer && answer.status >= 200 && answer.status < 300 && answer.data !== null) {
        this.clear();
        return answer.data;
      }
      if (answer && !retriable(answer.status)) throw new UploadRefused(`The server refused the recording: ${answer.message}`);
      if (answer === null) this.trouble(OFFLINE);
      await this.pause(delay(attempt));
    }
  }

  /** One request, abandoned when it takes too long or the upload is discarded. */
  private async send<T>(path: string, init: Parameters<typeof request>[1]): Promise<Answer<T> | null> {
    const controller = new AbortController();
    const timer = window.setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    this.controller = controller;
    const answer = request<T>(path, { ...init, signal: controller.signal });
    this.inFlight = answer;
    try {
      return await answer;
    } finally {
      window.clearTimeout(timer);
      if (this.inFlight === answer) this.inFlight = null;
    }
  }

  private accept(piece: Piece): void {
    this.clear();
    if (piece.accepted) return;
    piece.accepted = true;
    this.sent += piece.size;
    if (piece.index === null) {
      this.held = null; // the server takes the recording as segments
    } else {
      this.retained.set(piece.index, piece);
      this.retainedBytes += piece.size;
      for (const [index, old] of this.retained) {
        if (this.retainedBytes <= RETAIN_BYTES) break;
        this.retained.delete(index);
        this.retainedBytes -= old.size;
      }
    }
    this.events.progress(this.sent, this.recorded);
  }

  /** Resolves once everything queued is acknowledged; rejects once the server has refused something. */
  private drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.settle();
    });
  }

  private settle(): void {
    const error = this.refused ?? (this.over ? new UploadRefused("The recording was discarded.") : null);
    if (!error && (this.busy || this.queue.length > 0)) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) {
      if (error) waiter.reject(error);
      else waiter.resolve();
    }
  }

  private refuse(error: UploadRefused): void {
    if (this.refused) return;
    this.refused = error;
    this.events.trouble(error.message);
    this.settle();
  }

  private trouble(message: string): void {
    this.troubled = true;
    this.events.trouble(message);
  }

  private clear(): void {
    if (!this.troubled) return;
    this.troubled = false;
    this.events.trouble(null);
  }

  /** Wait before retrying; cut short when the browser comes back online or the upload is discarded. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        window.clearTimeout(timer);
        if (this.wake === done) this.wake = null;
        resolve();
      };
      const timer = window.setTimeout(done, ms);
      this.wake = done;
    });
  }

  private readonly onOnline = (): void => {
    this.wake?.();
  };
}

function piece(index: number | null, bytes: Uint8Array<ArrayBuffer>, type: string): Piece {
  // The digest is taken from the bytes now; afterwards only the Blob is kept (the browser may keep it on disk).
  const digest = crypto.subtle.digest("SHA-256", bytes).then((hash) => `sha-256=:${base64(new Uint8Array(hash))}:`);
  return { index, body: new Blob([bytes], { type }), size: bytes.length, digest, accepted: false };
}

/** Worth another try: no answer, a server error, a lock, too many requests, a timeout. */
function retriable(status: number): boolean {
  return status >= 500 || status === 408 || status === 423 || status === 429;
}

function delay(attempt: number): number {
  const base = RETRY_DELAYS_MS[Math.min(attempt, RETRY_DELAYS_MS.length - 1)] ?? 15_000;
  return base * (0.75 + Math.random() / 2);
}

function describe(missing: { run: number; index: number | null }[]): string {
  return missing
    .slice(0, 5)
    .map((gap) => (gap.index === null ? `run ${gap.run}` : `segment ${gap.index}`))
    .join(", ");
}

function base64(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text);
}
