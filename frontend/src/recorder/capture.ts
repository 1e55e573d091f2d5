// What gets recorded for each mode: the screen (with its sound, mixed with the microphone), the camera, both on one
// canvas, or the microphone alone, as one MediaStream for the MediaRecorder.

import { compose } from "./compose";
import { audioContext, CaptureError, captureProblem, frameSize, mixAudio, openScreen, stopTracks, type Mode, type Size } from "./media";

export interface Sources {
  camera: MediaStream | null;
  microphone: MediaStream | null;
}

export interface Built {
  /** What the recorder records. */
  stream: MediaStream;
  /** What the preview shows while recording (null for audio only). */
  preview: MediaStream | null;
  size: Size | null;
  /** Call `ended` once if a source ends by itself (the person stops sharing in the browser's own bar). */
  onSourceEnded(ended: () => void): void;
  /** Stop every device and drawing; the camera light goes off. */
  stop(): void;
}

/** Build the recorded stream for `mode` from the setup's open devices; asks for the screen when the mode needs it.
 * Throws CaptureError with a sentence to show. The built capture owns `sources` from here on. */
export async function buildCapture(mode: Mode, sources: Sources): Promise<Built> {
  const micTrack = sources.microphone?.getAudioTracks()[0];
  const cameraTrack = sources.camera?.getVideoTracks()[0];
  if (mode === "audio" && !micTrack) throw new CaptureError("Choose a microphone: an audio-only recording needs one.");
  if ((mode === "camera" || mode === "screen_camera") && !cameraTrack) {
    throw new CaptureError("No camera is open. Choose one in the list, or allow the browser to use it.");
  }
  let screen: MediaStream | null = null;
  if (mode === "screen" || mode === "screen_camera") {
    try {
      screen = await openScreen();
    } catch (error) {
      throw captureProblem(error, "screen");
    }
  }
  const stops: (() => void)[] = [() => stopTracks(screen), () => stopTracks(sources.camera), () => stopTracks(sources.microphone)];
  const audio = mixAudio(audioContext(), [...(screen?.getAudioTracks() ?? []), ...(micTrack ? [micTrack] : [])]);
  let video: MediaStreamTrack | null = null;
  let size: Size | null = null;
  const screenTrack = screen?.getVideoTracks()[0];
  if (mode === "screen" && screenTrack) {
    video = screenTrack;
    size = frameSize(screenTrack);
  } else if (mode === "camera" && cameraTrack) {
    video = cameraTrack;
    size = frameSize(cameraTrack);
  } else if (mode === "screen_camera" && screen && sources.camera && screenTrack) {
    size = frameSize(screenTrack) ?? { width: 1280, height: 720 };
    const composition = compose(screen, sources.camera, size);
    stops.push(() => composition.stop());
    video = composition.track;
  }
  if (audio && audio !== micTrack && !screen?.getAudioTracks().includes(audio)) stops.push(() => audio.stop());
  const stream = new MediaStream([...(video ? [video] : []), ...(audio ? [audio] : [])]);
  const watched = mode === "camera" ? cameraTrack : mode === "audio" ? micTrack : screenTrack;
  return {
    stream,
    preview: video ? new MediaStream([video]) : null,
    size,
    onSourceEnded(ended) {
      watched?.addEventListener("ended", ended, { once: true });
    },
    stop() {
      for (const stop of stops) stop();
    },
  };
}
