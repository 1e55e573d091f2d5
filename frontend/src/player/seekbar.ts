// The seek slider: an <input type="range"> (role slider, named "Seek") painted with what is played and buffered, and a
// tooltip above the pointer or the keyboard position with the time and the storyboard tile there.
import { clock } from "../format";
import type { Storyboard } from "./storyboard";

const KEY_STEP_S = 5;
const SEEK_EVERY_MS = 120; // while dragging: often enough to follow the pointer, rarely enough not to flood hls.js

export class SeekBar {
  readonly element: HTMLDivElement;
  readonly input: HTMLInputElement;
  /** Told whenever the viewer moves the playhead (the slider, its keys, shortcuts). */
  onSeek: (() => void) | null = null;
  private readonly preview: HTMLDivElement;
  private readonly picture: HTMLDivElement;
  private readonly previewLabel: HTMLSpanElement;
  private duration: number;
  private dragging = false;
  private lastSeek = 0;
  private hideTimer = 0;
  private previewTime: number | null = null; // where the preview shows, while it shows

  constructor(
    private readonly video: HTMLVideoElement,
    private readonly storyboard: Storyboard,
    durationS: number,
  ) {
    this.duration = durationS;
    this.element = document.createElement("div");
    this.element.className = "player-seek";
    this.input = document.createElement("input");
    this.input.type = "range";
    this.input.className = "player-seek-input";
    this.input.min = "0";
    this.input.step = "any";
    this.input.value = "0";
    this.input.setAttribute("aria-label", "Seek");
    this.preview = document.createElement("div");
    this.preview.className = "player-preview";
    this.preview.hidden = true;
    this.preview.setAttribute("aria-hidden", "true");
    this.picture = document.createElement("div");
    this.picture.className = "player-preview-picture";
    this.previewLabel = document.createElement("span");
    this.previewLabel.className = "player-preview-time";
    this.preview.append(this.picture, this.previewLabel);
    this.element.append(this.input, this.preview);
    this.setDuration(durationS);

    this.input.addEventListener("input", () => this.onInput());
    this.input.addEventListener("change", () => {
      this.dragging = false;
      this.seek(Number(this.input.value));
    });
    this.input.addEventListener("keydown", (event) => this.onKey(event));
    this.input.addEventListener("blur", () => this.hidePreview());
    this.element.addEventListener("pointerenter", () => this.loadStoryboard());
    this.element.addEventListener("pointermove", (event) => this.showPreviewAt(this.timeAtPointer(event.clientX)));
    this.element.addEventListener("pointerleave", () => this.hidePreview());
    this.input.addEventListener("pointerdown", () => (this.dragging = true));
    this.input.addEventListener("pointerup", () => (this.dragging = false));
    video.addEventListener("timeupdate", () => this.render());
    video.addEventListener("progress", () => this.render());
    video.addEventListener("durationchange", () => {
      if (Number.isFinite(video.duration) && video.duration > 0) this.setDuration(video.duration);
    });
    // A live playlist played by the browser's own HLS lasts forever; the bar covers what can be sought to instead.
    video.addEventListener("progress", () => {
      const seekable = video.seekable;
      if (video.duration !== Infinity || seekable.length === 0) return;
      const end = seekable.end(seekable.length - 1);
      if (end > this.duration) this.setDuration(end);
    });
  }

  setDuration(seconds: number): void {
    this.duration = Math.max(0, seconds);
    this.input.max = String(this.duration);
    this.render();
  }

  /** Move by `delta` seconds (keyboard, shortcuts) and show where that lands. */
  step(delta: number): void {
    this.seek(this.video.currentTime + delta);
    this.flashPreview();
  }

  seekToFraction(fraction: number): void {
    this.seek(this.duration * fraction);
    this.flashPreview();
  }

  private seek(time: number): void {
    this.onSeek?.();
    const to = Math.max(0, Math.min(this.duration, time));
    this.video.currentTime = to;
    this.render(to);
  }

  private onInput(): void {
    const time = Number(this.input.value);
    this.render(time);
    if (this.dragging) this.showPreviewAt(time);
    const now = performance.now();
    if (now - this.lastSeek >= SEEK_EVERY_MS) {
      this.onSeek?.();
      this.lastSeek = now;
      this.video.currentTime = time;
    }
  }

  private onKey(event: KeyboardEvent): void {
    const big = Math.max(KEY_STEP_S * 2, this.duration / 10);
    const moves: Record<string, () => number> = {
      ArrowLeft: () => this.video.currentTime - KEY_STEP_S,
      ArrowDown: () => this.video.currentTime - KEY_STEP_S,
      ArrowRight: () => this.video.currentTime + KEY_STEP_S,
      ArrowUp: () => this.video.currentTime + KEY_STEP_S,
      PageDown: () => this.video.currentTime - big,
      PageUp: () => this.video.currentTime + big,
      Home: () => 0,
      End: () => this.duration,
    };
    const move = moves[event.key];
    if (!move || event.altKey || event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    event.stopPropagation(); // the page's shortcuts must not act on the same key
    this.seek(move());
    this.flashPreview();
  }

  private render(time = this.video.currentTime): void {
    if (!this.dragging) this.input.value = String(time);
    const total = this.duration || 1;
    let buffered = 0;
    const ranges = this.video.buffered;
    for (let i = 0; i < ranges.length; i += 1) {
      if (ranges.start(i) <= time + 0.5) buffered = Math.max(buffered, ranges.end(i));
    }
    this.element.style.setProperty("--played", `${(Math.min(time, total) / total) * 100}%`);
    this.element.style.setProperty("--buffered", `${(Math.min(buffered, total) / total) * 100}%`);
    const whole = Math.round(this.duration) * 1000; // a 5.99 s video lasts 0:06, as the time display says
    this.input.setAttribute("aria-valuetext", `${clock(Math.min(time * 1000, whole))} of ${clock(whole)}`);
  }

  private timeAtPointer(clientX: number): number {
    const box = this.input.getBoundingClientRect();
    const fraction = box.width > 0 ? (clientX - box.left) / box.width : 0;
    return Math.max(0, Math.min(1, fraction)) * this.duration;
  }

  /** Fetch the storyboard (once) and redraw a preview already showing without its picture. */
  loadStoryboard(): void {
    void this.storyboard.load().then(() => {
      if (this.previewTime !== null) this.showPreviewAt(this.previewTime);
    });
  }

  private showPreviewAt(time: number): void {
    window.clearTimeout(this.hideTimer);
    this.previewTime = time;
    this.previewLabel.textContent = clock(time * 1000);
    const tile = this.storyboard.at(time);
    if (tile) {
      this.picture.hidden = false;
      this.picture.style.width = `${tile.width}px`;
      this.picture.style.height = `${tile.height}px`;
      this.picture.style.backgroundImage = `url("${tile.image}")`;
      this.picture.style.backgroundPosition = `-${tile.x}px -${tile.y}px`;
    } else {
      this.picture.hidden = true;
    }
    this.preview.hidden = false;
    // Centre the tooltip over the time, kept inside the bar so it never leaves the player.
    const bar = this.element.clientWidth;
    const width = this.preview.offsetWidth;
    const thumbInset = 8; // the range thumb's centre travels between its half-widths, not edge to edge
    const x = thumbInset + (this.duration > 0 ? time / this.duration : 0) * (bar - 2 * thumbInset);
    this.preview.style.left = `${Math.max(0, Math.min(bar - width, x - width / 2))}px`;
  }

  /** Show the preview at the current time for a moment, after a keyboard or shortcut seek. */
  private flashPreview(): void {
    void this.storyboard.load().then(() => {
      this.showPreviewAt(this.video.currentTime);
      this.hideTimer = window.setTimeout(() => this.hidePreview(), 1200);
    });
  }

  private hidePreview(): void {
    window.clearTimeout(this.hideTimer);
    this.previewTime = null;
    this.preview.hidden = true;
  }
}
