// The cards on the page, in order: uploads under way first, then recordings newest first, one card per recording.

import { type CardActions, RecordingCard } from "./card";
import type { Recording } from "./recording";
import type { UploadCard } from "./uploads";

export class Grid {
  readonly cards = new Map<string, RecordingCard>();

  constructor(
    private readonly list: HTMLElement,
    private readonly actions: CardActions,
  ) {}

  get isEmpty(): boolean {
    return this.list.childElementCount === 0;
  }

  /** Show these recordings instead of the current ones (as a new search does); uploads under way stay. */
  replace(recordings: Recording[]): void {
    for (const card of this.cards.values()) card.element.remove();
    this.cards.clear();
    this.append(recordings);
  }

  /** Add recordings at the end (the next page), skipping any already shown. */
  append(recordings: Recording[]): void {
    for (const recording of recordings) {
      if (this.cards.has(recording.id)) continue;
      const card = new RecordingCard(recording, this.actions);
      this.cards.set(recording.id, card);
      this.list.append(card.element);
    }
  }

  addUpload(upload: UploadCard): void {
    this.list.prepend(upload.element);
  }

  /** The recording the upload made takes the upload card's place. */
  settleUpload(upload: UploadCard, recording: Recording): RecordingCard {
    this.cards.get(recording.id)?.element.remove();
    const card = new RecordingCard(recording, this.actions);
    this.cards.set(recording.id, card);
    upload.element.replaceWith(card.element);
    return card;
  }

  /** Remove a card; answers the card that now stands where it was (or before it), for focus. */
  remove(id: string): RecordingCard | null {
    const card = this.cards.get(id);
    if (!card) return null;
    const cards = [...this.cards.values()];
    const at = cards.indexOf(card);
    card.element.remove();
    this.cards.delete(id);
    return cards[at + 1] ?? cards[at - 1] ?? null;
  }
}
