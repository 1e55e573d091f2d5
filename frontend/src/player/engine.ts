// What feeds the <video>: hls.js over Media Source Extensions where the browser has them, else the browser's own HLS
// (Safari on iOS). Both answer the same small interface, so the controls never ask which one runs.
//
// A recording watched while it is recorded is an EVENT playlist that grows (docs/live.md): it starts near its newest
// segment, like a live stream, yet keeps everything from the start, so the seek bar covers all that has arrived.
//
// The light build of hls.js leaves out alternate audio, HLS subtitles, DRM, CMCD and interstitials: framecast's
// master playlists list muxed CMAF renditions only, and captions come as <track> elements, so none of it is needed.
import Hls, { ErrorDetails, ErrorTypes, Events } from "hls.js/light";

export interface Level {
  index: number;
  height: number;
}

export interface EngineEvents {
  /** The renditions changed (a manifest was parsed); empty when the engine cannot list them. */
  levels(levels: Level[]): void;
  /** The rendition being played changed. */
  switched(height: number): void;
  /** Whether the playlist is live (still growing); told when that changes, e.g. false once it gets its end. */
  live(live: boolean): void;
  /** The media URLs were refused (they are signed and expire): fetch fresh ones and `load` again. */
  expired(): void;
  failed(message: string): void;
}

/** Where to pick up after a reload: the time and whether it was playing. */
export interface Resume {
  time: number;
  paused: boolean;
}

export interface Engine {
  load(url: string, resume?: Resume): void;
  readonly levels: Level[];
  /** The chosen rendition's index, or -1 for automatic switching. */
  readonly selected: number;
  select(index: number): void;
  /** Where a live playlist is watched live (a little before its newest segment); null when it is not live. */
  readonly liveEdge: number | null;
  /** Buffer ahead only a little until the viewer presses play: most page views never do. */
  bufferAhead(full: boolean): void;
  destroy(): void;
}

// What the media route answers for an expired, tampered or foreign signed URL (docs/protocol.md, Media delivery).
const REFUSED = new Set([403, 404, 410]);

// Seconds to buffer ahead before the first play (the first segment: enough for the first frame and an instant start)
// and after it (hls.js's defaults). maxMaxBufferLength caps too, or hls.js would fill its 60 MB buffer budget at once.
const START_BUFFER = { maxBufferLength: 2, maxMaxBufferLength: 2 };
const PLAY_BUFFER = { maxBufferLength: 30, maxMaxBufferLength: 600 };
// A live playlist is joined this many segments (2 s each) before its newest one: close to the recording, with enough
// buffered to ride over the next segment arriving a little late. Every stall adds a second, up to one segment.
const LIVE_SYNC_SEGMENTS = 2;
// A live playlist without segments yet (only an init segment arrived) is an error to hls.js, which gives up after a
// few retries: it is asked again this much later, until segments come.
const EMPTY_RETRY_MS = 2000;
// The browser's own HLS has no sync position: live is this many seconds before the end of what it can seek to.
const NATIVE_LIVE_HOLD_BACK_S = 6;

export function createEngine(video: HTMLVideoElement, events: EngineEvents): Engine | null {
  if (Hls.isSupported()) return new HlsEngine(video, events);
  if (video.canPlayType("application/vnd.apple.mpegurl")) return new NativeEngine(video, events);
  return null;
}

class HlsEngine implements Engine {
  private readonly hls: Hls;
  private wantedHeight: number | null = null; // survives reloads, whose level indexes may differ
  private resume: Resume | null = null;
  private mediaRecoveries = 0;
  private expiring = false; // told the player once; the next load starts afresh
  private url = "";
  private live: boolean | null = null;
  private emptyTimer = 0;
  private attached = false;

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly events: EngineEvents,
  ) {
    this.hls = new Hls({
      enableWorker: false, // the ES module build has no inline worker; CMAF segments need no transmuxing anyway
      capLevelToPlayerSize: true,
      // The lowest rung first: the smallest first segment (hls.js would start on the first listed, the best, having no
      // bandwidth estimate yet); automatic switching climbs from the second segment on.
      startLevel: 0,
      ...START_BUFFER,
      backBufferLength: 30,
      // A live playlist starts near its end; the viewer may go back as far as they like (liveMaxLatencyDurationCount
      // stays Infinity, so hls.js never pulls them forward) and plays at the speed they chose (no catching up).
      liveSyncDurationCount: LIVE_SYNC_SEGMENTS,
    });
    this.hls.on(Events.MANIFEST_PARSED, () => this.onManifest());
    this.hls.on(Events.LEVEL_SWITCHED, (_, data) => {
      const level = this.hls.levels[data.level];
      if (level) events.switched(level.height);
    });
    this.hls.on(Events.LEVEL_UPDATED, (_, data) => {
      if (data.details.live === this.live) return;
      this.live = data.details.live;
      events.live(this.live);
    });
    this.hls.on(Events.ERROR, (_, data) => {
      if (data.details === ErrorDetails.LEVEL_EMPTY_ERROR) {
        // A live recording whose first segment has not arrived yet: nothing is wrong, it is just early.
        if (data.fatal) this.emptyTimer = window.setTimeout(() => this.hls.loadSource(this.url), EMPTY_RETRY_MS);
        return;
      }
      // hls.js keeps retrying other renditions after a 404, never giving up on its own: the URLs have expired.
      const refused = REFUSED.has(data.response?.code ?? 0);
      if (data.type === ErrorTypes.NETWORK_ERROR && (data.fatal || refused)) {
        if (!this.expiring) events.expired();
        this.expiring = true;
      } else if (!data.fatal) {
        return;
      } else if (data.type === ErrorTypes.MEDIA_ERROR && this.mediaRecoveries < 2) {
        this.mediaRecoveries += 1;
        this.hls.recoverMediaError();
      } else {
        events.failed("This video cannot be played in this browser.");
      }
    });
    // hls.js looks for a first segment to fetch when the media playlist arrives, and after that only on its 100 ms
    // timer: a playlist that arrives before the <video> has opened its MediaSource waits for the next tick. The first
    // load therefore waits for the attachment (a few milliseconds after the page's script runs), so it never does.
    this.hls.once(Events.MEDIA_ATTACHED, () => {
      this.attached = true;
      if (this.url) this.hls.loadSource(this.url);
    });
    this.hls.attachMedia(video);
  }

  get levels(): Level[] {
    return this.hls.levels.map((level, index) => ({ index, height: level.height }));
  }

  get selected(): number {
    return this.hls.autoLevelEnabled ? -1 : this.hls.currentLevel;
  }

  get liveEdge(): number | null {
    return this.hls.latestLevelDetails?.live ? this.hls.liveSyncPosition : null;
  }

  load(url: string, resume?: Resume): void {
    window.clearTimeout(this.emptyTimer);
    this.url = url;
    this.resume = resume ?? null;
    this.expiring = false;
    this.hls.config.startPosition = resume ? resume.time : -1;
    if (this.attached) this.hls.loadSource(url);
  }

  select(index: number): void {
    this.wantedHeight = index < 0 ? null : (this.hls.levels[index]?.height ?? null);
    this.hls.currentLevel = index; // switches at once, flushing what was buffered of the other rendition
  }

  bufferAhead(full: boolean): void {
    Object.assign(this.hls.config, full ? PLAY_BUFFER : START_BUFFER);
  }

  destroy(): void {
    window.clearTimeout(this.emptyTimer);
    this.hls.destroy();
  }

  private onManifest(): void {
    if (this.wantedHeight !== null) {
      const index = this.hls.levels.findIndex((level) => level.height === this.wantedHeight);
      if (index >= 0) this.hls.currentLevel = index;
      else this.wantedHeight = null;
    }
    this.events.levels(this.levels);
    const resume = this.resume;
    this.resume = null;
    if (resume && !resume.paused) void this.video.play().catch(() => undefined);
  }
}

class NativeEngine implements Engine {
  readonly levels: Level[] = [];
  readonly selected = -1;
  private resume: Resume | null = null;
  private live: boolean | null = null;

  constructor(
    private readonly video: HTMLVideoElement,
    events: EngineEvents,
  ) {
    video.addEventListener("loadedmetadata", () => {
      const resume = this.resume;
      this.resume = null;
      events.levels([]);
      if (!resume) return;
      video.currentTime = resume.time;
      if (!resume.paused) void video.play().catch(() => undefined);
    });
    video.addEventListener("resize", () => events.switched(video.videoHeight));
    // A playlist without an end lasts forever to the browser; its end arriving makes the duration finite.
    video.addEventListener("durationchange", () => {
      const live = video.duration === Infinity;
      if (Number.isNaN(video.duration) || live === this.live) return;
      this.live = live;
      events.live(live);
    });
    video.addEventListener("error", () => {
      const code = video.error?.code;
      if (code === MediaError.MEDIA_ERR_NETWORK || code === MediaError.MEDIA_ERR_SRC_NOT_SUPPORTED) events.expired();
      else events.failed("This video cannot be played in this browser.");
    });
  }

  get liveEdge(): number | null {
    const seekable = this.video.seekable;
    if (this.video.duration !== Infinity || seekable.length === 0) return null;
    const end = seekable.end(seekable.length - 1);
    return Math.max(seekable.start(0), end - NATIVE_LIVE_HOLD_BACK_S);
  }

  load(url: string, resume?: Resume): void {
    this.resume = resume ?? null;
    this.video.src = url;
  }

  select(): void {}

  bufferAhead(full: boolean): void {
    this.video.preload = full ? "auto" : "metadata";
  }

  destroy(): void {
    this.video.removeAttribute("src");
    this.video.load();
  }
}
