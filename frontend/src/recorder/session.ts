// One recording from the first message to the share link, driven like the desktop agent's Recorder: the recording
// is created, the control channel connects, capture starts once the server has acknowledged RECORDING_STARTED, and
// the bytes go up as they are recorded. People (buttons, a source that ends) and the server (FORCE_STOP, a
// deletion) both end it; the phase guards make whichever comes first win.

import { api } from "../api";
import { type Command, ControlChannel, ControlError } from "./control";
import { createRecorder, type Mode, type Size } from "./media";
import { createTransport, type Transport } from "./transport";

export type Phase = "connecting" | "recording" | "paused" | "stopping" | "uploading" | "done" | "cancelled" | "failed";

export interface Recording {
  id: string;
  status: string;
  share_url: string;
  ws_url: string | null;
  duration_ms: number | null;
  max_duration_ms: number;
  playback?: { hls_url: string | null } | null;
}

export interface SessionEvents {
  /** The phase changed; `message` says why when it was not the person's doing (or what went wrong). */
  phase(phase: Phase, message: string): void;
  connected(connected: boolean): void;
  progress(accepted: number, captured: number): void;
  /** A sentence about a problem being worked around (uploads retrying), or null when it is over. */
  trouble(message: string | null): void;
}

export interface Capture {
  mode: Mode;
  stream: MediaStream;
  mimeType: string;
  size: Size | null;
}

const ABORT_WAIT_MS = 5000;

export class Session {
  phase: Phase = "connecting";
  private readonly channel: ControlChannel;
  private recorder: MediaRecorder | null = null;
  private upload: Transport | null = null;
  private activeSince: number | null = null;
  private activeBefore = 0;

  private constructor(
    public recording: Recording,
    private readonly capture: Capture,
    private readonly events: SessionEvents,
  ) {
    this.channel = new ControlChannel(
      recording.id,
      recording.ws_url ?? "",
      (command) => this.onCommand(command),
      (connected) => events.connected(connected),
    );
  }

  /** Create the recording on the server and connect its control channel; capture starts with `start()`. */
  static async create(capture: Capture, events: SessionEvents): Promise<Session> {
    const settings: Record<string, unknown> = { source: "browser", mime_type: capture.mimeType };
    if (capture.size) Object.assign(settings, capture.size);
    const recording = await api<Recording>("/api/v1/recordings", {
      method: "POST",
      json: { recording_type: capture.mode, settings },
    });
    const session = new Session(recording, capture, events);
    session.channel.open();
    return session;
  }

  /** Time recorded, pauses excluded, by this tab's clock (the server keeps its own, which is authoritative). */
  get elapsedMs(): number {
    const running = this.activeSince === null ? 0 : performance.now() - this.activeSince;
    return Math.round(this.activeBefore + running);
  }

  /** Tell the server capture begins; the recorder starts once it has acknowledged (the recording is RECORDING). */
  async start(): Promise<void> {
    const { mimeType, size } = this.capture;
    try {
      await this.channel.send("RECORDING_STARTED", { metadata: { agent: "framecast-web", mime_type: mimeType, ...size } });
    } catch (error) {
      if (this.phase === "connecting") this.fail(`The server did not start the recording: ${messageOf(error)}`);
      return;
    }
    if (this.phase !== "connecting") return; // cancelled, or ended by the server, meanwhile
    const recorder = createRecorder(this.capture.stream, mimeType, size);
    const upload = createTransport(this.recording.id, mimeType, {
      progress: (accepted, captured) => this.events.progress(accepted, captured),
      trouble: (message) => this.events.trouble(message),
    });
    recorder.addEventListener("dataavailable", (event) => {
      if (this.phase !== "cancelled") upload.push(event.data);
    });
    recorder.addEventListener("error", (event) => {
      const error = (event as Event & { error?: DOMException }).error;
      void this.finish(true, `The browser stopped recording (${error?.message ?? "an encoder error"}). Everything up to then is kept.`);
    });
    this.recorder = recorder;
    this.upload = upload;
    recorder.start(1000);
    this.activeSince = performance.now();
    this.setPhase("recording");
  }

  pause(): void {
    if (this.phase !== "recording" || !this.recorder) return;
    this.recorder.pause();
    this.holdClock();
    this.setPhase("paused");
    this.tell("RECORDING_PAUSED");
  }

  resume(): void {
    if (this.phase !== "paused" || !this.recorder) return;
    this.recorder.resume();
    this.activeSince = performance.now();
    this.setPhase("recording");
    this.tell("RECORDING_RESUMED");
  }

  /** Stop, upload what is left, and complete the recording; `why` is set when the person did not ask for it. */
  stop(why = ""): Promise<void> {
    return this.finish(true, why);
  }

  /** Discard everything: the recording ends ABORTED on the server, its upload or segments are removed. */
  async cancel(): Promise<void> {
    if (!["connecting", "recording", "paused"].includes(this.phase)) return;
    this.setPhase("cancelled");
    this.holdClock();
    if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
    // Sending stops first, and a segment on its way is let land, so the abort removes everything that arrived.
    const discarded = this.upload?.discard();
    await Promise.race([discarded, sleep(ABORT_WAIT_MS)]);
    try {
      await Promise.race([this.channel.send("RECORDING_ABORTED"), sleep(ABORT_WAIT_MS)]);
    } catch {
      // refused or unreachable: an unstarted recording expires on its own; a started one was stopped elsewhere
    }
    await discarded;
    this.channel.close();
  }

  private async finish(tellServer: boolean, why: string): Promise<void> {
    if (this.phase !== "recording" && this.phase !== "paused") return;
    this.setPhase("stopping", why);
    this.holdClock();
    const data = { duration_ms: this.elapsedMs, metadata: { mime_type: this.capture.mimeType } };
    const stopped = tellServer ? this.channel.send("RECORDING_STOPPED", data) : null;
    await this.stopRecorder();
    // What is left goes up (live segments: the last one, then the run's end) while the stop is acknowledged.
    const upload = this.upload;
    upload?.end();
    try {
      await stopped;
    } catch (error) {
      if (!(error instanceof ControlError)) throw error; // refused: the server had stopped it already (FORCE_STOP)
    }
    if (!upload || upload.captured === 0) return this.fail("Nothing was recorded, so there is nothing to upload.");
    this.setPhase("uploading", why);
    this.events.progress(upload.accepted, upload.captured);
    try {
      await upload.finish(); // live: completion, which the server takes only once it has stopped the recording
    } catch (error) {
      return this.fail(`${messageOf(error)} Try again with a new recording.`);
    }
    this.channel.close();
    try {
      this.recording = await api<Recording>(`/api/v1/recordings/${this.recording.id}`);
    } catch {
      // the upload is in; the share link from the recording's creation is as good
    }
    this.setPhase("done", why);
  }

  private stopRecorder(): Promise<void> {
    const recorder = this.recorder;
    if (!recorder || recorder.state === "inactive") return Promise.resolve();
    // "stop" comes after the last "dataavailable": every byte has been pushed by then.
    return new Promise((resolve) => {
      recorder.addEventListener("stop", () => resolve(), { once: true });
      recorder.stop();
    });
  }

  private onCommand(command: Command): void {
    const max = span(this.recording.max_duration_ms);
    switch (command.type) {
      case "FORCE_STOP": {
        const why =
          command.detail === "time_limit"
            ? `The recording reached the ${max} limit, so it was stopped. Everything up to then is kept.`
            : "The recording was stopped from elsewhere (another window, or the API). Everything up to then is kept.";
        void this.finish(false, why);
        break;
      }
      case "STOPPED_WHILE_AWAY":
        if (command.detail === "UPLOADING") {
          void this.finish(false, "The server stopped the recording while the connection was down. Everything recorded is kept.");
        } else if (this.isOpen()) {
          this.endHere(`The recording was ended on the server (${command.detail.toLowerCase()}).`);
        }
        break;
      case "SESSION_EXPIRED":
        if (this.isOpen()) this.endHere("The session expired before recording began. Start a new recording.");
        break;
      case "SESSION_CLOSED":
        if (["DELETED", "NOT_FOUND"].includes(command.detail) && this.phase !== "cancelled") {
          this.endHere("The recording was deleted on the server, so nothing was kept.");
        }
        break;
    }
  }

  private isOpen(): boolean {
    return ["connecting", "recording", "paused", "stopping"].includes(this.phase);
  }

  /** The server ended the session without a stop: nothing here can be uploaded to it any more. */
  private endHere(message: string): void {
    this.holdClock();
    if (this.recorder && this.recorder.state !== "inactive") this.recorder.stop();
    void this.upload?.discard();
    this.channel.close();
    this.fail(message);
  }

  private tell(type: string): void {
    this.channel.send(type).catch((error: unknown) => {
      // A refusal after the session ended (a force stop crossing a pause) is expected; others are worth telling.
      if (error instanceof ControlError && error.code !== "closed" && this.isOpen()) this.events.trouble(error.message);
    });
  }

  private holdClock(): void {
    if (this.activeSince === null) return;
    this.activeBefore += performance.now() - this.activeSince;
    this.activeSince = null;
  }

  private fail(message: string): void {
    this.channel.close();
    this.setPhase("failed", message);
  }

  private setPhase(phase: Phase, message = ""): void {
    this.phase = phase;
    this.events.phase(phase, message);
  }
}

/** 14_400_000 -> "4 hours"; 5_400_000 -> "90 minutes": a limit as a person says it. */
export function spanWords(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes >= 120 && minutes % 60 === 0) return `${minutes / 60} hours`;
  if (minutes >= 1) return minutes === 1 ? "1 minute" : `${minutes} minutes`;
  return `${Math.round(ms / 1000)} seconds`;
}

/** "4-hour", "90-minute": the same limit before a noun. */
function span(ms: number): string {
  return spanWords(ms).replace(/s$/, "").replace(" ", "-");
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => window.setTimeout(resolve, ms));
}
