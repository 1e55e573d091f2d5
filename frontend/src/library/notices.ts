// What the page tells the person: errors in the alert region, status changes in a polite live region.

import { ApiError } from "../api";

export interface Notices {
  /** Show an error; keeps the newest one only. */
  error(message: string): void;
  clearError(): void;
  /** Say something to screen reader users without moving focus (the visible page shows it already). */
  announce(message: string): void;
}

export function notices(alert: HTMLElement, live: HTMLElement): Notices {
  const text = alert.querySelector<HTMLElement>("[data-message]") ?? alert;
  alert.querySelector<HTMLButtonElement>("[data-dismiss]")?.addEventListener("click", () => {
    alert.hidden = true;
  });
  return {
    error(message) {
      if (!message) return; // a cancelled request: nothing went wrong
      text.textContent = message;
      alert.hidden = false;
    },
    clearError() {
      alert.hidden = true;
    },
    announce(message) {
      // The same sentence twice in a row would not be read again unless the region changes in between.
      live.textContent = "";
      window.setTimeout(() => {
        live.textContent = message;
      }, 50);
    },
  };
}

/** The sentence to show for a failed call: the server's message, or what to do when the network failed. */
export function messageOf(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof DOMException && error.name === "AbortError") return "";
  return "Could not reach framecast. Check your connection and try again.";
}
