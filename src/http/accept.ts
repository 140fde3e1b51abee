// Content negotiation: how much a client's Accept (or Accept-Encoding) header wants a type.

/** The highest q the header gives any of `values` (lower case); 0 when none is listed. */
export function acceptQ(header: string | undefined, values: readonly string[]): number {
  let best = 0;
  for (const range of (header ?? "").split(",")) {
    const [value, ...params] = range.split(";").map((s) => s.trim().toLowerCase());
    if (!values.includes(value)) continue;
    const q = params.find((p) => p.startsWith("q="));
    best = Math.max(best, q === undefined ? 1 : Number(q.slice(2)) || 0);
  }
  return best;
}

/** True when the client asked for Server-Sent Events (and prefers them to JSON). */
export function wantsEventStream(accept: string | undefined): boolean {
  const sse = acceptQ(accept, ["text/event-stream"]);
  return sse > 0 && sse >= acceptQ(accept, ["application/json"]);
}

/**
 * A browser's navigation: the Accept header prefers HTML to JSON (every browser lists
 * text/html first; the console's own fetch() calls ask for JSON, API clients for JSON or any).
 */
export function wantsHtml(accept: string | undefined): boolean {
  const html = acceptQ(accept, ["text/html", "application/xhtml+xml"]);
  return html > 0 && html > acceptQ(accept, ["application/json"]);
}
