// The microphone level meter: the loudness of the last few milliseconds, from a Web Audio analyser.

import { audioContext } from "./media";

const FLOOR_DB = -60;
const ANNOUNCE_MS = 300;

export class LevelMeter {
  private source: MediaStreamAudioSourceNode | null = null;
  private analyser: AnalyserNode | null = null;
  private frame = 0;
  private lastAnnounced = 0;
  private peak = 0;
  private samples: Float32Array<ArrayBuffer> = new Float32Array(1024);

  constructor(
    private readonly element: HTMLElement,
    private readonly fill: HTMLElement,
  ) {}

  /** Show the level of `stream`'s first audio track, or an empty meter for null. */
  follow(stream: MediaStream | null): void {
    this.source?.disconnect();
    this.source = null;
    cancelAnimationFrame(this.frame);
    const track = stream?.getAudioTracks()[0];
    this.element.classList.toggle("off", !track);
    if (!track) {
      this.show(0);
      return;
    }
    const context = audioContext();
    this.analyser ??= context.createAnalyser();
    this.analyser.fftSize = this.samples.length;
    this.source = context.createMediaStreamSource(new MediaStream([track]));
    this.source.connect(this.analyser);
    const tick = (): void => {
      this.show(this.level());
      this.frame = requestAnimationFrame(tick);
    };
    tick();
  }

  /** Wake the audio context (call on a click: browsers start audio only after one). */
  wake(): void {
    audioContext();
  }

  private level(): number {
    if (!this.analyser) return 0;
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const sample of this.samples) sum += sample * sample;
    const rms = Math.sqrt(sum / this.samples.length);
    const db = rms > 0 ? 20 * Math.log10(rms) : FLOOR_DB;
    return Math.round(Math.min(1, Math.max(0, (db - FLOOR_DB) / -FLOOR_DB)) * 100);
  }

  private show(level: number): void {
    this.fill.style.clipPath = `inset(0 ${100 - level}% 0 0)`; // the colours stay put: loud is red, wherever
    // Assistive technology reads the value on demand: it gets the peak of the last moment, a few times a second,
    // rather than a value that flickers every frame.
    this.peak = Math.max(this.peak, level);
    const now = performance.now();
    if (now - this.lastAnnounced >= ANNOUNCE_MS) {
      this.lastAnnounced = now;
      this.element.setAttribute("aria-valuenow", String(this.peak));
      this.element.setAttribute("aria-valuetext", this.peak < 5 ? "silent" : `${this.peak} %`);
      this.peak = 0;
    }
  }
}
