// Importing a video file: a resumable tus upload to /api/v1/uploads/ (the session cookie and CSRF header
// authorize it), shown as a card with its progress until the server has it and its recording takes the card's place.

import { DetailedError, Upload } from "tus-js-client";
import { csrfHeaders } from "../api";
import { megabytes } from "../format";
import { renderBadge, renderBar } from "./card";
import { h } from "./dom";
import { icon } from "./icons";

export interface UploadHooks {
  /** The server named the recording this upload fills (on creation, or on the HEAD of a resumed upload). */
  recordingKnown(upload: UploadCard, recordingId: string): void;
  /** Every byte is in: the recording is processing now. */
  finished(upload: UploadCard, recordingId: string): void;
  /** The person gave the upload up; `recordingId` is its half-made recording, to delete, when known. */
  cancelled(upload: UploadCard, recordingId: string | null): void;
  failed(upload: UploadCard, message: string): void;
}

// The server makes every PATCH durable before answering, so fewer, bigger requests upload faster: on S3 it sends
// the parts of one PATCH several at a time (docs/storage.md). Smaller chunks would lose less on a dropped
// connection, but the server keeps what arrived of a cut request anyway; tus-js-client sends a slice of the file,
// never holding it in memory.
const CHUNK_BYTES = 64 * 1024 * 1024;

/** A title for the recording from the file's name: "Team demo.mov" -> "Team demo". */
export function titleFromFileName(name: string): string {
  return name.replace(/\.[^.\s]{1,5}$/, "").trim() || name;
}

export class UploadCard {
  readonly element: HTMLLIElement;
  recordingId: string | null = null;
  active = true;
  private readonly badge: HTMLSpanElement;
  private readonly bar: HTMLDivElement;
  private readonly detail: HTMLParagraphElement;
  private readonly retry: HTMLButtonElement;
  private readonly cancel: HTMLButtonElement;
  private readonly upload: Upload;

  constructor(
    readonly file: File,
    private readonly hooks: UploadHooks,
  ) {
    const title = titleFromFileName(file.name);
    this.badge = h("span", { class: "badge lib-badge" });
    this.bar = h("div", { class: "lib-bar", "aria-hidden": "true" }, h("span"));
    this.detail = h("p", { class: "lib-meta muted" });
    this.retry = h("button", { type: "button", class: "lib-action", title: "Retry", "aria-label": `Retry upload of ${title}` }, icon("upload"));
    this.retry.hidden = true;
    this.cancel = h("button", { type: "button", class: "lib-action danger", title: "Cancel upload", "aria-label": `Cancel upload of ${title}` }, icon("trash"));
    this.element = h(
      "li",
      { class: "lib-card lib-upload-card" },
      h(
        "div",
        { class: "lib-thumb" },
        h("div", { class: "lib-placeholder" }, icon("upload", "lib-placeholder-icon"), h("span", {}, file.name)),
        this.badge,
        this.bar,
      ),
      h(
        "div",
        { class: "lib-body" },
        h("h2", { class: "lib-title" }, title),
        h("div", { class: "lib-foot" }, this.detail, h("div", { class: "lib-actions" }, this.retry, this.cancel)),
      ),
    );
    this.retry.addEventListener("click", () => this.resume());
    this.cancel.addEventListener("click", () => void this.giveUp());
    this.upload = new Upload(file, {
      endpoint: new URL("/api/v1/uploads/", window.location.href).href,
      headers: csrfHeaders(),
      metadata: { filename: file.name, title, filetype: file.type },
      chunkSize: CHUNK_BYTES,
      retryDelays: [0, 1000, 3000, 5000, 10000],
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onAfterResponse: (_request, response) => {
        const id = response.getHeader("Framecast-Recording-Id");
        if (id && id !== this.recordingId) {
          this.recordingId = id;
          hooks.recordingKnown(this, id);
        }
      },
      onProgress: (sent, total) => this.progress(sent, total),
      onSuccess: () => this.succeeded(),
      onError: (error) => this.failed(uploadErrorMessage(error)),
    });
    this.progress(0, file.size);
    renderBadge(this.badge, { text: "Uploading", tone: "warn" });
  }

  /** Resume a previous upload of the same file (same name, size, type and date) if this browser started one. */
  async start(): Promise<void> {
    try {
      const previous = await this.upload.findPreviousUploads();
      const latest = previous.sort((a, b) => b.creationTime.localeCompare(a.creationTime))[0];
      if (latest) this.upload.resumeFromPreviousUpload(latest);
    } catch {
      // No storage to look in (a private window, say): upload from the start.
    }
    this.upload.start();
  }

  private progress(sent: number, total: number): void {
    const percent = total > 0 ? Math.floor((sent / total) * 100) : 0;
    renderBadge(this.badge, { text: `Uploading ${percent} %`, tone: "warn" });
    renderBar(this.bar, percent);
    this.detail.textContent = `${megabytes(sent)} of ${megabytes(total)}`;
  }

  private succeeded(): void {
    this.active = false;
    this.cancel.hidden = true;
    renderBadge(this.badge, { text: "Processing", tone: "warn" });
    renderBar(this.bar, null);
    this.detail.textContent = `${megabytes(this.file.size)} uploaded`;
    if (this.recordingId) this.hooks.finished(this, this.recordingId);
    else this.failed("The server did not say which recording the upload made. Reload the page to find it.");
  }

  private failed(message: string): void {
    this.active = false;
    renderBadge(this.badge, { text: "Upload failed", tone: "danger", detail: message });
    this.detail.textContent = message;
    this.retry.hidden = false;
    this.hooks.failed(this, message);
  }

  private resume(): void {
    this.active = true;
    this.retry.hidden = true;
    renderBadge(this.badge, { text: "Uploading", tone: "warn" });
    this.upload.start(); // tus asks the server for its offset and goes on from there
  }

  private async giveUp(): Promise<void> {
    this.active = false;
    this.cancel.disabled = true;
    await this.upload.abort(true).catch(() => undefined); // the recording's deletion ends the upload anyway
    this.hooks.cancelled(this, this.recordingId);
  }
}

/** The server's sentence for a refused upload, or what to do when the network failed. */
export function uploadErrorMessage(error: Error): string {
  const response = error instanceof DetailedError ? error.originalResponse : null;
  if (response) {
    try {
      const body = JSON.parse(response.getBody()) as { error?: { message?: string } };
      if (body.error?.message) return body.error.message;
    } catch {
      // not JSON: fall through to the status
    }
    return `The server refused the upload (${response.getStatus()}).`;
  }
  return "The connection failed. Retry to go on from where the upload stopped.";
}
