// A shared recording as GET /api/v1/links/{link_id} returns it, and what the player should show for it.

import type { Playback, Stage } from "../wire";

export type { Playback, Stage };

export interface SharedRecording {
  link_id: string;
  share_url: string;
  embed_url: string;
  title: string;
  description: string;
  status: string;
  recording_type: string;
  duration_ms: number | null;
  created_at: string;
  width?: number | null;
  height?: number | null;
  processing: Record<string, Stage> | null;
  playback: Playback;
  allow_download: boolean;
  recording_id: string | null;
}

/** What the player shows. `live`: the recording is still being recorded and its playlist grows (docs/live.md). */
export type View =
  | { kind: "playable"; hlsUrl: string; live: boolean }
  | { kind: "processing"; progress: number }
  | { kind: "in_progress" }
  | { kind: "failed" }
  | { kind: "unavailable" };

// A recording with something to play in these states is a live one: an upload plays only once processed.
const LIVE_STATUSES: ReadonlySet<string> = new Set(["RECORDING", "PAUSED", "UPLOADING"]);

export function viewOf(shared: SharedRecording): View {
  const hlsUrl = shared.playback.hls_url;
  if (hlsUrl) return { kind: "playable", hlsUrl, live: shared.playback.live || LIVE_STATUSES.has(shared.status) };
  switch (shared.status) {
    case "UPLOADING":
    case "PROCESSING":
    case "READY": // READY without media: published a moment ago, the next poll has the URLs
      return { kind: "processing", progress: stageProgress(shared.processing?.playable) };
    case "PREPARING":
    case "RECORDING":
    case "PAUSED":
      return { kind: "in_progress" };
    case "FAILED":
      return { kind: "failed" };
    default:
      return { kind: "unavailable" };
  }
}

// Stage statuses are the newest job's (QUEUED RUNNING SUCCEEDED DEAD CANCELLED); lower-case names are accepted too.
export function stageDone(stage: Stage | undefined): boolean {
  return /^(succeeded|done)$/i.test(stage?.status ?? "");
}

export function stageFailed(stage: Stage | undefined): boolean {
  return /^(dead|cancelled|failed)$/i.test(stage?.status ?? "");
}

/** A stage that is queued or running: it will publish something later. */
export function stagePending(stage: Stage | undefined): boolean {
  return stage !== undefined && !stageDone(stage) && !stageFailed(stage);
}

function stageProgress(stage: Stage | undefined): number {
  if (!stage) return 0;
  return stageDone(stage) ? 100 : Math.max(0, Math.min(100, Math.round(stage.progress)));
}

/** Whether anything the page shows may still change without the viewer doing anything. */
export function stillChanging(shared: SharedRecording): boolean {
  const view = viewOf(shared);
  if (view.kind === "processing" || view.kind === "in_progress") return true;
  if (view.kind !== "playable") return false;
  return view.live || Object.values(shared.processing ?? {}).some(stagePending);
}

export function panelMessage(view: View): string {
  switch (view.kind) {
    case "processing":
      return `Processing your video… ${view.progress} %`;
    case "in_progress":
      return "This recording is still in progress.";
    case "failed":
      return "This video could not be processed.";
    case "unavailable":
      return "This video is not available.";
    case "playable":
      return "";
  }
}

export function displayTitle(title: string): string {
  return title.trim() || "Untitled recording";
}
