// WebM (and MP4 that is not fragmented; fragmented MP4 goes up as live segments, recorder/live.ts) goes up while it
// is being made: one tus partial upload of deferred length (docs/protocol.md, "Uploading while recording"), fed
// from the MediaRecorder's chunks; at stop the stream ends, the part learns its length, and a final upload names
// it, which completes the recording on the server (then processing makes it playable).
//
// Nothing is lost to a network blip: chunks wait in the stream (in memory) until tus-js-client reads them, and its
// stream source keeps what it read until the server has acknowledged it; a failed request is retried, resuming
// from the offset the server reports (HEAD).

import { Upload, type DetailedError } from "tus-js-client";

import { api, csrfHeaders } from "../api";
import type { Transport, TransportEvents } from "./transport";

const UPLOADS = "/api/v1/uploads/";
// A PATCH goes out once this much is waiting: every second or two while recording at the bitrates we ask for, so
// little is left to send at stop.
const CHUNK_BYTES = 512 * 1024;
const RETRY_DELAYS_MS = [0, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000, 15_000, 15_000, 15_000, 15_000];
const RESTART_MS = 15_000;
export const OFFLINE = "Can't reach the server. Keep this tab open: the upload picks up where it left off when the connection is back.";

/** The server will not take the upload; the message says why (and retrying will not help). */
export class UploadRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UploadRefused";
  }
}

export interface PartEvents {
  /** Bytes the server holds. */
  progress(accepted: number): void;
  /** Null once requests go through again; otherwise a sentence about the trouble (uploading is being retried). */
  trouble(message: string | null): void;
}

export class PartUpload {
  /** Bytes handed to the upload so far. */
  captured = 0;
  accepted = 0;
  /** Resolves with the part's URL once the server holds all of it (after `end()`). */
  readonly done: Promise<string>;
  private readonly controller: ReadableStreamDefaultController<Blob>;
  private readonly upload: Upload;
  private ended = false;
  private restart: number | undefined;

  constructor(recordingId: string, filename: string, events: PartEvents) {
    let controller: ReadableStreamDefaultController<Blob> | undefined;
    const stream = new ReadableStream<Blob>({
      start(c) {
        controller = c;
      },
    });
    if (!controller) throw new Error("ReadableStream did not start");
    this.controller = controller;
    let resolve: (url: string) => void = () => undefined;
    let reject: (error: Error) => void = () => undefined;
    this.done = new Promise<string>((yes, no) => {
      resolve = yes;
      reject = no;
    });
    this.done.catch(() => undefined); // the session awaits it at stop; meanwhile a refusal is reported by `trouble`
    const upload: Upload = new Upload(stream.getReader(), {
      endpoint: UPLOADS,
      chunkSize: CHUNK_BYTES,
      uploadLengthDeferred: true,
      metadata: { recording_id: recordingId, filename },
      headers: csrfHeaders(),
      retryDelays: RETRY_DELAYS_MS,
      storeFingerprintForResuming: false,
      removeFingerprintOnSuccess: false,
      onBeforeRequest(req) {
        if (req.getMethod() === "POST") req.setHeader("Upload-Concat", "partial");
      },
      onShouldRetry: (error) => {
        const again = retriable(error);
        if (again && (error.originalResponse?.getStatus() ?? 0) === 0) events.trouble(OFFLINE);
        return again;
      },
      onChunkComplete: (_size, accepted) => {
        this.accepted = accepted;
        events.trouble(null);
        events.progress(accepted);
      },
      onSuccess: () => {
        events.trouble(null);
        resolve(upload.url ?? "");
      },
      onError: (error) => {
        if (retriable(error as DetailedError)) {
          // Out of quick retries: keep trying, slowly, for as long as the page is open; the bytes are still here.
          events.trouble(OFFLINE);
          this.restart = window.setTimeout(() => upload.start(), RESTART_MS);
          return;
        }
        const refused = new UploadRefused(errorMessage(error));
        events.trouble(refused.message);
        reject(refused);
      },
    });
    this.upload = upload;
    upload.start();
  }

  /** Queue a chunk of the recording. */
  push(chunk: Blob): void {
    if (this.ended || chunk.size === 0) return;
    this.captured += chunk.size;
    this.controller.enqueue(chunk);
  }

  /** No more chunks: the part's length is what was pushed, declared with the last PATCH. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.controller.close();
  }

  /** Stop uploading and remove the part from the server (a cancelled recording). */
  async discard(): Promise<void> {
    window.clearTimeout(this.restart);
    this.ended = true;
    const terminated = this.upload.abort(true);
    this.controller.error(new Error("the recording was discarded")); // a pending read ends, and no PATCH follows
    try {
      await terminated;
    } catch {
      // the part expires on its own on the server
    }
  }
}

/** A recording sent as one tus part while it is recorded, assembled into the final upload after stop. */
export class TusTransport implements Transport {
  readonly kind = "tus";
  private readonly part: PartUpload;

  constructor(
    private readonly recordingId: string,
    filename: string,
    private readonly events: TransportEvents,
  ) {
    this.part = new PartUpload(recordingId, filename, {
      progress: (accepted) => events.progress(accepted, this.part.captured),
      trouble: (message) => events.trouble(message),
    });
  }

  get captured(): number {
    return this.part.captured;
  }

  get accepted(): number {
    return this.part.accepted;
  }

  push(chunk: Blob): void {
    this.part.push(chunk);
  }

  end(): void {
    this.part.end();
  }

  async finish(): Promise<void> {
    const url = await this.part.done;
    await finishUpload(this.recordingId, url, (message) => this.events.trouble(message));
  }

  discard(): Promise<void> {
    return this.part.discard();
  }
}

/** Assemble the finished part into the final upload, which completes the recording (UPLOADING -> PROCESSING).
 * Retried while the server is unreachable; a final upload whose answer was lost is recognised by the recording
 * having moved on. */
export async function finishUpload(recordingId: string, partUrl: string, trouble: (message: string | null) => void): Promise<void> {
  const headers = {
    ...csrfHeaders(),
    "Tus-Resumable": "1.0.0",
    "Upload-Concat": `final;${new URL(partUrl, location.href).pathname}`,
    "Upload-Metadata": `recording_id ${base64(recordingId)}`,
  };
  for (let attempt = 0; ; attempt += 1) {
    let response: Response | null = null;
    try {
      response = await fetch(UPLOADS, { method: "POST", headers, credentials: "same-origin" });
    } catch {
      response = null;
    }
    if (response?.status === 201) return trouble(null);
    if (response && response.status >= 400 && response.status < 500 && response.status !== 423) {
      const message = await response
        .json()
        .then((body: { error?: { message?: string } }) => body.error?.message)
        .catch(() => undefined);
      if (await alreadyFinished(recordingId)) return trouble(null);
      throw new UploadRefused(message ?? `the server refused the upload (${response.status})`);
    }
    trouble(OFFLINE);
    await sleep(RETRY_DELAYS_MS[Math.min(attempt + 1, RETRY_DELAYS_MS.length - 1)] ?? RESTART_MS);
  }
}

async function alreadyFinished(recordingId: string): Promise<boolean> {
  try {
    const recording = await api<{ status: string }>(`/api/v1/recordings/${recordingId}`);
    return ["PROCESSING", "READY"].includes(recording.status);
  } catch {
    return false;
  }
}

/** Worth another try: no answer at all, a server error, a lock, or an offset the server sees differently (tus
 * resumes from HEAD's). Other refusals (the recording was aborted, deleted, the session ended) are final. */
function retriable(error: DetailedError | Error): boolean {
  const response = "originalResponse" in error ? error.originalResponse : null;
  if (!("originalRequest" in error) || !error.originalRequest) return false;
  const status = response?.getStatus() ?? 0;
  if (status === 0 || status >= 500 || status === 423) return true;
  return status === 409 && errorCode(response?.getBody() ?? "") === "offset_mismatch";
}

function errorCode(body: string): string {
  try {
    return String((JSON.parse(body) as { error?: { code?: string } }).error?.code ?? "");
  } catch {
    return "";
  }
}

function errorMessage(error: Error): string {
  const body = "originalResponse" in error ? (error as DetailedError).originalResponse?.getBody() : undefined;
  try {
    const message = (JSON.parse(body ?? "") as { error?: { message?: string } }).error?.message;
    if (message) return `The server refused the upload: ${message}`;
  } catch {
    // not JSON: fall through
  }
  return `The upload failed: ${error.message}`;
}

function base64(text: string): string {
  return btoa(String.fromCharCode(...new TextEncoder().encode(text)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => window.setTimeout(resolve, ms));
}
