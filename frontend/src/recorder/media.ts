// Capture devices and the recorder's format: cameras, microphones, the screen, and which container and codecs this
// browser can record (MP4/H.264 where offered, WebM otherwise).

export type Mode = "screen" | "camera" | "screen_camera" | "audio";

export const MODES: readonly Mode[] = ["screen", "camera", "screen_camera", "audio"];

export function usesCamera(mode: Mode): boolean {
  return mode === "camera" || mode === "screen_camera";
}

export function usesScreen(mode: Mode): boolean {
  return mode === "screen" || mode === "screen_camera";
}

export interface Size {
  width: number;
  height: number;
}

export interface Device {
  id: string;
  label: string;
  /** False when the browser hid the name (no permission yet) and the label is a numbered stand-in. */
  named: boolean;
}

/** Cameras and microphones; labels are empty until the person has allowed access, so they get numbered names. */
export async function listDevices(): Promise<{ cameras: Device[]; microphones: Device[] }> {
  if (!navigator.mediaDevices?.enumerateDevices) return { cameras: [], microphones: [] };
  const devices = await navigator.mediaDevices.enumerateDevices();
  const named = (kind: MediaDeviceKind, noun: string): Device[] =>
    devices
      .filter((device) => device.kind === kind && device.deviceId !== "")
      .map((device, index) => ({ id: device.deviceId, label: device.label || `${noun} ${index + 1}`, named: device.label !== "" }));
  return { cameras: named("videoinput", "Camera"), microphones: named("audioinput", "Microphone") };
}

export async function openCamera(deviceId: string): Promise<MediaStream> {
  return navigator.mediaDevices.getUserMedia({
    video: {
      ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
      width: { ideal: 1280 },
      height: { ideal: 720 },
      frameRate: { ideal: 30 },
    },
    audio: false,
  });
}

export async function openMicrophone(deviceId: string): Promise<MediaStream> {
  return navigator.mediaDevices.getUserMedia({
    audio: { ...(deviceId ? { deviceId: { exact: deviceId } } : {}), echoCancellation: true, noiseSuppression: true },
    video: false,
  });
}

/** Ask for a screen, window or tab (the browser's own picker), with its sound when the browser offers that. */
export async function openScreen(): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getDisplayMedia) {
    throw new CaptureError("This browser cannot record the screen. Choose Camera or Audio only, or use a desktop browser.");
  }
  // systemAudio and selfBrowserSurface are hints some browsers take; the others ignore unknown members.
  const options = {
    video: { frameRate: { ideal: 30 }, width: { max: 1920 }, height: { max: 1080 } },
    audio: true,
    systemAudio: "include",
    selfBrowserSurface: "exclude",
  } as DisplayMediaStreamOptions;
  return navigator.mediaDevices.getDisplayMedia(options);
}

/** A capture the person can fix (permission refused, no device): the message says what to do. */
export class CaptureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CaptureError";
  }
}

/** The sentence to show when getUserMedia/getDisplayMedia fails; `what` is "camera", "microphone" or "screen". */
export function captureProblem(error: unknown, what: string): CaptureError {
  if (error instanceof CaptureError) return error;
  const name = error instanceof DOMException ? error.name : "";
  switch (name) {
    case "NotAllowedError":
    case "SecurityError":
      return what === "screen"
        ? new CaptureError("Screen sharing was not allowed. Choose what to share when the browser asks, or pick another mode.")
        : new CaptureError(`The browser was not allowed to use your ${what}. Allow it in the address bar's site settings, then try again.`);
    case "NotFoundError":
    case "OverconstrainedError":
      return new CaptureError(`No ${what} was found. Connect one, or choose another in the list.`);
    case "NotReadableError":
    case "AbortError":
      return new CaptureError(`Your ${what} is busy or could not start. Close other apps that use it, then try again.`);
    default:
      return new CaptureError(`Could not open your ${what}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

// Preferred first. MP4/H.264 where the browser records it (Chromium 126+, Safari): its fragments go up as live fMP4
// segments played with no transcode; Chromium builds without an AAC encoder offer H.264 with Opus. WebM (VP9, VP8)
// for the rest (Firefox): it goes up as live WebM segments that the server transcodes as they arrive.
const VIDEO_TYPES = [
  "video/mp4;codecs=avc1.42E01F,mp4a.40.2",
  "video/mp4;codecs=avc1.42E01F,opus",
  "video/webm;codecs=vp9,opus",
  "video/webm;codecs=vp8,opus",
  "video/webm",
  "video/mp4",
];
const AUDIO_TYPES = ["audio/mp4;codecs=mp4a.40.2", "audio/mp4", "audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus"];

/** The first MIME type MediaRecorder offers for this kind of recording, or null when it records neither. */
export function chooseMimeType(video: boolean): string | null {
  if (typeof MediaRecorder === "undefined") return null;
  return (video ? VIDEO_TYPES : AUDIO_TYPES).find((type) => MediaRecorder.isTypeSupported(type)) ?? null;
}

/** "recording.mp4", "recording.webm", ...: what the server names the upload. */
export function fileName(mimeType: string): string {
  const sub = mimeType.split(";")[0]?.split("/")[1] ?? "webm";
  return `recording.${sub === "mp4" ? (mimeType.startsWith("audio") ? "m4a" : "mp4") : sub}`;
}

/** A MediaRecorder for `stream`: a bitrate for the picture size and, for video, a keyframe every second (every live
 * segment starts on one: Chromium starts an MP4 fragment at each, and WebM is cut before a Cluster that starts with
 * one, so keyframes far apart make long segments). Chromium takes that as a duration; others may take a frame count;
 * giving both is an error in Chromium, so the duration is offered first and the count only where it was not read. */
export function createRecorder(stream: MediaStream, mimeType: string, size: Size | null): MediaRecorder {
  const base: MediaRecorderOptions = { mimeType, audioBitsPerSecond: 128_000 };
  if (!size) return new MediaRecorder(stream, base);
  const pixels = size.width * size.height;
  base.videoBitsPerSecond = pixels > 1280 * 720 ? 5_000_000 : pixels > 854 * 480 ? 2_500_000 : 1_500_000;
  let durationRead = false;
  const withDuration = {
    ...base,
    get videoKeyFrameIntervalDuration(): number {
      durationRead = true;
      return 1000;
    },
  };
  try {
    const recorder = new MediaRecorder(stream, withDuration);
    if (durationRead) return recorder;
    return new MediaRecorder(stream, { ...base, videoKeyFrameIntervalCount: 30 } as MediaRecorderOptions);
  } catch {
    return new MediaRecorder(stream, base);
  }
}

let sharedContext: AudioContext | null = null;

/** The page's one AudioContext (mixing and the level meter), made on first use and woken if the browser suspended
 * it (browsers start audio only after the person has interacted with the page). */
export function audioContext(): AudioContext {
  sharedContext ??= new AudioContext();
  if (sharedContext.state === "suspended") void sharedContext.resume().catch(() => undefined);
  return sharedContext;
}

/** One audio track from several (screen sound and microphone), mixed in Web Audio; null when there are none. */
export function mixAudio(context: AudioContext, tracks: MediaStreamTrack[]): MediaStreamTrack | null {
  if (tracks.length === 0) return null;
  if (tracks.length === 1) return tracks[0] ?? null;
  const destination = context.createMediaStreamDestination();
  for (const track of tracks) context.createMediaStreamSource(new MediaStream([track])).connect(destination);
  return destination.stream.getAudioTracks()[0] ?? null;
}

/** A track's picture size, even on both sides (H.264 encoders want that). */
export function frameSize(track: MediaStreamTrack | undefined): Size | null {
  if (!track) return null;
  const { width, height } = track.getSettings();
  if (!width || !height) return null;
  return { width: width - (width % 2), height: height - (height % 2) };
}

export function stopTracks(stream: MediaStream | null): void {
  for (const track of stream?.getTracks() ?? []) track.stop();
}
