// Scrub thumbnails: the storyboard WebVTT maps stretches of time to tiles of a sprite (`storyboard.jpg#xywh=x,y,w,h`).

export interface Tile {
  start: number;
  end: number;
  image: string;
  x: number;
  y: number;
  width: number;
  height: number;
}

const CUE_TIMES = /^\s*((?:\d+:)?\d{1,2}:\d{2}\.\d{3})\s+-->\s+((?:\d+:)?\d{1,2}:\d{2}\.\d{3})/;
const XYWH = /#xywh=(\d+),(\d+),(\d+),(\d+)\s*$/;

/** Seconds of a WebVTT timestamp ("01:02.500" or "00:01:02.500"). */
function seconds(stamp: string): number {
  return stamp.split(":").reduce((total, part) => total * 60 + Number(part), 0);
}

/** The tiles of a storyboard track; image URIs are resolved against `base`, the track's own URL. */
export function parseStoryboard(text: string, base: string): Tile[] {
  const tiles: Tile[] = [];
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  for (let i = 0; i < lines.length; i += 1) {
    const times = CUE_TIMES.exec(lines[i] ?? "");
    const payload = lines[i + 1]?.trim();
    if (!times || !payload) continue;
    const box = XYWH.exec(payload);
    if (!box) continue;
    tiles.push({
      start: seconds(times[1] ?? "0"),
      end: seconds(times[2] ?? "0"),
      image: new URL(payload.slice(0, box.index), base).href,
      x: Number(box[1]),
      y: Number(box[2]),
      width: Number(box[3]),
      height: Number(box[4]),
    });
    i += 1;
  }
  return tiles;
}

/** The tile shown at `time`: the cue covering it, else the nearest one before it (cues are in order). */
export function tileAt(tiles: Tile[], time: number): Tile | null {
  let found: Tile | null = null;
  for (const tile of tiles) {
    if (tile.start > time) break;
    found = tile;
    if (time < tile.end) break;
  }
  return found ?? tiles[0] ?? null;
}

/** Loads a storyboard once, on first need, and warms the sprite so the first hover already shows a picture. */
export class Storyboard {
  private tiles: Tile[] = [];
  private loading: Promise<void> | null = null;

  constructor(private url: string | null) {}

  /** A new URL (fresh signature, or the storyboard was just published): forget the old tiles. */
  setUrl(url: string | null): void {
    if (url === this.url) return;
    const hadTiles = this.tiles.length > 0;
    this.url = url;
    this.loading = null;
    this.tiles = [];
    if (hadTiles) void this.load();
  }

  load(): Promise<void> {
    const url = this.url;
    if (!url) return Promise.resolve();
    this.loading ??= fetch(url)
      .then((response) => (response.ok ? response.text() : ""))
      .then((text) => {
        if (url !== this.url) return;
        this.tiles = parseStoryboard(text, url);
        const first = this.tiles[0];
        if (first) new Image().src = first.image;
      })
      .catch(() => {
        this.loading = null; // try again on the next hover
      });
    return this.loading;
  }

  at(time: number): Tile | null {
    return tileAt(this.tiles, time);
  }
}
