// Full screen with the standard API, Safari's prefixed one on macOS/iPadOS, and the video-only mode of iPhone Safari.

interface WebkitDocument {
  webkitFullscreenEnabled?: boolean;
  webkitFullscreenElement?: Element | null;
  webkitExitFullscreen?: () => void;
}

interface WebkitElement {
  webkitRequestFullscreen?: () => void;
}

interface WebkitVideo {
  webkitSupportsFullscreen?: boolean;
  webkitEnterFullscreen?: () => void;
  webkitDisplayingFullscreen?: boolean;
}

const doc = document as Document & WebkitDocument;

export function fullscreenAvailable(video: HTMLVideoElement): boolean {
  return Boolean(doc.fullscreenEnabled || doc.webkitFullscreenEnabled || (video as WebkitVideo).webkitSupportsFullscreen);
}

export function isFullscreen(root: Element): boolean {
  const element = doc.fullscreenElement ?? doc.webkitFullscreenElement ?? null;
  return element !== null && (element === root || root.contains(element));
}

export function toggleFullscreen(root: HTMLElement, video: HTMLVideoElement): void {
  if (isFullscreen(root)) {
    if (doc.exitFullscreen) void doc.exitFullscreen().catch(() => undefined);
    else doc.webkitExitFullscreen?.();
    return;
  }
  if (root.requestFullscreen && doc.fullscreenEnabled) void root.requestFullscreen().catch(() => undefined);
  else if ((root as WebkitElement).webkitRequestFullscreen) (root as WebkitElement).webkitRequestFullscreen?.();
  else (video as WebkitVideo).webkitEnterFullscreen?.();
}

export function onFullscreenChange(listener: () => void): void {
  document.addEventListener("fullscreenchange", listener);
  document.addEventListener("webkitfullscreenchange", listener);
}
