// Shapes of the JSON API shared by the pages (src/framecast/api/schemas.py is the source of truth).

export type RecordingStatus =
  | "PREPARING"
  | "RECORDING"
  | "PAUSED"
  | "UPLOADING"
  | "PROCESSING"
  | "READY"
  | "FAILED"
  | "ABORTED"
  | "EXPIRED";

export type RecordingType = "screen" | "camera" | "screen_camera" | "audio";

/** One processing stage; `status` is the newest job's (QUEUED, RUNNING, SUCCEEDED, DEAD, CANCELLED). */
export interface Stage {
  status: string;
  progress: number;
  step: string;
  attempts: number;
  error: string | null;
}

/** Signed, short-lived media URLs; each null until published. */
export interface Playback {
  hls_url: string | null;
  poster_url: string | null;
  preview_url: string | null;
  storyboard_url: string | null;
  download_url: string | null;
  /** True while the recording's playlist still grows (a live recording being recorded, docs/live.md). */
  live: boolean;
}
