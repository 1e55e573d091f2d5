// The recorder page's moving parts: which panel shows, the countdown, the recording controls, the upload progress
// and the share link. No decisions here; recorder.ts decides, this shows and announces.

import { clock } from "../format";
import type { Phase } from "./session";

export type Stage = "setup" | "countdown" | "live" | "uploading" | "result";

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the recorder page has no #${id}`);
  return element as T;
}

const BADGE: Partial<Record<Phase, [string, string]>> = {
  connecting: ["Starting…", ""],
  recording: ["Recording", "danger"],
  paused: ["Paused", "warn"],
  stopping: ["Stopping…", ""],
};

export class View {
  readonly root = byId<HTMLElement>("recorder");
  readonly start = byId<HTMLButtonElement>("start");
  readonly pause = byId<HTMLButtonElement>("pause");
  readonly stop = byId<HTMLButtonElement>("stop");
  readonly cancel = byId<HTMLButtonElement>("cancel");
  readonly copy = byId<HTMLButtonElement>("copy");
  readonly again = byId<HTMLButtonElement>("again");
  private readonly errorBox = byId<HTMLElement>("recorder-error");
  private readonly noteBox = byId<HTMLElement>("recorder-note");
  private readonly stopReasonBox = byId<HTMLElement>("stop-reason");
  private readonly panels: Record<Exclude<Stage, "countdown">, HTMLElement> = {
    setup: byId("setup"),
    live: byId("live"),
    uploading: byId("uploading"),
    result: byId("result"),
  };
  private readonly countdownBox = byId<HTMLElement>("countdown");
  private readonly badge = byId<HTMLElement>("state-badge");
  private readonly elapsedText = byId<HTMLElement>("elapsed");
  private readonly recBadge = byId<HTMLElement>("rec-badge");
  private readonly recBadgeTime = byId<HTMLElement>("rec-badge-time");
  private readonly reconnectingBox = byId<HTMLElement>("reconnecting");
  private readonly uploadText = byId<HTMLElement>("upload-text");
  private readonly uploadBar = byId<HTMLProgressElement>("upload-progress");
  private readonly shareLink = byId<HTMLInputElement>("share-link");
  private readonly openLink = byId<HTMLAnchorElement>("open");
  private readonly resultTitle = byId<HTMLElement>("result-title");
  private readonly processingText = byId<HTMLElement>("processing");
  private readonly polite = byId<HTMLElement>("announce");
  private readonly assertive = byId<HTMLElement>("announce-now");
  private readonly dialog = byId<HTMLDialogElement>("cancel-dialog");
  private readonly pageTitle = document.title;

  show(stage: Stage): void {
    this.root.dataset["stage"] = stage;
    this.panels.setup.hidden = stage !== "setup";
    this.panels.live.hidden = stage !== "countdown" && stage !== "live";
    this.panels.uploading.hidden = stage !== "uploading";
    if (stage === "uploading") this.uploadText.focus();
    this.panels.result.hidden = stage !== "result";
    this.countdownBox.hidden = stage !== "countdown";
    this.recBadge.hidden = stage !== "live";
    if (stage !== "live") document.title = this.pageTitle;
  }

  error(message: string | null): void {
    this.errorBox.textContent = message ?? "";
    this.errorBox.hidden = !message;
  }

  /** Why the recording stopped when the person did not stop it (a time limit, the server); null hides it. */
  stopReason(message: string | null): void {
    this.stopReasonBox.textContent = message ?? "";
    this.stopReasonBox.hidden = !message;
  }

  /** A line of news beside the controls (an upload retrying, a recording discarded); null hides it. */
  note(message: string | null): void {
    this.noteBox.textContent = message ?? "";
    this.noteBox.hidden = !message;
  }

  announce(text: string): void {
    // Cleared first, so the same words said twice are announced twice.
    this.polite.textContent = "";
    window.setTimeout(() => (this.polite.textContent = text), 50);
  }

  /** Count down from `seconds`, visibly and aloud; resolves false if `cancelled` fires first. */
  countdown(seconds: number, cancelled: AbortSignal): Promise<boolean> {
    this.show("countdown");
    this.phase("connecting");
    this.cancel.focus();
    return new Promise((resolve) => {
      let left = seconds;
      const tick = (): void => {
        if (cancelled.aborted) return resolve(false);
        if (left === 0) return resolve(true);
        this.countdownBox.textContent = String(left);
        this.assertive.textContent = left === seconds ? `Recording starts in ${left}` : String(left);
        left -= 1;
        window.setTimeout(tick, 1000);
      };
      cancelled.addEventListener("abort", () => resolve(false), { once: true });
      tick();
    });
  }

  /** The recording controls for `phase`. */
  phase(phase: Phase): void {
    const [label, tone] = BADGE[phase] ?? ["", ""];
    this.badge.textContent = label;
    this.badge.className = `badge ${tone}`.trim();
    this.root.dataset["phase"] = phase;
    const live = phase === "recording" || phase === "paused";
    this.pause.disabled = !live;
    this.stop.disabled = !live;
    this.cancel.disabled = !(live || phase === "connecting");
    this.pause.textContent = phase === "paused" ? "Resume" : "Pause";
    if (live && this.root.dataset["stage"] !== "live") {
      this.show("live");
      this.stop.focus(); // the controls that had focus (Start, then Cancel) are gone or rarely wanted next
    }
  }

  elapsed(ms: number, recording: boolean): void {
    const text = clock(ms);
    this.elapsedText.textContent = text;
    this.recBadgeTime.textContent = text;
    document.title = `${recording ? "● Recording" : "Paused"} ${text} · framecast`;
  }

  reconnecting(on: boolean): void {
    this.reconnectingBox.hidden = !on;
  }

  uploadProgress(accepted: number, captured: number): void {
    const percent = captured > 0 ? Math.min(100, Math.floor((accepted / captured) * 100)) : 0;
    this.uploadText.textContent = `Uploading… ${percent} %`;
    this.uploadBar.value = percent;
  }

  result(shareUrl: string, note: string): void {
    this.shareLink.value = shareUrl;
    this.openLink.href = shareUrl;
    this.processingText.textContent = note;
    this.show("result");
    this.resultTitle.focus();
  }

  processing(text: string): void {
    this.processingText.textContent = text;
  }

  /** Copy the share link; says so aloud either way. */
  async copyLink(): Promise<void> {
    try {
      await navigator.clipboard.writeText(this.shareLink.value);
      this.announce("Link copied");
      this.copy.dataset["copied"] = "true";
      window.setTimeout(() => delete this.copy.dataset["copied"], 2000);
    } catch {
      this.shareLink.select(); // no clipboard access: leave it selected for the person to copy
      this.announce("Press Control+C or Command+C to copy the selected link");
    }
  }

  /** Ask before discarding; resolves true for "Discard". */
  confirmDiscard(): Promise<boolean> {
    this.dialog.returnValue = "";
    this.dialog.showModal();
    return new Promise((resolve) => {
      this.dialog.addEventListener("close", () => resolve(this.dialog.returnValue === "discard"), { once: true });
    });
  }

  closeDialog(): void {
    if (this.dialog.open) this.dialog.close("keep");
  }
}
