// MediaRecorder's fragmented MP4 cut into what the live segment API takes (docs/live.md): the init segment (ftyp +
// moov, sent once) and media segments of whole moof + mdat pairs, about two seconds each. Chromium's recorder writes
// a fragment per keyframe (every second at the interval we ask for), so consecutive fragments are grouped until a
// segment lasts long enough; a longer fragment is a segment on its own. Besides box headers, only the few fields
// that say how long a fragment plays are read: each track's time scale and defaults (moov) and its samples'
// durations (moof).

import { type Box, BoxError, children } from "./boxes";

/** A segment lasts at least this long (the last one excepted); two of Chromium's one-second fragments make one. */
export const MIN_SEGMENT_S = 1.8;
// However long it lasts, a segment is sent once it holds this much (the server takes up to 64 MiB).
const MAX_SEGMENT_BYTES = 16 * 1024 * 1024;
// Boxes a media segment may carry in front of a moof (docs/live.md).
const EXTRAS = new Set(["styp", "sidx", "prft", "emsg", "free", "skip"]);

/** The stream is an MP4 that is not fragmented (its media is one mdat, described at the end or the start): it
 * cannot go up as live segments, only whole. */
export class NotFragmented extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotFragmented";
  }
}

export interface Segment {
  index: number;
  bytes: Uint8Array<ArrayBuffer>;
  /** How long it plays, in seconds, as its main track's sample durations say (0 when they could not be read). */
  seconds: number;
}

interface Track {
  timescale: number;
  video: boolean;
  defaultDuration: number;
}

export class Segmenter {
  /** ftyp + moov, once they are here; null before. */
  init: Uint8Array<ArrayBuffer> | null = null;
  private head: Box[] = [];
  private tracks = new Map<number, Track>();
  private main: number | null = null; // the track that measures time: video, else the first
  private extras: Box[] = [];
  private moof: Box | null = null;
  private current: Uint8Array[] = [];
  private currentBytes = 0;
  private currentSeconds = 0;
  private next = 0;

  constructor(private readonly minSeconds = MIN_SEGMENT_S) {}

  /** Take the next boxes; returns the segments they completed. Throws NotFragmented for an MP4 that is not
   * fragmented (only ever before the init segment is complete), BoxError for one that is broken. */
  push(boxes: Box[]): Segment[] {
    const done: Segment[] = [];
    for (const box of boxes) {
      if (this.init === null) {
        this.takeHead(box);
        continue;
      }
      if (box.type === "moof") {
        if (this.moof) throw new BoxError("a moof box is not followed by its mdat");
        this.moof = box;
      } else if (box.type === "mdat") {
        if (!this.moof) throw new BoxError("an mdat box has no moof before it");
        const seconds = this.measure(this.moof.bytes);
        const fragment = [...this.extras.map((extra) => extra.bytes), this.moof.bytes, box.bytes];
        this.extras = [];
        this.moof = null;
        for (const part of fragment) {
          this.current.push(part);
          this.currentBytes += part.length;
        }
        // A fragment that cannot be measured closes its segment: better short segments than one that never ends.
        this.currentSeconds += seconds > 0 ? seconds : this.minSeconds;
        if (this.currentSeconds >= this.minSeconds || this.currentBytes >= MAX_SEGMENT_BYTES) done.push(this.close());
      } else if (EXTRAS.has(box.type)) {
        this.extras.push(box);
      }
      // Anything else at the top level (an mfra index at the very end) is not part of any segment.
    }
    return done;
  }

  /** The stream is over: the last segment, however short (or nothing). */
  end(): Segment[] {
    if (this.init === null) {
      if (this.head.length > 0) throw new NotFragmented("the recording has no moov box");
      return [];
    }
    if (this.moof) throw new BoxError("the recording ends with a moof box and no mdat");
    return this.current.length > 0 ? [this.close()] : [];
  }

  /** How many segments have come out so far. */
  get count(): number {
    return this.next;
  }

  private close(): Segment {
    const bytes = new Uint8Array(this.currentBytes);
    let at = 0;
    for (const part of this.current) {
      bytes.set(part, at);
      at += part.length;
    }
    const segment = { index: this.next, bytes, seconds: this.currentSeconds };
    this.next += 1;
    this.current = [];
    this.currentBytes = 0;
    this.currentSeconds = 0;
    return segment;
  }

  private takeHead(box: Box): void {
    if (box.type === "mdat" || box.type === "moof") {
      throw new NotFragmented(`the recording has its media (${box.type}) before a fragmented moov`);
    }
    if (this.head.length === 0 && box.type !== "ftyp") throw new NotFragmented(`the recording starts with ${box.type}, not ftyp`);
    this.head.push(box);
    if (box.type !== "moov") return;
    this.readMoov(box.bytes);
    const bytes = new Uint8Array(this.head.reduce((sum, part) => sum + part.bytes.length, 0));
    let at = 0;
    for (const part of this.head) {
      bytes.set(part.bytes, at);
      at += part.bytes.length;
    }
    this.init = bytes;
    this.head = [];
  }

  /** Each track's time scale and default sample duration; throws NotFragmented when the moov has no mvex. */
  private readMoov(moov: Uint8Array): void {
    const view = new DataView(moov.buffer, moov.byteOffset, moov.length);
    const defaults = new Map<number, number>();
    let fragmented = false;
    const found: [number, number, boolean][] = [];
    for (const [type, body, end] of children(moov, headerLength(view), moov.length)) {
      if (type === "mvex") {
        fragmented = true;
        for (const [inner, at, stop] of children(moov, body, end)) {
          if (inner === "trex" && stop - at >= 16) defaults.set(view.getUint32(at + 4), view.getUint32(at + 12));
        }
      } else if (type === "trak") {
        const track = readTrak(moov, view, body, end);
        if (track) found.push(track);
      }
    }
    if (!fragmented) throw new NotFragmented("the recording's moov box has no mvex: it is not fragmented");
    for (const [id, timescale, video] of found) {
      this.tracks.set(id, { timescale, video, defaultDuration: defaults.get(id) ?? 0 });
    }
    this.main = found.find(([, , video]) => video)?.[0] ?? found[0]?.[0] ?? null;
  }

  /** Seconds of the main track in a moof (or of any track it has, when the main one has no samples in it). */
  private measure(moof: Uint8Array): number {
    const view = new DataView(moof.buffer, moof.byteOffset, moof.length);
    const seconds = new Map<number, number>();
    for (const [type, body, end] of children(moof, headerLength(view), moof.length)) {
      if (type !== "traf") continue;
      const measured = measureTraf(moof, view, body, end, this.tracks);
      if (measured) seconds.set(measured[0], (seconds.get(measured[0]) ?? 0) + measured[1]);
    }
    if (this.main !== null && seconds.has(this.main)) return seconds.get(this.main) ?? 0;
    return seconds.values().next().value ?? 0;
  }
}

/** 8, or 16 for a box with a 64-bit size. */
function headerLength(view: DataView): number {
  return view.getUint32(0) === 1 ? 16 : 8;
}

/** [track id, time scale, is video] of an audio or video trak; null for other tracks. */
function readTrak(bytes: Uint8Array, view: DataView, start: number, end: number): [number, number, boolean] | null {
  let id: number | null = null;
  let timescale = 0;
  let handler = "";
  for (const [type, body, stop] of children(bytes, start, end)) {
    if (type === "tkhd" && stop - body >= 24) {
      id = view.getUint32(body + (view.getUint8(body) === 1 ? 20 : 12));
    } else if (type === "mdia") {
      for (const [inner, at, until] of children(bytes, body, stop)) {
        if (inner === "mdhd" && until - at >= 24) timescale = view.getUint32(at + (view.getUint8(at) === 1 ? 20 : 12));
        if (inner === "hdlr" && until - at >= 12) handler = String.fromCharCode(...bytes.subarray(at + 8, at + 12));
      }
    }
  }
  if (id === null || timescale === 0 || (handler !== "vide" && handler !== "soun")) return null;
  return [id, timescale, handler === "vide"];
}

// tfhd and trun flags (ISO/IEC 14496-12 8.8.7, 8.8.8).
const TFHD_BASE_OFFSET = 0x1;
const TFHD_DESCRIPTION = 0x2;
const TFHD_DURATION = 0x8;
const TRUN_DATA_OFFSET = 0x1;
const TRUN_FIRST_FLAGS = 0x4;
const TRUN_DURATION = 0x100;
const TRUN_SIZE = 0x200;
const TRUN_FLAGS = 0x400;
const TRUN_CTS = 0x800;

/** [track id, seconds] of a traf: the sum of its samples' durations. */
function measureTraf(bytes: Uint8Array, view: DataView, start: number, end: number, tracks: Map<number, Track>): [number, number] | null {
  let track: Track | undefined;
  let id = 0;
  let duration = 0;
  let ticks = 0;
  for (const [type, body, stop] of children(bytes, start, end)) {
    if (type === "tfhd" && stop - body >= 8) {
      const flags = view.getUint32(body) & 0xffffff;
      id = view.getUint32(body + 4);
      track = tracks.get(id);
      duration = track?.defaultDuration ?? 0;
      let at = body + 8;
      if (flags & TFHD_BASE_OFFSET) at += 8;
      if (flags & TFHD_DESCRIPTION) at += 4;
      if (flags & TFHD_DURATION && at + 4 <= stop) duration = view.getUint32(at);
    } else if (type === "trun" && track && stop - body >= 8) {
      const flags = view.getUint32(body) & 0xffffff;
      const count = view.getUint32(body + 4);
      if (!(flags & TRUN_DURATION)) {
        ticks += count * duration;
        continue;
      }
      let at = body + 8 + (flags & TRUN_DATA_OFFSET ? 4 : 0) + (flags & TRUN_FIRST_FLAGS ? 4 : 0);
      const step = [TRUN_DURATION, TRUN_SIZE, TRUN_FLAGS, TRUN_CTS].filter((bit) => flags & bit).length * 4;
      for (let sample = 0; sample < count && at + 4 <= stop; sample += 1, at += step) ticks += view.getUint32(at);
    }
  }
  return track ? [id, ticks / track.timescale] : null;
}
