// How a recording's bytes reach the server while it is being made. Both formats go up as live segments
// (recorder/live.ts, docs/live.md), so the share link plays while recording and is complete the moment the last
// segment lands: MP4 (Chromium 126+, Safari) as fMP4 segments played as they are, with no transcode; WebM (Firefox)
// as WebM segments the server transcodes as they arrive. A page that cannot hash (no secure context), MP4 that is
// not fragmented, and WebM the server cannot transcode live go up whole through tus (recorder/upload.ts) and are
// processed after stop.

import { BoxSplitter } from "./boxes";
import { LiveTransport } from "./live";
import { fileName } from "./media";
import { type Segment, Segmenter } from "./segments";
import { TusTransport } from "./upload";
import { WebmCutter } from "./webm";

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

/** Cuts the stream as it arrives into the run's init segment and its media segments. */
export interface Cutter {
  /** The init segment once it is whole; null before. */
  readonly init: Uint8Array<ArrayBuffer> | null;
  /** How many segments have come out so far. */
  readonly count: number;
  /** Take the next bytes; returns the segments they completed. */
  push(bytes: Uint8Array): Segment[];
  /** The stream is over: the segments still in it. */
  end(): Segment[];
}

/** How a recording goes up as live segments. */
export interface LiveFormat {
  cutter: Cutter;
  /** The Content-Type of every PUT. */
  contentType: string;
  /** The server transcodes the segments and may refuse the codecs when the init segment comes: until it has taken
   * the init segment, the recording may still have to go up whole. */
  transcoded: boolean;
}

/** Live segments where the page can hash them (a secure context), tus otherwise. */
export function createTransport(recordingId: string, mimeType: string, events: TransportEvents): Transport {
  const tus = (): Transport => new TusTransport(recordingId, fileName(mimeType), events);
  const [, kind, container] = /^(video|audio)\/(mp4|webm)/.exec(mimeType) ?? [];
  if (!kind || !container || typeof crypto === "undefined" || !crypto.subtle) return tus();
  const format: LiveFormat =
    container === "mp4"
      ? { cutter: new Mp4Cutter(), contentType: "video/mp4", transcoded: false } // audio too: the server reads the bytes
      : { cutter: new WebmCutter(), contentType: `${kind}/webm`, transcoded: true };
  return new LiveTransport(recordingId, events, tus, format);
}

/** MediaRecorder's fragmented MP4: top-level boxes (recorder/boxes.ts) grouped into segments (recorder/segments.ts). */
class Mp4Cutter implements Cutter {
  private readonly boxes = new BoxSplitter();
  private readonly segmenter = new Segmenter();

  get init(): Uint8Array<ArrayBuffer> | null {
    return this.segmenter.init;
  }

  get count(): number {
    return this.segmenter.count;
  }

  push(bytes: Uint8Array): Segment[] {
    return this.segmenter.push(this.boxes.push(bytes));
  }

  end(): Segment[] {
    return [...this.segmenter.push(this.boxes.end()), ...this.segmenter.end()];
  }
}
