// The JSON API as the signed-in browser sees it: same-origin requests carry the session cookie, and every request
// that changes something also carries the page's CSRF token (the server refuses cookie-authenticated writes without it).

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The CSRF token the server rendered into the page (`<meta name="csrf-token">`); empty when signed out. */
export function csrfToken(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? "";
}

/** Headers that authorize a write with the session cookie; tus-js-client takes them too. */
export function csrfHeaders(): Record<string, string> {
  const token = csrfToken();
  return token ? { "X-CSRF-Token": token } : {};
}

/** Call the API; resolves to the parsed JSON (undefined for 204), rejects with ApiError for any error answer. */
export async function api<T>(path: string, init: { method?: string; json?: unknown; signal?: AbortSignal } = {}): Promise<T> {
  const method = init.method ?? "GET";
  const headers: Record<string, string> = { Accept: "application/json", ...(method === "GET" ? {} : csrfHeaders()) };
  let body: string | undefined;
  if (init.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(init.json);
  }
  const response = await fetch(path, { method, headers, body, credentials: "same-origin", signal: init.signal });
  if (response.status === 204) return undefined as T;
  const data: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const error = (data as { error?: { code?: string; message?: string } } | null)?.error;
    throw new ApiError(response.status, error?.code ?? "error", error?.message ?? `${response.status} ${response.statusText}`);
  }
  return data as T;
}

/** Read the JSON the server embedded in the page as `<script type="application/json" id="...">`. */
export function pageData<T>(id: string): T {
  const element = document.getElementById(id);
  if (!element?.textContent) throw new Error(`the page has no #${id} data`);
  return JSON.parse(element.textContent) as T;
}

/** What the server answered: its status, the parsed JSON (null when there was none) and, for an error, its code
 * and message. */
export interface Answer<T = unknown> {
  status: number;
  data: T | null;
  code: string;
  message: string;
}

/** A request whose caller decides what to retry: resolves to the answer whatever its status, or null when none came
 * (the network is down, or `signal` aborted it). Writes carry the CSRF token, as with `api`. */
export async function request<T>(
  path: string,
  init: { method?: string; json?: unknown; body?: BodyInit; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Answer<T> | null> {
  const method = init.method ?? "GET";
  const headers: Record<string, string> = { Accept: "application/json", ...(method === "GET" ? {} : csrfHeaders()), ...init.headers };
  let body = init.body;
  if (init.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(init.json);
  }
  let response: Response;
  let data: unknown;
  try {
    response = await fetch(path, { method, headers, body, credentials: "same-origin", signal: init.signal });
    data = response.status === 204 ? null : await response.json().catch(() => null);
  } catch {
    return null;
  }
  const error = response.ok ? undefined : (data as { error?: { code?: string; message?: string } } | null)?.error;
  return {
    status: response.status,
    data: response.ok ? (data as T) : null,
    code: error?.code ?? "",
    message: error?.message ?? (response.ok ? "" : `${response.status} ${response.statusText}`),
  };
}
