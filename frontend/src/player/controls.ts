// The control bar: play, seek, time, volume, captions, speed, quality, full screen. Native controls stay in the markup
// for visitors without JavaScript; this replaces them once it runs.
import { clock } from "../format";
import type { Level } from "./engine";
import { fullscreenAvailable, isFullscreen, onFullscreenChange, toggleFullscreen } from "./fullscreen";
import { icon, type IconName } from "./icons";
import { ChoiceMenu } from "./menu";
import { SeekBar } from "./seekbar";
import type { Storyboard } from "./storyboard";

const SPEEDS = [0.5, 0.75, 1, 1.25, 1.5, 1.75, 2] as const;
const IDLE_MS = 2500;
const VOLUME_KEY = "framecast.volume";

/** The renditions the engine can switch between; -1 is automatic. */
export interface Qualities {
  readonly levels: Level[];
  readonly selected: number;
  select(index: number): void;
}

export class Controls {
  readonly element: HTMLDivElement;
  readonly seekbar: SeekBar;
  private readonly playButton: HTMLButtonElement;
  private readonly muteButton: HTMLButtonElement;
  private readonly volume: HTMLInputElement;
  private readonly elapsed: HTMLSpanElement;
  private readonly total: HTMLSpanElement;
  private readonly liveButton: HTMLButtonElement;
  private readonly captionsButton: HTMLButtonElement;
  private readonly speedMenu: ChoiceMenu<number>;
  private readonly qualityMenu: ChoiceMenu<number>;
  private readonly fullscreenButton: HTMLButtonElement;
  private qualities: Qualities | null = null;
  private playingHeight = 0;
  private preferredCaptions: TextTrack | null = null;
  private idleTimer = 0;
  /** What the Live badge does when the viewer is behind: jump to the live edge and play. */
  onGoLive: (() => void) | null = null;

  constructor(
    private readonly root: HTMLElement,
    private readonly video: HTMLVideoElement,
    storyboard: Storyboard,
    durationS: number,
    private readonly announce: (message: string) => void,
  ) {
    this.element = document.createElement("div");
    this.element.className = "player-controls";
    this.seekbar = new SeekBar(video, storyboard, durationS);
    this.playButton = button("Play", "play", () => this.togglePlay());
    this.muteButton = button("Mute", "volume", () => this.toggleMute());
    this.volume = document.createElement("input");
    this.volume.type = "range";
    this.volume.className = "player-volume";
    this.volume.min = "0";
    this.volume.max = "1";
    this.volume.step = "0.05";
    this.volume.setAttribute("aria-label", "Volume");
    this.volume.addEventListener("input", () => {
      video.volume = Number(this.volume.value);
      video.muted = video.volume === 0;
    });
    const time = document.createElement("span");
    time.className = "player-time";
    this.elapsed = document.createElement("span");
    this.total = document.createElement("span");
    time.append(this.elapsed, " / ", this.total);
    // The Live badge: shown while the recording is being recorded; at the live edge its dot is red, behind it grey, and
    // pressing it goes back to the edge (as on a live stream).
    this.liveButton = document.createElement("button");
    this.liveButton.type = "button";
    this.liveButton.className = "player-live-badge";
    this.liveButton.textContent = "Live";
    this.liveButton.hidden = true;
    this.liveButton.addEventListener("click", () => this.onGoLive?.());
    this.captionsButton = button("Captions", "captions", () => this.toggleCaptions());
    this.captionsButton.setAttribute("aria-pressed", "false");
    this.speedMenu = new ChoiceMenu<number>("Speed", (rate) => this.setSpeed(rate));
    this.qualityMenu = new ChoiceMenu<number>("Quality", (index) => this.selectQuality(index));
    this.fullscreenButton = button("Full screen", "fullscreen", () => toggleFullscreen(root, video));
    this.fullscreenButton.hidden = !fullscreenAvailable(video);

    const volumeGroup = document.createElement("div");
    volumeGroup.className = "player-volume-group";
    volumeGroup.append(this.muteButton, this.volume);
    const row = document.createElement("div");
    row.className = "player-row";
    const spacer = document.createElement("span");
    spacer.className = "player-spacer";
    row.append(
      this.playButton,
      volumeGroup,
      time,
      this.liveButton,
      spacer,
      this.captionsButton,
      this.speedMenu.element,
      this.qualityMenu.element,
      this.fullscreenButton,
    );
    this.element.append(this.seekbar.element, row);

    this.restoreVolume();
    this.renderSpeed();
    this.renderQuality();
    this.renderCaptions();
    this.renderTime();
    this.bindVideo();
    this.bindIdle();
    onFullscreenChange(() => this.renderFullscreen());
  }

  // -- actions (buttons and keyboard shortcuts) ----------------------------------------------------------------------

  togglePlay(): void {
    if (this.video.paused || this.video.ended) void this.video.play().catch(() => undefined);
    else this.video.pause();
  }

  seekBy(seconds: number): void {
    this.seekbar.step(seconds);
    this.wake();
  }

  seekToFraction(fraction: number): void {
    this.seekbar.seekToFraction(fraction);
    this.wake();
  }

  volumeBy(delta: number): void {
    const volume = Math.max(0, Math.min(1, Math.round((this.video.volume + delta) * 100) / 100));
    this.video.volume = volume;
    this.video.muted = volume === 0;
    this.announce(`Volume ${Math.round(volume * 100)} %`);
    this.wake();
  }

  toggleMute(): void {
    this.video.muted = !this.video.muted;
    if (!this.video.muted && this.video.volume === 0) this.video.volume = 0.5;
  }

  toggleFullscreen(): void {
    if (!this.fullscreenButton.hidden) toggleFullscreen(this.root, this.video);
  }

  speedStep(direction: 1 | -1): void {
    const at = SPEEDS.indexOf(this.video.playbackRate as (typeof SPEEDS)[number]);
    const next = SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, (at < 0 ? 2 : at) + direction))];
    if (next !== undefined) this.setSpeed(next);
  }

  toggleCaptions(): void {
    const tracks = captionTracks(this.video);
    const showing = tracks.find((track) => track.mode === "showing");
    if (showing) {
      this.preferredCaptions = showing;
      for (const track of tracks) track.mode = "disabled";
    } else {
      const language = navigator.language.split("-")[0];
      const track =
        (this.preferredCaptions && tracks.includes(this.preferredCaptions) ? this.preferredCaptions : null) ??
        tracks.find((t) => t.language.split("-")[0] === language) ??
        tracks[0];
      if (track) track.mode = "showing";
    }
    this.renderCaptions();
    this.announce(captionTracks(this.video).some((t) => t.mode === "showing") ? "Captions on" : "Captions off");
  }

  /** Show the Live badge (`live`), its dot grey when the viewer is `behind` the live edge. */
  setLive(live: boolean, behind: boolean): void {
    this.liveButton.hidden = !live;
    this.liveButton.dataset.behind = String(live && behind);
    this.liveButton.title = behind ? "Go to the live edge" : "Watching live";
  }

  // -- the engine's renditions ----------------------------------------------------------------------------------------

  setQualities(qualities: Qualities | null): void {
    this.qualities = qualities;
    this.renderQuality();
  }

  switched(height: number): void {
    this.playingHeight = height;
    this.root.dataset.playingHeight = String(height);
    this.renderQuality();
  }

  private selectQuality(index: number): void {
    this.qualities?.select(index);
    this.renderQuality();
    const level = this.qualities?.levels[index];
    this.announce(level ? `Quality ${level.height}p` : "Quality automatic");
  }

  private setSpeed(rate: number): void {
    this.video.playbackRate = rate;
    this.video.defaultPlaybackRate = rate; // a reload (fresh URLs, new renditions) keeps it
    this.announce(`Speed ${rate}x`);
  }

  // -- rendering --------------------------------------------------------------------------------------------------------

  private renderQuality(): void {
    const levels = [...(this.qualities?.levels ?? [])].filter((l) => l.height > 0).sort((a, b) => b.height - a.height);
    const selected = this.qualities?.selected ?? -1;
    this.qualityMenu.element.hidden = levels.length < 2;
    this.root.dataset.quality = selected < 0 ? "auto" : String(this.qualities?.levels[selected]?.height ?? "auto");
    const auto = this.playingHeight > 0 ? `Auto (${this.playingHeight}p)` : "Auto";
    const choices = [{ value: -1, label: auto }, ...levels.map((l) => ({ value: l.index, label: `${l.height}p` }))];
    const current = choices.find((choice) => choice.value === selected) ?? choices[0];
    this.qualityMenu.set(choices, selected, selected < 0 ? "Auto" : (current?.label ?? "Auto"));
  }

  private renderSpeed(): void {
    const rate = this.video.playbackRate;
    this.speedMenu.set(
      SPEEDS.map((speed) => ({ value: speed, label: `${speed}x` })),
      rate,
      `${rate}x`,
    );
  }

  private renderCaptions(): void {
    const tracks = captionTracks(this.video);
    this.captionsButton.hidden = tracks.length === 0;
    this.captionsButton.setAttribute("aria-pressed", String(tracks.some((t) => t.mode === "showing")));
  }

  private renderTime(): void {
    const duration = Number.isFinite(this.video.duration) ? this.video.duration : Number(this.seekbar.input.max);
    // Whole seconds: a 5.99 s video lasts 0:06, and reads 0:06 / 0:06 once it ended.
    const total = Math.round(duration) * 1000;
    this.elapsed.textContent = clock(this.video.ended ? total : this.video.currentTime * 1000);
    this.total.textContent = clock(total);
  }

  private renderPlaying(): void {
    const playing = !this.video.paused && !this.video.ended;
    this.root.classList.toggle("is-playing", playing);
    setButton(this.playButton, playing ? "Pause" : "Play", playing ? "pause" : "play");
    if (!playing) this.wake();
  }

  private renderVolume(): void {
    const muted = this.video.muted || this.video.volume === 0;
    setButton(this.muteButton, muted ? "Unmute" : "Mute", muted ? "muted" : "volume");
    this.volume.value = String(muted ? 0 : this.video.volume);
    this.volume.style.setProperty("--level", this.volume.value);
    this.volume.setAttribute("aria-valuetext", muted ? "muted" : `${Math.round(this.video.volume * 100)} %`);
    try {
      localStorage.setItem(VOLUME_KEY, JSON.stringify({ volume: this.video.volume, muted: this.video.muted }));
    } catch {
      // storage is off (private mode, embedded with third-party storage blocked): the volume just is not remembered
    }
  }

  private renderFullscreen(): void {
    const on = isFullscreen(this.root);
    this.root.classList.toggle("is-fullscreen", on);
    setButton(this.fullscreenButton, on ? "Exit full screen" : "Full screen", on ? "exitFullscreen" : "fullscreen");
  }

  private restoreVolume(): void {
    try {
      const saved = JSON.parse(localStorage.getItem(VOLUME_KEY) ?? "null") as { volume?: number; muted?: boolean } | null;
      if (saved && typeof saved.volume === "number") this.video.volume = Math.max(0, Math.min(1, saved.volume));
      if (saved?.muted) this.video.muted = true;
    } catch {
      // nothing remembered
    }
    this.renderVolume();
  }

  private bindVideo(): void {
    const video = this.video;
    for (const type of ["play", "pause", "ended", "playing"]) video.addEventListener(type, () => this.renderPlaying());
    video.addEventListener("volumechange", () => this.renderVolume());
    video.addEventListener("ratechange", () => this.renderSpeed());
    for (const type of ["timeupdate", "durationchange", "seeking", "emptied", "ended"]) {
      video.addEventListener(type, () => this.renderTime());
    }
    video.addEventListener("waiting", () => this.root.classList.add("is-waiting"));
    for (const type of ["playing", "canplay", "pause"]) {
      video.addEventListener(type, () => this.root.classList.remove("is-waiting"));
    }
    const tracks = video.textTracks;
    for (const type of ["addtrack", "removetrack", "change"]) tracks.addEventListener(type, () => this.renderCaptions());
  }

  // -- auto-hide: controls fade out while playing, back on pointer movement, focus or a key ------------------------------

  private bindIdle(): void {
    const root = this.root;
    root.addEventListener("pointermove", () => this.wake());
    root.addEventListener("pointerdown", () => this.wake());
    root.addEventListener("focusin", () => this.wake());
    root.addEventListener("keydown", () => this.wake());
    root.addEventListener("pointerleave", () => {
      if (!this.video.paused) this.sleep();
    });
  }

  get idle(): boolean {
    return this.root.classList.contains("is-idle");
  }

  wake(): void {
    this.root.classList.remove("is-idle");
    window.clearTimeout(this.idleTimer);
    this.idleTimer = window.setTimeout(() => this.sleep(), IDLE_MS);
  }

  private sleep(): void {
    const menuOpen = this.speedMenu.isOpen || this.qualityMenu.isOpen;
    if (this.video.paused || menuOpen || this.element.matches(":hover")) return;
    this.root.classList.add("is-idle");
  }
}

export function captionTracks(video: HTMLVideoElement): TextTrack[] {
  return [...video.textTracks].filter((track) => track.kind === "captions" || track.kind === "subtitles");
}

function button(label: string, name: IconName, onClick: () => void): HTMLButtonElement {
  const element = document.createElement("button");
  element.type = "button";
  element.className = "player-button";
  setButton(element, label, name);
  element.addEventListener("click", onClick);
  return element;
}

function setButton(element: HTMLButtonElement, label: string, name: IconName): void {
  if (element.getAttribute("aria-label") === label) return;
  element.setAttribute("aria-label", label);
  element.title = label;
  element.innerHTML = icon(name);
}
