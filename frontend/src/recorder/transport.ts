// How a recording's bytes reach the server while it is being made. MP4 goes up as live segments (recorder/live.ts,
// docs/live.md): the share link plays while recording and is complete the moment the last segment lands. WebM
// (Firefox), and MP4 that turns out not to be fragmented, goes up whole through tus (recorder/upload.ts) and is
// processed after stop.

import { LiveTransport } from "./live";
import { fileName } from "./media";
import { TusTransport } from "./upload";

export interface TransportEvents {
  /** Bytes the server holds, of the bytes recorded so far. */
  progress(accepted: number, captured: number): void;
  /** Null once requests go through again; otherwise a sentence about the trouble (uploading is being retried). */
  trouble(message: string | null): void;
}

export interface Transport {
  /** "live" (segments) or "tus" (one upload). */
  readonly kind: "live" | "tus";
  /** Bytes MediaRecorder has handed over. */
  readonly captured: number;
  /** Bytes the server has acknowledged. */
  readonly accepted: number;
  /** Queue a chunk of the recording; it stays in memory until the server has it. */
  push(chunk: Blob): void;
  /** No more chunks (the recorder has stopped): what is left goes up. */
  end(): void;
  /** After `end()` and the server's stop acknowledgement: resolves once the server holds everything and the
   * recording is complete; rejects with UploadRefused (a sentence) when the server will not take it. */
  finish(): Promise<void>;
  /** Stop sending and drop everything (a cancelled recording); resolves once no request is on its way. */
  discard(): Promise<void>;
}

/** Live segments for MP4 where the page can hash them (a secure context), tus otherwise. */
export function createTransport(recordingId: string, mimeType: string, events: TransportEvents): Transport {
  const tus = (): Transport => new TusTransport(recordingId, fileName(mimeType), events);
  const mp4 = /^(video|audio)\/mp4/.test(mimeType);
  if (!mp4 || typeof crypto === "undefined" || !crypto.subtle) return tus();
  return new LiveTransport(recordingId, events, tus);
}
