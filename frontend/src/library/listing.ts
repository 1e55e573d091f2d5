// Which recordings the grid lists: the search (`?q=`, a title search) and the cursor of the next page. A new search
// cancels the answer still on its way, so a slow old answer never overwrites a newer one.

import { api } from "../api";
import type { RecordingPage } from "./recording";

export const PAGE_SIZE = 24;

export class Listing {
  private inFlight: AbortController | null = null;

  constructor(
    public query: string,
    public nextCursor: string | null,
  ) {}

  /** The first page for `query`; null when a newer request superseded this one. */
  async search(query: string): Promise<RecordingPage | null> {
    const page = await this.fetch(query, null);
    if (page) {
      this.query = query;
      this.nextCursor = page.next_cursor;
    }
    return page;
  }

  /** The page after the last one shown; null when there is none or another request superseded it. */
  async more(): Promise<RecordingPage | null> {
    if (!this.nextCursor || this.inFlight) return null;
    const page = await this.fetch(this.query, this.nextCursor);
    if (page) this.nextCursor = page.next_cursor;
    return page;
  }

  get loading(): boolean {
    return this.inFlight !== null;
  }

  private async fetch(query: string, cursor: string | null): Promise<RecordingPage | null> {
    this.inFlight?.abort();
    const controller = new AbortController();
    this.inFlight = controller;
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (query) params.set("q", query);
    if (cursor) params.set("cursor", cursor);
    try {
      return await api<RecordingPage>(`/api/v1/recordings?${params}`, { signal: controller.signal });
    } catch (error) {
      if (controller.signal.aborted) return null;
      throw error;
    } finally {
      if (this.inFlight === controller) this.inFlight = null;
    }
  }
}

/** Keep `?q=` in the address, so a reload or a shared link shows the same search. */
export function rememberQuery(query: string): void {
  const url = new URL(window.location.href);
  if (query) url.searchParams.set("q", query);
  else url.searchParams.delete("q");
  window.history.replaceState(window.history.state, "", url);
}
