// Keeps cards whose recording is still on its way up to date, while the page is visible, and stops once none needs
// it. What moves fast (an upload finishing, processing, the pictures coming) is asked for every 2 seconds; a session
// still being recorded elsewhere, which may last hours, every 10.

import type { RecordingCard } from "./card";
import { type Recording, worthPolling } from "./recording";

const TICK_MS = 2000;
const CAPTURING_MS = 10_000;

function interval(recording: Recording): number {
  return ["PREPARING", "RECORDING", "PAUSED"].includes(recording.status) ? CAPTURING_MS : TICK_MS;
}

export class Poller {
  private timer: number | null = null;
  private readonly lastAsked = new WeakMap<RecordingCard, number>();

  constructor(
    private readonly cards: () => Iterable<RecordingCard>,
    private readonly refresh: (card: RecordingCard) => Promise<void>,
  ) {
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.kick();
    });
  }

  /** Start polling if a card needs it and it is not running already. */
  kick(): void {
    if (this.timer === null && this.pending().length > 0) this.schedule();
  }

  private pending(): RecordingCard[] {
    return [...this.cards()].filter((card) => worthPolling(card.recording));
  }

  private schedule(): void {
    this.timer = window.setTimeout(() => void this.tick(), TICK_MS);
  }

  private async tick(): Promise<void> {
    const pending = this.pending();
    if (document.hidden || pending.length === 0) {
      this.timer = null; // the visibilitychange listener or the next new card starts it again
      return;
    }
    const now = Date.now();
    // Half a tick of slack, so a card asked for at the last tick is due at this one despite timer jitter.
    const due = pending.filter((card) => now - (this.lastAsked.get(card) ?? 0) >= interval(card.recording) - TICK_MS / 2);
    for (const card of due) this.lastAsked.set(card, now);
    await Promise.allSettled(due.map((card) => this.refresh(card)));
    this.schedule();
  }
}
