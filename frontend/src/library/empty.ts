// What the grid says when it has nothing to show: how to make a first recording, or that a search found none.

import { h } from "./dom";
import { icon } from "./icons";

export function renderEmpty(container: HTMLElement, query: string, act: { clear(): void; upload(): void }): void {
  if (query) {
    const clear = h("button", { type: "button" }, "Clear search");
    clear.addEventListener("click", act.clear);
    container.replaceChildren(
      h("h2", {}, `No recordings match “${query}”`),
      h("p", { class: "muted" }, "Search looks at titles. Try fewer or other words."),
      h("p", { class: "lib-empty-actions" }, clear),
    );
    return;
  }
  const upload = h("button", { type: "button" }, "Choose a video file");
  upload.addEventListener("click", act.upload);
  container.replaceChildren(
    icon("film", "lib-empty-icon"),
    h("h2", {}, "No recordings yet"),
    h("p", { class: "muted" }, "Record your screen or camera, or upload a video you already have. You can also drop a file here."),
    h("p", { class: "lib-empty-actions" }, h("a", { class: "button primary", href: "/record" }, "Record a video"), upload),
  );
}
