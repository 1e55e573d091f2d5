// One recording in the grid: poster (or a placeholder), an animated preview on hover and keyboard focus, the title
// linking to the watch page, duration, date, a status badge, and the rename, delete and copy-link actions.
// The card is built once and updated in place, so polling never takes focus or an open rename away.

import { clock, day } from "../format";
import { type Badge, type Recording, badgeOf, displayTitle, kindLabel, runningPercent } from "./recording";
import { h, uniqueId } from "./dom";
import { type IconName, icon } from "./icons";

export interface CardActions {
  /** Save a new title; rejects (after showing why) when the server refused it. */
  rename(card: RecordingCard, title: string): Promise<void>;
  remove(card: RecordingCard): void;
  copyLink(card: RecordingCard): void;
  /** A signed media URL stopped working (they last about an hour): fetch the recording again for fresh ones. */
  stale(card: RecordingCard): void;
}

const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

export class RecordingCard {
  readonly element: HTMLLIElement;
  recording: Recording;
  private readonly thumb: HTMLDivElement;
  private readonly placeholder: HTMLDivElement;
  private poster: HTMLImageElement | null = null;
  private readonly badge: HTMLSpanElement;
  private readonly bar: HTMLDivElement;
  private readonly duration: HTMLSpanElement;
  private readonly heading: HTMLHeadingElement;
  private readonly link: HTMLAnchorElement;
  private readonly date: HTMLTimeElement;
  private readonly reason: HTMLSpanElement;
  private readonly buttons: { copy: HTMLButtonElement; rename: HTMLButtonElement; remove: HTMLButtonElement };
  private editor: HTMLFormElement | null = null;

  constructor(
    recording: Recording,
    private readonly actions: CardActions,
  ) {
    this.recording = recording;
    const badgeId = uniqueId("card-badge");
    const metaId = uniqueId("card-meta");
    const durationId = uniqueId("card-duration");
    this.placeholder = h("div", { class: "lib-placeholder" });
    this.badge = h("span", { class: "badge lib-badge", id: badgeId });
    this.bar = h("div", { class: "lib-bar", "aria-hidden": "true" }, h("span"));
    this.duration = h("span", { class: "lib-duration", id: durationId });
    this.thumb = h("div", { class: "lib-thumb" }, this.placeholder, this.badge, this.duration, this.bar);
    this.link = h("a", { class: "lib-link", href: recording.share_url, "aria-describedby": `${badgeId} ${durationId} ${metaId}` });
    this.heading = h("h2", { class: "lib-title" }, this.link);
    this.date = h("time");
    this.reason = h("span", { class: "visually-hidden" });
    this.buttons = {
      copy: actionButton("link", "Copy link"),
      rename: actionButton("pencil", "Rename"),
      remove: actionButton("trash", "Delete"),
    };
    this.buttons.remove.classList.add("danger");
    this.element = h(
      "li",
      { class: "lib-card", "data-id": recording.id },
      this.thumb,
      h(
        "div",
        { class: "lib-body" },
        this.heading,
        h(
          "div",
          { class: "lib-foot" },
          h("p", { class: "lib-meta muted", id: metaId }, this.date, this.reason),
          h("div", { class: "lib-actions" }, this.buttons.copy, this.buttons.rename, this.buttons.remove),
        ),
      ),
    );
    this.buttons.copy.addEventListener("click", () => actions.copyLink(this));
    this.buttons.rename.addEventListener("click", () => this.startRename());
    this.buttons.remove.addEventListener("click", () => actions.remove(this));
    this.element.addEventListener("pointerenter", (event) => {
      if (event.pointerType === "mouse") this.preview(true);
    });
    this.element.addEventListener("pointerleave", () => this.preview(this.link === document.activeElement));
    this.link.addEventListener("focus", () => this.preview(true));
    this.link.addEventListener("blur", () => this.preview(false));
    this.render();
  }

  get title(): string {
    return displayTitle(this.recording);
  }

  update(recording: Recording): void {
    this.recording = recording;
    this.render();
  }

  focus(): void {
    this.link.focus();
  }

  /** Show for a moment that the link was copied. */
  copied(): void {
    const button = this.buttons.copy;
    button.replaceChildren(icon("check"));
    button.title = "Copied";
    window.setTimeout(() => {
      button.replaceChildren(icon("link"));
      button.title = "Copy link";
    }, 1500);
  }

  private render(): void {
    const r = this.recording;
    this.link.href = r.share_url;
    this.link.textContent = this.title;
    this.buttons.copy.setAttribute("aria-label", `Copy link to ${this.title}`);
    this.buttons.rename.setAttribute("aria-label", `Rename ${this.title}`);
    this.buttons.remove.setAttribute("aria-label", `Delete ${this.title}`);
    this.date.dateTime = r.created_at;
    this.date.textContent = day(r.created_at);
    this.duration.textContent = r.duration_ms === null ? "" : clock(r.duration_ms);
    this.duration.hidden = r.duration_ms === null;
    const badge = badgeOf(r);
    renderBadge(this.badge, badge);
    this.reason.textContent = badge?.detail ? `. ${sentence(badge.detail)}` : "";
    renderBar(this.bar, r.status === "PROCESSING" ? runningPercent(r.processing?.playable) : null);
    this.renderPicture();
  }

  private renderPicture(): void {
    const posterUrl = this.recording.playback.poster_url;
    if (posterUrl && !this.poster) {
      // Once shown, a poster stays: a later answer signs the same picture under a new URL, which would only reload it.
      this.poster = h("img", { class: "lib-poster", alt: "", src: posterUrl, decoding: "async", loading: "lazy" });
      this.poster.addEventListener("error", () => this.pictureFailed());
      this.thumb.prepend(this.poster);
      if (this.element.matches(":hover") || document.activeElement === this.link) this.preview(true);
    } else if (!posterUrl && this.poster) {
      this.poster.remove();
      this.poster = null;
    }
    this.placeholder.hidden = this.poster !== null;
    if (this.poster) return;
    const failed = this.recording.status === "FAILED";
    this.placeholder.classList.toggle("failed", failed);
    this.placeholder.replaceChildren(
      icon(failed ? "warning" : placeholderIcon(this.recording), "lib-placeholder-icon"),
      // On a failed card the reason is there to read, not only in the badge's tooltip (touch screens have none).
      h("span", { "aria-hidden": failed ? "true" : null }, failed ? sentence(this.recording.failure_reason ?? "Processing failed.") : kindLabel(this.recording)),
    );
  }

  private pictureFailed(): void {
    const poster = this.poster;
    if (!poster) return;
    const posterUrl = this.recording.playback.poster_url;
    if (poster.dataset.previewing && posterUrl) {
      delete poster.dataset.previewing;
      poster.src = posterUrl;
    } else {
      poster.remove();
      this.poster = null;
      this.placeholder.hidden = false;
    }
    this.actions.stale(this);
  }

  /** Swap the poster for the animated preview (a WebP) while the card is hovered or focused, and back. */
  private preview(on: boolean): void {
    const { poster_url: posterUrl, preview_url: previewUrl } = this.recording.playback;
    if (!this.poster || !posterUrl || !previewUrl) return;
    if (on && !reducedMotion.matches && !this.poster.dataset.previewing) {
      this.poster.dataset.previewing = "true";
      this.poster.src = previewUrl;
    } else if (!on && this.poster.dataset.previewing) {
      delete this.poster.dataset.previewing;
      this.poster.src = posterUrl;
    }
  }

  private startRename(): void {
    if (this.editor) return;
    const inputId = uniqueId("card-title");
    const input = h("input", { id: inputId, type: "text", maxlength: 500, autocomplete: "off", class: "lib-rename-input" });
    input.value = this.recording.title;
    const editor = h("form", { class: "lib-rename" }, h("label", { class: "visually-hidden", for: inputId }, "Title"), input);
    this.editor = editor;
    this.heading.hidden = true;
    this.heading.after(editor);
    input.focus();
    input.select();

    let settled = false;
    const close = (focusBack: boolean): void => {
      settled = true;
      editor.remove();
      this.editor = null;
      this.heading.hidden = false;
      if (focusBack) this.buttons.rename.focus();
    };
    const save = async (): Promise<void> => {
      if (settled) return;
      const title = input.value.trim();
      if (title === this.recording.title) return close(true);
      input.disabled = true;
      try {
        await this.actions.rename(this, title);
        close(true);
      } catch {
        input.disabled = false;
        input.focus(); // the alert says why; the person can fix the title or press Escape
      }
    };
    editor.addEventListener("submit", (event) => {
      event.preventDefault();
      void save();
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        close(true);
      }
    });
    input.addEventListener("blur", () => {
      // Clicking away saves, as in most editors; a disabled input (a save under way) blurs too.
      if (!input.disabled) void save();
    });
  }
}

function actionButton(name: IconName, label: string): HTMLButtonElement {
  return h("button", { type: "button", class: "lib-action", title: label }, icon(name));
}

/** "the file could not be read" -> "The file could not be read". */
export function sentence(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function placeholderIcon(recording: Recording): IconName {
  if (recording.settings.source === "import") return "film";
  if (recording.recording_type === "audio") return "audio";
  return recording.recording_type === "camera" ? "camera" : "screen";
}

export function renderBadge(element: HTMLElement, badge: Badge | null): void {
  element.hidden = badge === null;
  element.textContent = badge?.text ?? "";
  element.className = `badge lib-badge${badge?.tone ? ` ${badge.tone}` : ""}`;
  if (badge?.detail) element.title = badge.detail;
  else element.removeAttribute("title");
}

/** A thin progress bar along the bottom of the picture; hidden when `percent` is null. */
export function renderBar(element: HTMLElement, percent: number | null): void {
  element.hidden = percent === null;
  element.style.setProperty("--progress", `${percent ?? 0}%`);
}
