// The library page (/library): the signed-in person's recordings as cards, with search, paging, importing a video
// file, rename, delete and live processing progress. The server embeds the first page as JSON; every card is drawn
// here, the same way for that first page, later pages, search results and new uploads.

import "./library.css";
import { ApiError, api, pageData } from "./api";
import { type CardActions, type RecordingCard, sentence } from "./library/card";
import { copyText } from "./library/clipboard";
import { confirmDelete } from "./library/dialog";
import { Grid } from "./library/grid";
import { Listing, PAGE_SIZE, rememberQuery } from "./library/listing";
import { messageOf, notices } from "./library/notices";
import { Poller } from "./library/poller";
import { type Recording, type RecordingPage, displayTitle } from "./library/recording";
import { renderEmpty } from "./library/empty";
import { UploadCard, type UploadHooks } from "./library/uploads";

interface LibraryData {
  initial: RecordingPage;
  q: string;
  max_upload_bytes: number;
}

const SEARCH_DELAY_MS = 300;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the library page has no #${id}`);
  return found as T;
}

const data = pageData<LibraryData>("library-data");
const page = {
  search: element<HTMLFormElement>("library-search"),
  query: element<HTMLInputElement>("library-q"),
  file: element<HTMLInputElement>("library-file"),
  grid: element<HTMLUListElement>("library-grid"),
  empty: element<HTMLElement>("library-empty"),
  more: element<HTMLButtonElement>("library-more"),
  dialog: element<HTMLDialogElement>("library-delete"),
  drop: element<HTMLElement>("library-drop"),
};
const say = notices(element("library-error"), element("library-status"));
const listing = new Listing(data.q, data.initial.next_cursor);
const uploads = new Set<UploadCard>();

// -- one recording ------------------------------------------------------------------------------------------------

const lastStale = new WeakMap<RecordingCard, number>();

const actions: CardActions = {
  async rename(card, title) {
    try {
      const recording = await api<Recording>(`/api/v1/recordings/${card.recording.id}`, { method: "PATCH", json: { title } });
      card.update({ ...recording, processing: card.recording.processing });
      say.clearError();
      say.announce(`Renamed to “${card.title}”.`);
    } catch (error) {
      say.error(messageOf(error));
      throw error;
    }
  },
  remove(card) {
    void remove(card);
  },
  copyLink(card) {
    void copyText(card.recording.share_url).then((copied) => {
      if (copied) {
        card.copied();
        say.announce("Link copied.");
      } else {
        say.error("Could not copy the link. Open the recording and copy the address from there.");
      }
    });
  },
  stale(card) {
    const now = Date.now();
    if (now - (lastStale.get(card) ?? 0) < 60_000) return; // the picture is broken for another reason
    lastStale.set(card, now);
    void refresh(card);
  },
};

const grid = new Grid(page.grid, actions);
const poller = new Poller(() => grid.cards.values(), refresh);

async function refresh(card: RecordingCard): Promise<void> {
  const before = card.recording;
  try {
    const recording = await api<Recording>(`/api/v1/recordings/${before.id}`);
    card.update(recording);
    announceChange(before, recording);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      grid.remove(before.id); // deleted elsewhere
      showState();
    }
    // Anything else (the network, a restart) is worth another try at the next tick.
  }
}

function announceChange(before: Recording, after: Recording): void {
  if (before.status === after.status) return;
  const title = `“${displayTitle(after)}”`;
  if (after.status === "READY") say.announce(`${title} is ready to watch.`);
  else if (after.status === "FAILED") say.announce(`${title} failed. ${sentence(after.failure_reason ?? "")}`);
  else if (after.status === "PROCESSING") say.announce(`${title} is processing.`);
}

async function remove(card: RecordingCard): Promise<void> {
  const { id } = card.recording;
  const title = card.title;
  if (!(await confirmDelete(page.dialog, title))) return;
  try {
    await api<void>(`/api/v1/recordings/${id}`, { method: "DELETE" });
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) {
      say.error(messageOf(error));
      return;
    }
  }
  const neighbour = grid.remove(id);
  showState();
  say.clearError();
  say.announce(`Deleted “${title}”.`);
  if (neighbour) neighbour.focus();
  else page.query.focus();
}

// -- the list: empty state, paging, search ------------------------------------------------------------------------

function showState(): void {
  page.empty.hidden = !grid.isEmpty;
  if (grid.isEmpty) renderEmpty(page.empty, listing.query, { clear: () => void search(""), upload: () => page.file.click() });
  page.more.hidden = listing.nextCursor === null;
}

async function loadMore(moveFocus: boolean): Promise<void> {
  if (listing.loading || listing.nextCursor === null) return;
  page.more.disabled = true;
  try {
    const next = await listing.more();
    if (!next) return;
    const before = new Set(grid.cards.keys());
    grid.append(next.items);
    poller.kick();
    if (moveFocus) [...grid.cards.values()].find((card) => !before.has(card.recording.id))?.focus();
  } catch (error) {
    say.error(messageOf(error));
  } finally {
    page.more.disabled = false;
    showState();
    watchEnd();
  }
}

// Infinite scroll where IntersectionObserver exists; the Load more button works everywhere.
const endObserver =
  "IntersectionObserver" in window
    ? new IntersectionObserver((entries) => {
        if (entries.some((entry) => entry.isIntersecting) && !page.more.hidden) void loadMore(false);
      }, { rootMargin: "400px 0px" })
    : null;

/** (Re)observe the end of the list: observing anew reports at once whether it is still in view after a page. */
function watchEnd(): void {
  endObserver?.unobserve(page.more);
  if (!page.more.hidden) endObserver?.observe(page.more);
}

let searchTimer: number | undefined;

async function search(query: string): Promise<void> {
  window.clearTimeout(searchTimer);
  if (page.query.value.trim() !== query) page.query.value = query; // "Clear search" comes from elsewhere
  rememberQuery(query);
  page.grid.setAttribute("aria-busy", "true");
  try {
    const found = await listing.search(query);
    if (!found) return; // a newer search is on its way
    grid.replace(found.items);
    say.clearError();
    showState();
    watchEnd();
    poller.kick();
    say.announce(query ? searchSummary(query, found) : "Showing all recordings.");
  } catch (error) {
    say.error(messageOf(error));
  } finally {
    page.grid.removeAttribute("aria-busy");
  }
}

function searchSummary(query: string, found: RecordingPage): string {
  const n = found.items.length;
  if (n === 0) return `No recordings match “${query}”.`;
  if (found.next_cursor) return `More than ${PAGE_SIZE} recordings match “${query}”.`;
  return `${n} ${n === 1 ? "recording matches" : "recordings match"} “${query}”.`;
}

// -- importing files ----------------------------------------------------------------------------------------------

const uploadHooks: UploadHooks = {
  recordingKnown(_upload, recordingId) {
    grid.remove(recordingId); // a resumed upload: its recording's card was on the page already
  },
  finished(upload, recordingId) {
    say.announce(`${upload.file.name} is uploaded; processing it now.`);
    void adopt(upload, recordingId);
  },
  cancelled(upload, recordingId) {
    uploads.delete(upload);
    upload.element.remove();
    showState();
    say.announce(`Upload of ${upload.file.name} cancelled.`);
    page.file.focus();
    if (recordingId) {
      api<void>(`/api/v1/recordings/${recordingId}`, { method: "DELETE" }).catch((error: unknown) => {
        if (!(error instanceof ApiError && error.status === 404)) say.error(messageOf(error));
      });
    }
  },
  failed(upload, message) {
    say.error(`Uploading ${upload.file.name} failed: ${message}`);
  },
};

/** Put the recording the upload made where its upload card was; it goes on to process, and polling follows it. */
async function adopt(upload: UploadCard, recordingId: string): Promise<void> {
  for (const delay of [0, 1000, 3000]) {
    await new Promise((resolve) => window.setTimeout(resolve, delay));
    try {
      const recording = await api<Recording>(`/api/v1/recordings/${recordingId}`);
      uploads.delete(upload);
      grid.settleUpload(upload, recording);
      poller.kick();
      return;
    } catch {
      // try again; the upload itself is safe on the server
    }
  }
  say.error(`${upload.file.name} is uploaded, but the page could not show it. Reload the page to see it.`);
}

function importFiles(files: Iterable<File>): void {
  say.clearError();
  for (const file of files) {
    const refusal = refusalOf(file);
    if (refusal) {
      say.error(refusal);
      continue;
    }
    const upload = new UploadCard(file, uploadHooks);
    uploads.add(upload);
    grid.addUpload(upload);
    showState();
    say.announce(`Uploading ${file.name}.`);
    void upload.start();
  }
}

function refusalOf(file: File): string | null {
  // An empty type is a file the browser cannot name (some .mkv or .mts); the server probes what it really is.
  if (file.type && !file.type.startsWith("video/")) return `${file.name} is not a video file.`;
  if (file.size > data.max_upload_bytes) {
    const gb = (data.max_upload_bytes / 1024 ** 3).toFixed(1).replace(/\.0$/, "");
    return `${file.name} is larger than the ${gb} GB this server takes.`;
  }
  const same = [...uploads].some((u) => u.active && u.file.name === file.name && u.file.size === file.size && u.file.lastModified === file.lastModified);
  return same ? `${file.name} is uploading already.` : null;
}

page.file.addEventListener("change", () => {
  if (page.file.files) importFiles([...page.file.files]);
  page.file.value = ""; // choosing the same file again (after a cancel, say) must fire change again
});

window.addEventListener("beforeunload", (event) => {
  if ([...uploads].some((upload) => upload.active)) event.preventDefault(); // the browser asks whether to leave
});

// Drag and drop anywhere on the page.
let dragDepth = 0;
const carriesFiles = (event: DragEvent): boolean => event.dataTransfer?.types.includes("Files") ?? false;
document.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  dragDepth += 1;
  page.drop.hidden = false;
});
document.addEventListener("dragover", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
});
document.addEventListener("dragleave", (event) => {
  if (!carriesFiles(event)) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) page.drop.hidden = true;
});
document.addEventListener("drop", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  page.drop.hidden = true;
  if (event.dataTransfer) importFiles([...event.dataTransfer.files]);
});

// -- start --------------------------------------------------------------------------------------------------------

page.query.addEventListener("input", () => {
  window.clearTimeout(searchTimer);
  searchTimer = window.setTimeout(() => void search(page.query.value.trim()), SEARCH_DELAY_MS);
});
page.search.addEventListener("submit", (event) => {
  event.preventDefault();
  void search(page.query.value.trim());
});
page.more.addEventListener("click", () => void loadMore(true));

grid.append(data.initial.items);
showState();
watchEnd();
poller.kick();
