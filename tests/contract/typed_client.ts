// A small client typed by openapi-typescript from GET /openapi.json (openapi.d.ts beside it,
// generated and kept current by tests/contract_test.ts). Plain fetch: the types alone say what
// each operation takes and answers, so a change of the contract breaks this file's type check.
import type { components, paths } from "./openapi.d.ts";

export type LogEventInput = components["schemas"]["LogEventInput"];
export type ListLogsQuery = NonNullable<paths["/logs"]["get"]["parameters"]["query"]>;
export type LogEvent =
  paths["/logs"]["get"]["responses"][200]["content"]["application/json"][number];
export type IngestAnswer = paths["/logs"]["post"]["responses"][201]["content"]["application/json"];
export type SummaryQuery = NonNullable<paths["/logs/summary"]["get"]["parameters"]["query"]>;
export type Summary =
  paths["/logs/summary"]["get"]["responses"][200]["content"]["application/json"];
export type Problem = components["schemas"]["Problem"];
export type PruneQuery = NonNullable<paths["/control/prune"]["post"]["parameters"]["query"]>;
export type PruneResult =
  paths["/control/prune"]["post"]["responses"][200]["content"]["application/json"];

/** Query-string values as the document types them (numbers, booleans, repeated arrays). */
type QueryValue = string | number | boolean | readonly string[] | undefined;

function queryString(q: Record<string, QueryValue>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) params.append(k, String(one));
  }
  const s = params.toString();
  return s ? `?${s}` : "";
}

export class ObservianClient {
  constructor(
    readonly baseUrl: string,
    readonly opts: { apiKey?: string; timeoutMs?: number } = {},
  ) {}

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    // Every operation but health and the documents needs a key once access control is on.
    if (this.opts.apiKey) headers["authorization"] = `Bearer ${this.opts.apiKey}`;
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000),
    });
    if (!res.ok) {
      const problem = (await res.json()) as Problem;
      throw new Error(`${method} ${path}: ${problem.status} ${problem.detail}`);
    }
    return await res.json() as T;
  }

  ingest(events: LogEventInput | LogEventInput[]): Promise<IngestAnswer> {
    return this.#call("POST", "/logs", events);
  }

  listLogs(query: ListLogsQuery = {}): Promise<LogEvent[]> {
    return this.#call("GET", `/logs${queryString(query)}`);
  }

  summary(query: SummaryQuery = {}): Promise<Summary> {
    return this.#call("GET", `/logs/summary${queryString(query)}`);
  }

  prune(query: PruneQuery = {}): Promise<PruneResult> {
    return this.#call("POST", `/control/prune${queryString(query)}`);
  }
}

// What the contract promises a typed caller, checked by `deno check` alone.
export const _typed: ListLogsQuery[] = [
  { limit: 5, offset: 0, status_code: 503, min_latency_ms: 0.5, service_name: ["a", "b"] },
  // @ts-expect-error: limit is a number, not a string
  { limit: "5" },
];
export const _prune: PruneQuery = { days: 7, dry_run: true };
