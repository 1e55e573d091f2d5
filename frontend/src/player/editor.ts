// The owner's "Edit": title and description become a form; Save PATCHes the recording and updates the page.
import { api, ApiError } from "../api";
import { displayTitle } from "./recording";

export interface Texts {
  title: string;
  description: string;
}

export interface EditorParts {
  button: HTMLButtonElement;
  form: HTMLFormElement;
  heading: HTMLElement;
  description: HTMLElement;
  recordingId: string;
  initial: Texts;
  onSaved: (texts: Texts) => void;
}

export function bindEditor(parts: EditorParts): void {
  const { button, form, heading, description } = parts;
  const titleInput = form.elements.namedItem("title") as HTMLInputElement;
  const descriptionInput = form.elements.namedItem("description") as HTMLTextAreaElement;
  const alert = form.querySelector<HTMLElement>(".alert");
  const save = form.querySelector<HTMLButtonElement>('button[type="submit"]');
  let texts = parts.initial;

  const editing = (on: boolean) => {
    form.hidden = !on;
    heading.hidden = on;
    description.hidden = on;
    button.hidden = on;
    if (alert) alert.hidden = true;
    if (on) {
      titleInput.value = texts.title;
      descriptionInput.value = texts.description;
      titleInput.focus();
    } else {
      button.focus();
    }
  };

  button.hidden = false;
  button.addEventListener("click", () => editing(true));
  form.querySelector('[data-action="cancel"]')?.addEventListener("click", () => editing(false));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") editing(false);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (save) save.disabled = true;
    try {
      const saved = await api<Texts>(`/api/v1/recordings/${encodeURIComponent(parts.recordingId)}`, {
        method: "PATCH",
        json: { title: titleInput.value.trim(), description: descriptionInput.value },
      });
      texts = { title: saved.title, description: saved.description };
      renderTexts(heading, description, texts);
      parts.onSaved(texts);
      editing(false);
    } catch (error) {
      if (alert) {
        alert.textContent = error instanceof ApiError ? error.message : "Could not save: check your connection.";
        alert.hidden = false;
      }
    } finally {
      if (save) save.disabled = false;
    }
  });
}

/** Title and description as the server renders them: blank-line-separated paragraphs, whitespace kept. */
export function renderTexts(heading: HTMLElement, description: HTMLElement, texts: Texts): void {
  heading.textContent = displayTitle(texts.title);
  heading.classList.toggle("is-untitled", !texts.title.trim());
  const paragraphs = texts.description
    .replace(/\r\n?/g, "\n")
    .split("\n\n")
    .map((p) => p.replace(/^\n+|\n+$/g, ""))
    .filter((p) => p.trim());
  description.replaceChildren(
    ...paragraphs.map((text) => {
      const p = document.createElement("p");
      p.textContent = text;
      return p;
    }),
  );
}
