// MediaRecorder's WebM cut into what the live segment API takes for WebM (docs/live.md): the header (every byte
// before the first Cluster) once, then segments of whole, consecutive Clusters exactly as recorded, about two seconds
// each. A segment after the first starts on a Cluster whose first video block is a keyframe, since the server
// transcodes each segment on its own; in a recording without video any Cluster will do. Only element headers are
// read, and of their bodies only the time scale, the tracks' numbers and types, Cluster timecodes and each block's
// first bytes (track, time, keyframe flag).
//
// Hand-written: the npm EBML parsers (ebml, ts-ebml) decode whole element trees through Node's Buffer and events,
// and none cuts a live stream at Cluster and keyframe boundaries as it arrives, in pieces that split elements
// anywhere, with the unknown sizes MediaRecorder writes.

import { takeBytes } from "./boxes";
import { MIN_SEGMENT_S, type Segment } from "./segments";

// However long it lasts, a segment is sent once it holds this much (at its next cut point).
const MAX_SEGMENT_BYTES = 16 * 1024 * 1024;
const DEFAULT_TIMECODE_SCALE = 1_000_000; // ns per timecode unit

// Element IDs (Matroska), and the values read from them.
const EBML = 0x1a45dfa3;
const SEGMENT = 0x18538067;
const INFO = 0x1549a966, TIMECODE_SCALE = 0x2ad7b1;
const TRACKS = 0x1654ae6b, TRACK_ENTRY = 0xae, TRACK_NUMBER = 0xd7, TRACK_TYPE = 0x83, VIDEO_TRACK = 1;
const CLUSTER = 0x1f43b675, TIMECODE = 0xe7, SIMPLE_BLOCK = 0xa3, BLOCK_GROUP = 0xa0, BLOCK = 0xa1, REFERENCE_BLOCK = 0xfb;
const KEYFRAME = 0x80; // in a SimpleBlock's flags
// A Cluster of unknown size (as MediaRecorder writes them) ends where one of these Segment children begins.
const SEGMENT_CHILDREN = new Set([CLUSTER, 0x1c53bb6b, 0x1254c367, 0x114d9b74, INFO, TRACKS, 0x1043a770, 0x1941a469]);
// [parent, child] pairs looked inside; every other element is passed over.
const CONTAINERS = new Set(
  [[0, SEGMENT], [SEGMENT, INFO], [SEGMENT, TRACKS], [SEGMENT, CLUSTER], [TRACKS, TRACK_ENTRY], [CLUSTER, BLOCK_GROUP]].map(
    ([parent, child]) => pair(parent as number, child as number),
  ),
);
// [parent, child] pairs whose first bytes are read (how many at most): an unsigned integer, or a block's track
// number (up to 8 bytes), time (2) and flags (1).
const READ = new Map([
  [pair(INFO, TIMECODE_SCALE), 8],
  [pair(TRACK_ENTRY, TRACK_NUMBER), 8],
  [pair(TRACK_ENTRY, TRACK_TYPE), 8],
  [pair(CLUSTER, TIMECODE), 8],
  [pair(CLUSTER, SIMPLE_BLOCK), 11],
  [pair(BLOCK_GROUP, BLOCK), 11],
  [pair(BLOCK_GROUP, REFERENCE_BLOCK), 0],
]);

/** The bytes are not a WebM stream that can be cut (not EBML, an element that cannot be, a stream cut off). */
export class WebmError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "WebmError";
  }
}

interface Open {
  id: number;
  /** Where it ends in the stream; null for an unknown size (up to the next Segment child, or the stream's end). */
  end: number | null;
}

interface Cluster {
  start: number;
  time: number | null;
  /** Whether it was judged as a cut point yet (at its first video block, or first block without video). */
  judged: boolean;
}

export class WebmCutter {
  /** Every byte before the first Cluster, once it is here; null before. */
  init: Uint8Array<ArrayBuffer> | null = null;
  /** The stream from `kept` on (what is not cut off yet), in the pieces it came in. */
  private pieces: Uint8Array[] = [];
  private kept = 0;
  /** Bytes that arrived and are not parsed yet; they start at `pos` in the stream. */
  private buffer: Uint8Array = new Uint8Array(0);
  private pos = 0;
  /** Bytes of an element's body still to pass over. */
  private skip = 0;
  private readonly open: Open[] = [];
  private started = false;
  private scale = DEFAULT_TIMECODE_SCALE;
  private tracksRead = false;
  private video: number | null = null;
  private entry = { number: 0, type: 0 };
  private group = { track: -1, time: 0, referenced: false };
  private cluster: Cluster | null = null;
  /** Timecode of the current segment's first Cluster, and the latest block time in it. */
  private segmentTime: number | null = null;
  private latest = 0;
  private next = 0;

  constructor(private readonly minSeconds = MIN_SEGMENT_S) {}

  /** Take the next bytes; returns the segments they completed. Throws WebmError for a stream that is not WebM. */
  push(bytes: Uint8Array): Segment[] {
    const done: Segment[] = [];
    if (bytes.length === 0) return done;
    this.pieces.push(bytes);
    let buffer = bytes;
    if (this.buffer.length > 0) {
      buffer = new Uint8Array(this.buffer.length + bytes.length);
      buffer.set(this.buffer);
      buffer.set(bytes, this.buffer.length);
    }
    this.buffer = buffer;
    let at = 0;
    for (;;) {
      const passed = Math.min(this.skip, buffer.length - at);
      this.skip -= passed;
      at += passed;
      this.pos += passed;
      if (this.skip > 0) break;
      this.closeEnded(done);
      const used = this.step(at, done);
      if (used === 0) break;
      at += used;
      this.pos += used;
    }
    this.buffer = buffer.slice(at); // a few bytes at most: an element header and what is read of its body
    return done;
  }

  /** The stream is over: the last segment, however short. */
  end(): Segment[] {
    if (this.skip > 0 || this.buffer.length > 0 || this.open.some((open) => open.end !== null && open.end > this.pos)) {
      throw new WebmError(`the recording ends inside an element at byte ${this.pos}`);
    }
    // Elements of a known size were closed as their last byte came: what is open is of unknown size, and ends here.
    if (this.init === null) {
      if (this.pos > 0) throw new WebmError("the recording has no Cluster");
      return [];
    }
    return [this.cut(this.pos, this.seconds(this.latest))];
  }

  /** How many segments have come out so far. */
  get count(): number {
    return this.next;
  }

  /** Take the element starting at `at` in the buffer: how many bytes were used (0: more must arrive first). */
  private step(at: number, done: Segment[]): number {
    const head = readHeader(this.buffer, at, this.pos);
    if (!head) return 0;
    const { id, length, size } = head;
    let top = this.open.at(-1);
    if (top?.id === CLUSTER && top.end === null && SEGMENT_CHILDREN.has(id)) {
      this.close(done);
      top = this.open.at(-1);
    }
    if (top?.end != null && this.pos + length + (size ?? 0) > top.end) {
      throw new WebmError(`an element at byte ${this.pos} runs past the end of its parent`);
    }
    if (!top && !this.started && id !== EBML) throw new WebmError("the recording is not WebM: it does not start with EBML");
    if (!top && this.started && id === EBML) throw new WebmError(`a second WebM stream starts at byte ${this.pos}`);
    this.started = true;
    const where = pair(top?.id ?? 0, id);
    if (CONTAINERS.has(where)) {
      if (size === null && id !== SEGMENT && id !== CLUSTER) throw new WebmError(`an element at byte ${this.pos} has an unknown size`);
      if (id === CLUSTER) this.startCluster();
      this.open.push({ id, end: size === null ? null : this.pos + length + size });
      return length;
    }
    if (size === null) throw new WebmError(`an element at byte ${this.pos} has an unknown size`);
    const wanted = READ.get(where);
    const read = Math.min(size, wanted ?? 0);
    if (this.buffer.length - at < length + read) return 0;
    if (wanted !== undefined) this.read(id, this.buffer.subarray(at + length, at + length + read), done);
    this.skip = size - read;
    return length + read;
  }

  private read(id: number, body: Uint8Array, done: Segment[]): void {
    if (id === TIMECODE_SCALE) this.scale = uint(body) || DEFAULT_TIMECODE_SCALE;
    else if (id === TRACK_NUMBER) this.entry.number = uint(body);
    else if (id === TRACK_TYPE) this.entry.type = uint(body);
    else if (id === TIMECODE && this.cluster) {
      this.cluster.time = uint(body);
      this.segmentTime ??= this.cluster.time;
    } else if (id === REFERENCE_BLOCK) this.group.referenced = true;
    else {
      const [track, time, flags] = blockHead(body, this.pos);
      if (id === SIMPLE_BLOCK) this.block(track, time, (flags & KEYFRAME) !== 0, done);
      else this.group = { ...this.group, track, time };
    }
  }

  /** The element on top has ended. */
  private close(done: Segment[]): void {
    const { id } = this.open.pop() as Open;
    if (id === TRACK_ENTRY) {
      if (this.entry.type === VIDEO_TRACK) this.video ??= this.entry.number;
      this.entry = { number: 0, type: 0 };
    } else if (id === TRACKS) {
      this.tracksRead = true;
    } else if (id === BLOCK_GROUP) {
      if (this.group.track >= 0) this.block(this.group.track, this.group.time, !this.group.referenced, done);
      this.group = { track: -1, time: 0, referenced: false };
    }
  }

  private closeEnded(done: Segment[]): void {
    for (let top = this.open.at(-1); top?.end != null && top.end <= this.pos; top = this.open.at(-1)) this.close(done);
  }

  private startCluster(): void {
    if (!this.tracksRead) throw new WebmError("the recording has a Cluster before its Tracks");
    const first = this.init === null;
    if (first) this.init = this.take(this.pos);
    this.cluster = { start: this.pos, time: null, judged: first };
  }

  /** A block of `track` at `time` (relative to its Cluster): the Cluster's first video block decides whether a
   * segment may end before it. */
  private block(track: number, time: number, keyframe: boolean, done: Segment[]): void {
    const cluster = this.cluster;
    if (!cluster || cluster.time === null) throw new WebmError(`a block at byte ${this.pos} comes before its Cluster's Timecode`);
    this.latest = Math.max(this.latest, cluster.time + time);
    if (cluster.judged || (this.video !== null && track !== this.video)) return;
    cluster.judged = true;
    if (this.video !== null && !keyframe) return;
    const seconds = this.seconds(cluster.time);
    if (seconds < this.minSeconds && cluster.start - this.kept < MAX_SEGMENT_BYTES) return;
    done.push(this.cut(cluster.start, seconds));
    this.segmentTime = cluster.time;
  }

  private seconds(time: number): number {
    return ((time - (this.segmentTime ?? time)) * this.scale) / 1e9;
  }

  private cut(end: number, seconds: number): Segment {
    const segment = { index: this.next, bytes: this.take(end), seconds };
    this.next += 1;
    return segment;
  }

  /** The stream from `kept` up to `end`, in one piece; it is dropped from `pieces`. */
  private take(end: number): Uint8Array<ArrayBuffer> {
    const bytes = takeBytes(this.pieces, end - this.kept);
    this.kept = end;
    return bytes;
  }
}

/** The element header at `at`: its ID, its length and its body's size (null: unknown); null when not all here. */
function readHeader(bytes: Uint8Array, at: number, where: number): { id: number; length: number; size: number | null } | null {
  if (at >= bytes.length) return null;
  const idLength = Math.clz32(bytes[at] as number) - 23;
  if (idLength > 4) throw new WebmError(`no EBML element at byte ${where}`);
  if (at + idLength >= bytes.length) return null;
  const sizeLength = Math.clz32(bytes[at + idLength] as number) - 23;
  if (sizeLength > 8) throw new WebmError(`an element at byte ${where} has no valid size`);
  if (at + idLength + sizeLength > bytes.length) return null;
  const id = uint(bytes.subarray(at, at + idLength));
  const mask = 0xff >> sizeLength;
  let size = (bytes[at + idLength] as number) & mask;
  let unknown = size === mask;
  for (const byte of bytes.subarray(at + idLength + 1, at + idLength + sizeLength)) {
    size = size * 256 + byte;
    unknown &&= byte === 0xff;
  }
  if (!unknown && size > Number.MAX_SAFE_INTEGER) throw new WebmError(`an element at byte ${where} claims ${size} bytes`);
  return { id, length: idLength + sizeLength, size: unknown ? null : size };
}

/** A (Simple)Block's track number, time relative to its Cluster and flags. */
function blockHead(body: Uint8Array, where: number): [number, number, number] {
  const length = body.length > 0 ? Math.clz32(body[0] as number) - 23 : 9;
  if (length > 8 || body.length < length + 3) throw new WebmError(`a block at byte ${where} is too short`);
  const track = uint(body.subarray(0, length)) - 2 ** (7 * length);
  const view = new DataView(body.buffer, body.byteOffset + length, 3);
  return [track, view.getInt16(0), view.getUint8(2)];
}

function pair(parent: number, child: number): string {
  return `${parent}:${child}`;
}

function uint(bytes: Uint8Array): number {
  let value = 0;
  for (const byte of bytes) value = value * 256 + byte;
  return value;
}
