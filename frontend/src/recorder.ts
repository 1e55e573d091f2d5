// The /record page: choose what to record, count down, record (pause, resume, stop or cancel), and get the share
// link. The session (recorder/session.ts) talks to the server; this module turns clicks into its calls and its
// phases into what the page shows.

import "./recorder.css";

import { api, pageData } from "./api";
import { buildCapture, type Built } from "./recorder/capture";
import { captureProblem, chooseMimeType, usesScreen } from "./recorder/media";
import { LevelMeter } from "./recorder/meter";
import { type Phase, type Recording, Session, spanWords } from "./recorder/session";
import { Setup } from "./recorder/setup";
import { View } from "./recorder/ui";

interface PageData {
  max_duration_ms: number;
}

const COUNTDOWN_S = 3;
const POLL_MS = 2000;
const POLL_LIMIT = 450; // a quarter of an hour of polling; the share page takes over from there
const BUSY: readonly Phase[] = ["connecting", "recording", "paused", "stopping", "uploading"];

function element<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

function main(): void {
  const data = pageData<PageData>("recorder-data");
  const view = new View();
  const meter = new LevelMeter(element("mic-meter"), element("mic-meter-fill"));
  const setup = new Setup(
    {
      form: element("setup"),
      cameraField: element("camera-field"),
      cameraSelect: element("camera-select"),
      micSelect: element("mic-select"),
      video: element("preview-video"),
      empty: element("preview-empty"),
      emptyText: element("preview-text"),
    },
    meter,
    (message) => view.error(message),
  );
  element("limit-hint").textContent = `Recordings can last up to ${spanWords(data.max_duration_ms)}. A ${COUNTDOWN_S}-second countdown comes first.`;

  let session: Session | null = null;
  let capture: Built | null = null;
  let countdown: AbortController | null = null;
  let clock = 0;
  let polling = 0;
  let started = false;

  const release = (): void => {
    capture?.stop();
    capture = null;
    window.clearInterval(clock);
    meter.follow(null);
  };

  const backToSetup = (message: string | null): void => {
    release();
    setup.showPreview(null);
    session = null;
    view.show("setup");
    setup.setDisabled(false);
    view.start.focus();
    view.note(null);
    view.stopReason(null);
    view.reconnecting(false);
    view.error(message);
    // The devices reopen for the next recording; what went wrong with this one stays on show meanwhile.
    void setup.refresh().then(() => {
      if (message) view.error(message);
    });
  };

  const onPhase = (phase: Phase, message: string): void => {
    const current = session;
    view.phase(phase);
    if (phase === "recording") {
      view.announce(started ? "Recording resumed" : "Recording started");
      started = true;
    } else if (phase === "paused") {
      view.announce("Recording paused");
    } else if (phase === "stopping") {
      window.clearInterval(clock);
      view.closeDialog();
      view.stopReason(message || null);
    } else if (phase === "uploading") {
      release();
      setup.showPreview(null, "Uploading your recording…");
      view.show("uploading");
      view.announce("Recording stopped. Uploading…");
    } else if (phase === "done" && current) {
      view.note(null);
      setup.showPreview(null, "Saved. Anyone with the link can watch it.");
      // Live segments make it READY the moment the last one lands; an upload is processed first.
      const ready = current.recording.status === "READY";
      view.result(
        current.recording.share_url,
        ready ? "Ready to watch. More qualities are on their way." : "Processing… the link plays as soon as the video is ready.",
      );
      view.announce("Upload complete. Your share link is ready.");
      if (!ready) watchProcessing(current.recording);
    } else if (phase === "failed") {
      view.closeDialog();
      backToSetup(message);
    }
  };

  const watchProcessing = (recording: Recording): void => {
    let polls = 0;
    const poll = async (): Promise<void> => {
      polls += 1;
      try {
        const now = await api<Recording & { failure_reason: string | null }>(`/api/v1/recordings/${recording.id}`);
        if (now.status === "READY") return view.processing("Ready to watch.");
        if (now.status === "FAILED") return view.processing(`Processing failed: ${now.failure_reason ?? "unknown reason"}.`);
        if (now.playback?.hls_url) view.processing("Watchable now; more qualities are on the way.");
      } catch {
        // the next poll tries again
      }
      if (polls < POLL_LIMIT) polling = window.setTimeout(() => void poll(), POLL_MS);
    };
    polling = window.setTimeout(() => void poll(), POLL_MS);
  };

  const startRecording = async (): Promise<void> => {
    view.error(null);
    view.note(null);
    started = false;
    meter.wake();
    const mode = setup.mode;
    const mimeType = chooseMimeType(mode !== "audio");
    if (!mimeType) {
      view.error("This browser cannot record here. Use a current Chrome, Edge, Firefox or Safari.");
      return;
    }
    setup.setDisabled(true);
    try {
      capture = await buildCapture(mode, setup.take());
    } catch (error) {
      backToSetup(captureProblem(error, usesScreen(mode) ? "screen" : "camera").message);
      return;
    }
    setup.showPreview(capture.preview);
    meter.follow(capture.stream);
    const events = {
      phase: onPhase,
      connected: (connected: boolean) => view.reconnecting(!connected),
      progress: (accepted: number, captured: number) => view.uploadProgress(accepted, captured),
      trouble: (message: string | null) => view.note(message),
    };
    const created = Session.create({ mode, stream: capture.stream, mimeType, size: capture.size }, events);
    countdown = new AbortController();
    const go = await view.countdown(COUNTDOWN_S, countdown.signal);
    countdown = null;
    try {
      session = await created;
    } catch (error) {
      backToSetup(`Could not start the recording: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    if (!go) {
      await session.cancel();
      backToSetup(null);
      view.note("Recording cancelled.");
      return;
    }
    const current = session;
    capture.onSourceEnded(() => void current.stop("The shared screen or device stopped, so the recording stopped. Everything up to then is kept."));
    clock = window.setInterval(() => view.elapsed(current.elapsedMs, current.phase === "recording"), 250);
    await current.start();
  };

  const cancelRecording = async (): Promise<void> => {
    if (countdown) return countdown.abort();
    const current = session;
    if (!current) return;
    if (current.phase !== "connecting" && !(await view.confirmDiscard())) return;
    await current.cancel();
    backToSetup(null);
    view.note("Recording discarded. Nothing was kept.");
  };

  element<HTMLFormElement>("setup").addEventListener("submit", (event) => {
    event.preventDefault();
    void startRecording();
  });
  view.pause.addEventListener("click", () => (session?.phase === "paused" ? session.resume() : session?.pause()));
  view.stop.addEventListener("click", () => void session?.stop());
  view.cancel.addEventListener("click", () => void cancelRecording());
  view.copy.addEventListener("click", () => void view.copyLink());
  view.again.addEventListener("click", () => {
    window.clearTimeout(polling);
    backToSetup(null);
  });
  document.addEventListener("pointerdown", () => meter.wake(), { once: true });
  window.addEventListener("beforeunload", (event) => {
    if (session && BUSY.includes(session.phase)) {
      event.preventDefault();
      event.returnValue = ""; // older browsers ask only when this is set
    }
  });

  view.show("setup");
  void setup.init();
}

main();
