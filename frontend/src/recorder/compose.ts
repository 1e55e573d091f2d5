// Screen + camera: the screen with the camera as a round bubble in the bottom-left corner, drawn onto a canvas whose
// stream the recorder records.

import type { Size } from "./media";

const FPS = 30;

export interface Composition {
  /** The canvas's video track at 30 fps. */
  track: MediaStreamTrack;
  stop(): void;
}

/** Draw `screen` and `camera` onto a canvas of `size` until stopped. */
export function compose(screen: MediaStream, camera: MediaStream, size: Size): Composition {
  const canvas = document.createElement("canvas");
  canvas.width = size.width;
  canvas.height = size.height;
  const context = canvas.getContext("2d", { alpha: false });
  if (!context) throw new Error("this browser cannot draw on a canvas");
  const screenVideo = playing(screen);
  const cameraVideo = playing(camera);
  const draw = (): void => drawFrame(context, size, screenVideo, cameraVideo);
  draw();
  const ticker = startTicker(draw, 1000 / FPS);
  const track = canvas.captureStream(FPS).getVideoTracks()[0];
  if (!track) throw new Error("this browser cannot record a canvas");
  return {
    track,
    stop() {
      ticker();
      track.stop();
      screenVideo.srcObject = null;
      cameraVideo.srcObject = null;
    },
  };
}

function playing(stream: MediaStream): HTMLVideoElement {
  const video = document.createElement("video");
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  void video.play().catch(() => undefined); // a muted video may always play; a refusal leaves the last frame
  return video;
}

function drawFrame(context: CanvasRenderingContext2D, size: Size, screen: HTMLVideoElement, camera: HTMLVideoElement): void {
  const { width, height } = size;
  context.fillStyle = "#000";
  context.fillRect(0, 0, width, height);
  if (screen.videoWidth > 0) {
    // A shared window can change size mid-recording: fit it, letterboxed, rather than stretch it.
    const scale = Math.min(width / screen.videoWidth, height / screen.videoHeight);
    const w = screen.videoWidth * scale;
    const h = screen.videoHeight * scale;
    context.drawImage(screen, (width - w) / 2, (height - h) / 2, w, h);
  }
  if (camera.videoWidth > 0) {
    const diameter = Math.round(Math.min(width, height) * 0.26);
    const margin = Math.round(diameter * 0.14);
    const x = margin;
    const y = height - margin - diameter;
    const side = Math.min(camera.videoWidth, camera.videoHeight);
    context.save();
    context.beginPath();
    context.arc(x + diameter / 2, y + diameter / 2, diameter / 2, 0, Math.PI * 2);
    context.closePath();
    context.clip();
    context.drawImage(
      camera,
      (camera.videoWidth - side) / 2,
      (camera.videoHeight - side) / 2,
      side,
      side,
      x,
      y,
      diameter,
      diameter,
    );
    context.restore();
    context.lineWidth = Math.max(2, Math.round(diameter / 40));
    context.strokeStyle = "rgb(255 255 255 / 85%)";
    context.beginPath();
    context.arc(x + diameter / 2, y + diameter / 2, diameter / 2, 0, Math.PI * 2);
    context.stroke();
  }
}

// A worker's timer keeps its pace while this tab is in the background (the person is showing another window), where
// the page's own timers and animation frames are slowed to a crawl or stopped.
const TICKER_SOURCE = "let t; onmessage = (e) => { clearInterval(t); if (e.data > 0) t = setInterval(() => postMessage(0), e.data); };";

/** Call `tick` every `ms` milliseconds; returns the function that stops it. */
function startTicker(tick: () => void, ms: number): () => void {
  try {
    const url = URL.createObjectURL(new Blob([TICKER_SOURCE], { type: "text/javascript" }));
    const worker = new Worker(url);
    URL.revokeObjectURL(url);
    let fallback: number | undefined;
    worker.onmessage = tick;
    worker.onerror = () => {
      fallback ??= window.setInterval(tick, ms); // the worker was refused after all (some browsers say so late)
    };
    worker.postMessage(ms);
    return () => {
      worker.terminate();
      window.clearInterval(fallback);
    };
  } catch {
    const timer = window.setInterval(tick, ms); // a Content-Security-Policy without blob: workers
    return () => window.clearInterval(timer);
  }
}
