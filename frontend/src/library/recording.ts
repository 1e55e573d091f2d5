// The recording as the library sees it (RecordingOut in src/framecast/api/schemas.py), and what its state means for a
// card: the badge it wears and whether it is still worth asking the server about.

import type { Playback, RecordingStatus, RecordingType, Stage } from "../wire";

export type { Playback, RecordingStatus, RecordingType, Stage };

export interface Recording {
  id: string;
  status: RecordingStatus;
  title: string;
  recording_type: RecordingType;
  settings: Record<string, unknown>;
  duration_ms: number | null;
  created_at: string;
  failure_reason: string | null;
  /** Per stage (playable, pictures, ladder, download); only on single-recording answers, null before the upload. */
  processing: Record<string, Stage> | null;
  share_url: string;
  playback: Playback;
}

export interface RecordingPage {
  items: Recording[];
  next_cursor: string | null;
}

export type Tone = "" | "ok" | "warn" | "danger" | "live";

export interface Badge {
  text: string;
  tone: Tone;
  /** The longer explanation (a failure reason), shown as a tooltip. */
  detail?: string;
}

const FINISHED_JOB = new Set(["SUCCEEDED", "DEAD", "CANCELLED", "DONE", "FAILED"]);
const SETTLED: ReadonlySet<RecordingStatus> = new Set(["READY", "FAILED", "ABORTED", "EXPIRED"]);

export function displayTitle(recording: Pick<Recording, "title">): string {
  return recording.title.trim() || "Untitled recording";
}

/** The stage's progress as a whole percentage while its job runs, else null. */
export function runningPercent(stage: Stage | undefined): number | null {
  if (!stage || stage.status.toUpperCase() !== "RUNNING") return null;
  return Math.max(0, Math.min(100, Math.floor(stage.progress)));
}

export function badgeOf(recording: Recording): Badge | null {
  switch (recording.status) {
    case "PREPARING":
      return { text: "Preparing", tone: "" };
    case "RECORDING":
      return { text: "Recording", tone: "live" };
    case "PAUSED":
      return { text: "Paused", tone: "warn" };
    case "UPLOADING":
      return { text: "Uploading", tone: "warn" };
    case "PROCESSING": {
      const percent = runningPercent(recording.processing?.playable);
      return { text: percent === null ? "Processing" : `Processing ${percent} %`, tone: "warn" };
    }
    case "FAILED":
      return { text: "Failed", tone: "danger", detail: recording.failure_reason ?? "Processing failed." };
    case "ABORTED":
      return { text: "Discarded", tone: "" };
    case "EXPIRED":
      return { text: "Expired", tone: "" };
    case "READY":
      return null;
  }
}

/**
 * Whether the card should keep asking for the recording: until it settles, and for a READY one until its pictures
 * are made (the poster comes a little after the video plays) or their job gave up. The ladder may still be encoding
 * more qualities then; the card shows nothing of that, so it stops.
 */
export function worthPolling(recording: Recording): boolean {
  if (!SETTLED.has(recording.status)) return true;
  if (recording.status !== "READY" || recording.playback.poster_url) return false;
  if (recording.processing === null) return true; // a list answer: one single GET tells
  const pictures = recording.processing.pictures;
  return pictures !== undefined && !FINISHED_JOB.has(pictures.status.toUpperCase());
}

export function kindLabel(recording: Recording): string {
  if (recording.settings.source === "import") return "Video";
  switch (recording.recording_type) {
    case "screen":
      return "Screen";
    case "camera":
      return "Camera";
    case "screen_camera":
      return "Screen and camera";
    case "audio":
      return "Audio";
  }
}
