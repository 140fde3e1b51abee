// Calls from the console to Observian's own API: relative to the page's <base> (so a path prefix
// added by a proxy is kept), with the key kept for this tab or the sign-in cookie, always bounded
// in time. A failure is an ApiError carrying the problem+json body.
const KEY = "observian.key";

/** The API key given on this tab (sessionStorage: gone when the tab closes). */
export const keyStore = {
  get: () => sessionStorage.getItem(KEY),
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    const detail = typeof problem === "object" && problem !== null
      ? problem.detail ?? problem.title
      : problem;
    super(detail ? `${status}: ${detail}` : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }
}

/** An absolute URL for an API path and query (arrays repeat the parameter; empty is left out). */
export function apiUrl(path, query = {}) {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(query)) {
    for (const x of Array.isArray(v) ? v : [v]) {
      if (x !== undefined && x !== null && x !== "") url.searchParams.append(k, String(x));
    }
  }
  return url;
}

/** Headers that carry this tab's credential (none: the sign-in cookie goes by itself). */
export function authHeaders() {
  const key = keyStore.get();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/**
 * `method path` with `query` and a JSON `body`; resolves with the parsed answer (null for 204).
 * 401 also tells the page (the `observian:unauthorized` event) so it can ask for a key.
 */
export async function api(path, opts = {}) {
  return (await send(path, opts)).data;
}

/**
 * GET one page of a keyset-paged list: its items, and the cursor of the next page from
 * X-Next-Cursor (null at the end).
 */
export async function apiPage(path, opts = {}) {
  const { data, headers } = await send(path, opts);
  return { items: data, next: headers.get("x-next-cursor") };
}

/** The ApiError a refused answer stands for; a 401 also tells the page, as api() does. */
export async function refusal(res) {
  if (res.status === 401) dispatchEvent(new CustomEvent("observian:unauthorized"));
  return new ApiError(res.status, await body(res), res.headers.get("retry-after"));
}

const body = (res) =>
  (res.headers.get("content-type") ?? "").includes("json") ? res.json() : res.text();

async function send(path, opts) {
  const { method = "GET", query, body: json, signal, timeoutMs = 15_000 } = opts;
  const headers = { accept: "application/json", ...authHeaders() };
  if (json !== undefined) headers["content-type"] = "application/json";
  const timeout = AbortSignal.timeout(timeoutMs);
  const res = await fetch(apiUrl(path, query), {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    credentials: "same-origin",
    signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
  });
  if (!res.ok) throw await refusal(res);
  return { data: res.status === 204 ? null : await body(res), headers: res.headers };
}
