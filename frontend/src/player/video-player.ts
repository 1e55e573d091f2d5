// The player as a whole: what to show for the recording's state (processing, in progress, failed, playable), the
// media engine once there is something to play, and the polling that moves from one to the next without a reload.
//
// A recording watched while it is being recorded plays live (docs/live.md): it joins near the newest segment, shows a
// Live badge that goes back there, keeps everything since the start seekable, and carries on without a reload when the
// recording ends (the playlist gets its end, the poll says READY, the badge goes).
//
// The root carries data-state ("loading", "processing", "ready", "error"), data-quality ("auto" or a height) and
// data-live ("true" while the recording is live).
import { api } from "../api";
import { Controls } from "./controls";
import { createEngine, type Engine } from "./engine";
import { icon } from "./icons";
import { panelMessage, stageDone, stagePending, stillChanging, viewOf, type SharedRecording, type View } from "./recording";
import { bindShortcuts } from "./shortcuts";
import { Storyboard } from "./storyboard";

const POLL_MS = 2000;
const MIN_REFETCH_GAP_MS = 15_000; // fresh URLs refused again this soon: something else is wrong, stop trying
const BEHIND_LIVE_S = 4; // further than this before the live edge is watching the past: the badge offers to go back

export interface PlayerOptions {
  /** Told every time the recording's JSON is fetched afresh (title, download URL...). */
  onUpdate?: (shared: SharedRecording) => void;
}

export class VideoPlayer {
  private readonly video: HTMLVideoElement;
  private readonly panel: HTMLElement;
  private readonly live: HTMLElement;
  private readonly note: HTMLElement;
  private readonly storyboard: Storyboard;
  private readonly controls: Controls;
  private engine: Engine | null = null;
  private shared: SharedRecording;
  private pollTimer = 0;
  private lastRefetch = 0;
  private firstPlay = true;
  private liveView = false; // the recording says it is live
  private playlistLive: boolean | null = null; // the playlist does (false once hls.js has read its end); null: unread
  private viewerSeeked = false;

  constructor(
    private readonly root: HTMLElement,
    initial: SharedRecording,
    private readonly options: PlayerOptions = {},
  ) {
    this.shared = initial;
    const video = root.querySelector("video");
    if (!video) throw new Error("the player has no <video>");
    this.video = video;
    this.panel = root.querySelector<HTMLElement>(".player-panel") ?? this.makePanel();
    this.live = element("p", "player-live visually-hidden");
    this.live.setAttribute("aria-live", "polite");
    this.note = element("p", "player-note");
    this.note.hidden = true;
    const top = root.querySelector<HTMLElement>(".player-top") ?? root.appendChild(element("div", "player-top"));
    top.append(this.note);
    this.storyboard = new Storyboard(initial.playback.storyboard_url);
    this.controls = new Controls(root, video, this.storyboard, (initial.duration_ms ?? 0) / 1000, (m) => this.say(m));
    this.takeOverVideo();
    root.append(this.controls.element, this.live);
    this.controls.onGoLive = () => this.goLive();
    this.controls.seekbar.onSeek = () => (this.viewerSeeked = true);
    bindShortcuts(root, this.controls);
    this.apply(initial);
  }

  // -- state -----------------------------------------------------------------------------------------------------------

  private apply(shared: SharedRecording): void {
    const before = this.shared;
    this.shared = shared;
    const view = viewOf(shared);
    const poster = shared.playback.poster_url;
    if (poster && this.firstPlay && this.video.getAttribute("poster") !== poster) this.video.poster = poster;
    this.storyboard.setUrl(shared.playback.storyboard_url);
    if (shared.duration_ms && !Number.isFinite(this.video.duration)) this.controls.seekbar.setDuration(shared.duration_ms / 1000);
    this.note.textContent = noteFor(shared, view);
    this.note.hidden = !this.note.textContent;
    this.liveView = view.kind === "playable" && view.live;
    this.renderLive();
    if (view.kind === "playable") {
      this.panel.hidden = true;
      if (!this.engine) this.start(view.hlsUrl);
      else if (stagePending(before.processing?.ladder) && stageDone(shared.processing?.ladder)) {
        this.reload(view.hlsUrl); // the master playlist now lists every rung
        this.say("More qualities are available");
      }
    } else {
      this.showPanel(view);
    }
    this.schedulePoll();
  }

  private showPanel(view: View): void {
    this.root.dataset.state = view.kind === "failed" || view.kind === "unavailable" ? "error" : "processing";
    this.panel.hidden = false;
    const message = this.panel.querySelector(".player-panel-message") ?? this.panel;
    message.textContent = panelMessage(view);
    const progress = this.panel.querySelector("progress");
    if (progress) {
      progress.hidden = view.kind !== "processing";
      if (view.kind === "processing") progress.value = view.progress;
    }
  }

  private fail(message: string): void {
    this.root.dataset.state = "error";
    this.panel.hidden = false;
    (this.panel.querySelector(".player-panel-message") ?? this.panel).textContent = message;
    const progress = this.panel.querySelector("progress");
    if (progress) progress.hidden = true;
  }

  private schedulePoll(): void {
    window.clearTimeout(this.pollTimer);
    if (stillChanging(this.shared)) this.pollTimer = window.setTimeout(() => void this.poll(), POLL_MS);
  }

  private async poll(): Promise<void> {
    try {
      const shared = await this.fetchShared();
      this.apply(shared);
    } catch {
      this.schedulePoll(); // a network blip: try again later
    }
  }

  private async fetchShared(): Promise<SharedRecording> {
    const shared = await api<SharedRecording>(`/api/v1/links/${encodeURIComponent(this.shared.link_id)}`);
    this.options.onUpdate?.(shared);
    return shared;
  }

  // -- media -----------------------------------------------------------------------------------------------------------

  private start(url: string): void {
    this.root.dataset.state = "loading";
    this.engine = createEngine(this.video, {
      levels: () => this.controls.setQualities(this.engine),
      switched: (height) => this.controls.switched(height),
      live: (live) => {
        this.playlistLive = live;
        this.renderLive();
      },
      expired: () => void this.refresh(),
      failed: (message) => this.fail(message),
    });
    if (!this.engine) {
      const download = this.shared.playback.download_url;
      if (download) this.video.src = download; // no HLS at all: the progressive MP4 still plays
      else this.fail("This browser cannot play this video.");
      return;
    }
    this.engine.bufferAhead(false);
    this.engine.load(url);
  }

  private reload(url: string): void {
    if (!this.engine) return;
    this.root.dataset.state = "loading";
    this.engine.load(url, { time: this.video.currentTime, paused: this.video.paused });
  }

  /** The signed media URLs expired (or were refused): fetch fresh ones and carry on from the same place. */
  private async refresh(): Promise<void> {
    const now = Date.now();
    if (now - this.lastRefetch < MIN_REFETCH_GAP_MS) {
      this.fail("This video could not be loaded. Reload the page to try again.");
      return;
    }
    this.lastRefetch = now;
    try {
      const shared = await this.fetchShared();
      this.shared = shared;
      const view = viewOf(shared);
      if (view.kind === "playable") this.reload(view.hlsUrl);
      else this.apply(shared);
    } catch {
      this.fail("This video is no longer available.");
    }
  }

  // -- live --------------------------------------------------------------------------------------------------------------

  /** Live: the recording says so, and the playlist has not ended (it may end a poll before the recording says so). */
  private get isLive(): boolean {
    return this.liveView && this.playlistLive !== false;
  }

  private renderLive(): void {
    const live = this.isLive;
    if (this.root.dataset.live === "true" && !live) this.say("The recording has ended");
    this.root.dataset.live = String(live);
    this.controls.setLive(live, live && this.behindLive(BEHIND_LIVE_S));
  }

  private behindLive(seconds: number): boolean {
    const edge = this.engine?.liveEdge ?? null;
    return edge !== null && this.video.currentTime < edge - seconds;
  }

  /** Back to the live edge (the Live badge), playing. */
  private goLive(): void {
    const edge = this.engine?.liveEdge ?? null;
    if (edge !== null && this.behindLive(1)) this.video.currentTime = edge;
    if (this.video.paused) void this.video.play().catch(() => undefined);
    this.say("Live");
  }

  // -- the <video> -------------------------------------------------------------------------------------------------------

  private takeOverVideo(): void {
    const video = this.video;
    video.controls = false; // the markup keeps `controls` for visitors without JavaScript
    for (const source of video.querySelectorAll("source")) source.remove();
    video.removeAttribute("src");
    video.preload = "auto";
    video.addEventListener("loadeddata", () => {
      if (this.root.dataset.state === "loading") this.root.dataset.state = "ready";
    });
    video.addEventListener("play", () => {
      if (!this.firstPlay) return;
      this.firstPlay = false;
      // A reload (fresh URLs, new renditions) must show the paused frame, not bring the poster back.
      video.removeAttribute("poster");
      this.engine?.bufferAhead(true);
      // The page was joined near the live edge, which has moved on since: play live, unless the viewer chose a place.
      const edge = this.engine?.liveEdge ?? null;
      if (this.isLive && !this.viewerSeeked && edge !== null && this.behindLive(BEHIND_LIVE_S)) video.currentTime = edge;
    });
    for (const type of ["timeupdate", "play", "pause", "seeked"]) {
      video.addEventListener(type, () => {
        if (this.liveView) this.renderLive();
      });
    }
    // The scrub thumbnails load once frames are showing, so they never compete with the first one.
    video.addEventListener("playing", () => this.controls.seekbar.loadStoryboard(), { once: true });
    let touch = false;
    video.addEventListener("pointerdown", (event) => (touch = event.pointerType === "touch"));
    video.addEventListener("click", () => {
      if (touch && this.controls.idle) this.controls.wake(); // a tap on hidden controls shows them first
      else this.controls.togglePlay();
    });
    video.addEventListener("dblclick", () => this.controls.toggleFullscreen());
    const big = element("div", "player-bigplay");
    big.setAttribute("aria-hidden", "true");
    big.innerHTML = icon("play");
    const spinner = element("div", "player-spinner");
    spinner.setAttribute("aria-hidden", "true");
    video.after(big, spinner);
  }

  private makePanel(): HTMLElement {
    const panel = element("div", "player-panel");
    panel.setAttribute("role", "status");
    panel.append(element("p", "player-panel-message"));
    this.root.append(panel);
    return panel;
  }

  private say(message: string): void {
    this.live.textContent = message;
  }
}

/** The note over the player: the recording is paused (live), or better renditions are being made. */
function noteFor(shared: SharedRecording, view: View): string {
  if (view.kind !== "playable") return "";
  if (view.live && shared.status === "PAUSED") return "Recording paused";
  return stagePending(shared.processing?.ladder) ? "More qualities are on their way" : "";
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag);
  made.className = className;
  return made;
}
