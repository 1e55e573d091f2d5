// The top-level boxes of an MP4 byte stream (ISO/IEC 14496-12) that arrives in pieces of any size, as MediaRecorder
// hands it over: each box comes out once all of it is here, whatever the pieces were. Only box headers are read
// (size and type); a 64-bit size is taken, and a size of 0 (to the end of the stream) is whole when the stream ends.

export interface Box {
  type: string;
  /** The whole box, its header included. */
  bytes: Uint8Array<ArrayBuffer>;
}

/** The bytes are not an MP4 stream (a header that cannot be one, or a box cut off at the end). */
export class BoxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BoxError";
  }
}

const HEADER = 8;
const LARGE_HEADER = 16;

export class BoxSplitter {
  /** Bytes taken so far: the next box starts at this offset in the stream. */
  private offset = 0;
  /** What has arrived of the next box (and maybe those after it), in the pieces it came in. */
  private pieces: Uint8Array[] = [];
  private waiting = 0;
  /** The next box's size, once its header is here. */
  private size: number | null = null;

  /** Take the next piece of the stream; returns the boxes it completed, in order. Every byte is copied once. */
  push(piece: Uint8Array): Box[] {
    if (piece.length > 0) {
      this.pieces.push(piece);
      this.waiting += piece.length;
    }
    const boxes: Box[] = [];
    for (;;) {
      this.size ??= this.sizeOfNext(false);
      if (this.size === null || this.waiting < this.size) return boxes;
      boxes.push(this.take(this.size));
    }
  }

  /** The stream is over: the last box if it runs to the end (size 0); anything else left over is an error. */
  end(): Box[] {
    if (this.waiting === 0) return [];
    this.size ??= this.sizeOfNext(true);
    if (this.size !== this.waiting) throw new BoxError(`the stream ends inside a box at byte ${this.offset}`);
    return [this.take(this.size)];
  }

  private take(size: number): Box {
    const bytes = takeBytes(this.pieces, size);
    this.waiting -= size;
    this.offset += size;
    this.size = null;
    return { type: typeAt(bytes, 0), bytes };
  }

  /** The first `count` bytes waiting (fewer when fewer are here). */
  private peek(count: number): Uint8Array {
    const head = new Uint8Array(Math.min(count, this.waiting));
    let filled = 0;
    for (const piece of this.pieces) {
      if (filled === head.length) break;
      const used = Math.min(piece.length, head.length - filled);
      head.set(piece.subarray(0, used), filled);
      filled += used;
    }
    return head;
  }

  /** The size of the next box, or null when its header is not all here yet (or it runs to the end of the stream
   * and the stream goes on). */
  private sizeOfNext(ended: boolean): number | null {
    const head = this.peek(LARGE_HEADER);
    if (head.length < HEADER) {
      if (ended) throw new BoxError(`${head.length} stray bytes at byte ${this.offset}`);
      return null;
    }
    const view = new DataView(head.buffer);
    for (let i = 4; i < HEADER; i += 1) {
      const code = view.getUint8(i);
      if (code < 0x20 || code > 0x7e) throw new BoxError(`no MP4 box at byte ${this.offset}`);
    }
    const small = view.getUint32(0);
    if (small === 0) return ended ? this.waiting : null;
    if (small !== 1) {
      if (small < HEADER) throw new BoxError(`a box at byte ${this.offset} claims ${small} bytes`);
      return small;
    }
    if (head.length < LARGE_HEADER) {
      if (ended) throw new BoxError(`a box header is cut off at byte ${this.offset}`);
      return null;
    }
    const large = view.getBigUint64(8);
    if (large < BigInt(LARGE_HEADER) || large > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new BoxError(`a box at byte ${this.offset} claims ${large} bytes`);
    }
    return Number(large);
  }
}

function typeAt(data: Uint8Array, at: number): string {
  return String.fromCharCode(data[at + 4] ?? 0, data[at + 5] ?? 0, data[at + 6] ?? 0, data[at + 7] ?? 0);
}

/** The boxes inside `bytes` from `start` to `end` (a container's payload): [type, payload start, box end] each. */
export function* children(bytes: Uint8Array, start: number, end: number): Generator<[string, number, number]> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  let at = start;
  while (end - at >= HEADER) {
    let size = view.getUint32(at);
    let body = at + HEADER;
    if (size === 1) {
      if (end - at < LARGE_HEADER) return;
      size = Number(view.getBigUint64(at + 8));
      body += 8;
    } else if (size === 0) {
      size = end - at;
    }
    if (size < body - at || at + size > end) return;
    yield [typeAt(bytes, at), body, at + size];
    at += size;
  }
}

/** The first `size` bytes of `pieces` (a stream as it arrived), in one piece; they are dropped from `pieces`. */
export function takeBytes(pieces: Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let filled = 0;
  while (filled < size) {
    const piece = pieces[0] as Uint8Array;
    const used = Math.min(piece.length, size - filled);
    bytes.set(used === piece.length ? piece : piece.subarray(0, used), filled);
    filled += used;
    if (used === piece.length) pieces.shift();
    else pieces[0] = piece.subarray(used);
  }
  return bytes;
}
