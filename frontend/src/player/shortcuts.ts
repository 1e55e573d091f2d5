// Keyboard shortcuts, active while focus is in the player or nowhere in particular (the page body), never while
// typing. Keys a focused control already handles (Space on a button, arrows on a slider or in a menu) stay its own.
import type { Controls } from "./controls";

const SEEK_ARROW_S = 5;
const SEEK_JL_S = 10;
const VOLUME_STEP = 0.1;

export function bindShortcuts(root: HTMLElement, controls: Controls): void {
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target instanceof Element ? event.target : null;
    if (!inScope(root, target) || ownsKey(target, event.key)) return;
    const action = actionFor(event.key, controls);
    if (!action) return;
    event.preventDefault();
    action();
  });
}

function inScope(root: HTMLElement, target: Element | null): boolean {
  return target === null || target === document.body || target === document.documentElement || root.contains(target);
}

/** Whether the focused element uses this key itself. */
function ownsKey(target: Element | null, key: string): boolean {
  if (!target) return false;
  if (target.closest('[role="menu"]')) return true;
  if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
  if (target instanceof HTMLElement && target.isContentEditable) return true;
  if (target instanceof HTMLInputElement) {
    if (target.type !== "range") return true;
    return key.startsWith("Arrow") || key === "Home" || key === "End" || key.startsWith("Page");
  }
  const activates = key === " " || key === "Enter";
  return activates && target.closest("button, a[href], summary, [role='button']") !== null;
}

function actionFor(key: string, controls: Controls): (() => void) | null {
  switch (key) {
    case " ":
    case "k":
    case "K":
      return () => controls.togglePlay();
    case "j":
    case "J":
      return () => controls.seekBy(-SEEK_JL_S);
    case "l":
    case "L":
      return () => controls.seekBy(SEEK_JL_S);
    case "ArrowLeft":
      return () => controls.seekBy(-SEEK_ARROW_S);
    case "ArrowRight":
      return () => controls.seekBy(SEEK_ARROW_S);
    case "ArrowUp":
      return () => controls.volumeBy(VOLUME_STEP);
    case "ArrowDown":
      return () => controls.volumeBy(-VOLUME_STEP);
    case "m":
    case "M":
      return () => controls.toggleMute();
    case "f":
    case "F":
      return () => controls.toggleFullscreen();
    case "c":
    case "C":
      return () => controls.toggleCaptions();
    case "<":
      return () => controls.speedStep(-1);
    case ">":
      return () => controls.speedStep(1);
    default:
      if (/^[0-9]$/.test(key)) return () => controls.seekToFraction(Number(key) / 10);
      return null;
  }
}
