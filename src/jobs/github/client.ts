// The GitHub REST client for the events API, and the rules that keep it polite: the previous
// ETag sent back verbatim (a 304 costs no rate limit), per_page=100, rel="next" followed only
// on GitHub's own origin, one timeout over each request and its body, and the rate-limit
// headers (X-RateLimit-*, Retry-After) turned into "no request before ...". X-Poll-Interval is
// read here and honoured by the poll (poll.ts). Answers never throw: a failure is an Answer too.
//
// Plain fetch, not Octokit. Octokit was used only as a fetch wrapper, and what it offers beyond
// that does not fit these rules: its `paginate` follows rel="next" to any origin (the token
// would go with it), sends the first page's If-None-Match again on every page and drops the
// per-request abort signal after the first call; @octokit/plugin-throttling waits inside the
// process (Bottleneck, on the wall clock) where the rule is "no request from any instance before
// blocked_until", kept in job_control; @octokit/plugin-retry retries 5xx answers within the run,
// where a failed poll is retried by the next tick. It also throws for a 304.
import type { Config } from "../../config.ts";
import type { Metrics } from "../../metrics/registry.ts";
import { VERSION } from "../../version.ts";
import { errorMessage } from "../runner.ts";
import type { RateLimitState } from "./state.ts";

export const MAX_PAGES = 3;
export const PER_PAGE = 100;

export type SourceKind = "public" | "org" | "repo";

export interface Source {
  /** As configured: "public", "org:NAME", "repo:OWNER/NAME". */
  key: string;
  kind: SourceKind;
  path: string;
}

export function parseSource(spec: string): Source {
  const key = spec.trim();
  if (key === "public") return { key, kind: "public", path: "/events" };
  const org = key.match(/^org:([^/\s]+)$/);
  if (org) return { key, kind: "org", path: `/orgs/${encodeURIComponent(org[1])}/events` };
  const repo = key.match(/^repo:([^/\s]+)\/([^/\s]+)$/);
  if (repo) {
    const [owner, name] = [encodeURIComponent(repo[1]), encodeURIComponent(repo[2])];
    return { key, kind: "repo", path: `/repos/${owner}/${name}/events` };
  }
  throw new Error(`unknown GitHub source "${spec}" (public, org:NAME or repo:OWNER/NAME)`);
}

/** The rate-limit headers of one answer, as numbers (reset in epoch seconds). */
export interface RateLimitHeaders {
  remaining?: number;
  limit?: number;
  reset?: number;
  retryAfter?: number;
}

/** One answer, with the headers the poll needs already read. */
export interface Answer {
  /** null: no HTTP answer (timeout, connection refused). */
  status: number | null;
  data: unknown;
  latencyMs: number;
  timedOut: boolean;
  /** Why it failed, for the run record; "" when it did not. */
  message: string;
  etag?: string;
  pollIntervalS?: number;
  /** The rel="next" page, on GitHub's own origin; null when there is none. */
  next: string | null;
  rateLimit: RateLimitHeaders;
}

export interface GitHubClient {
  /** GET a source's path or a rel="next" URL, conditional on `etag` when given. */
  get(target: string, etag: string | undefined): Promise<Answer>;
}

export function gitHubClient(config: Config): GitHubClient {
  const headers: Record<string, string> = {
    "accept": "application/vnd.github+json",
    "user-agent": `observian/${VERSION}`,
  };
  if (config.githubToken) headers.authorization = `Bearer ${config.githubToken}`;
  return {
    get: async (target, etag) => {
      // A rel="next" URL comes from nextLink: on GitHub's origin, with its per_page.
      const absolute = /^https?:/.test(target);
      const url = new URL(absolute ? target : config.githubApiUrl + target);
      if (!absolute) url.searchParams.set("per_page", String(PER_PAGE));
      const a = await request(url, { ...headers, ...(etag ? { "if-none-match": etag } : {}) }, {
        timeoutS: config.githubTimeoutS,
      });
      const h = a.headers;
      const interval = intHeader(h, "x-poll-interval");
      return {
        status: a.status,
        data: a.data,
        latencyMs: a.latencyMs,
        timedOut: a.timedOut,
        message: a.message,
        etag: h.get("etag") ?? undefined,
        pollIntervalS: interval && interval > 0 ? interval : undefined,
        next: nextLink(h.get("link") ?? undefined, config.githubApiUrl),
        rateLimit: {
          remaining: intHeader(h, "x-ratelimit-remaining"),
          limit: intHeader(h, "x-ratelimit-limit"),
          reset: intHeader(h, "x-ratelimit-reset"),
          retryAfter: intHeader(h, "retry-after"),
        },
      };
    },
  };
}

interface Raw {
  status: number | null;
  headers: Headers;
  data: unknown;
  latencyMs: number;
  timedOut: boolean;
  message: string;
}

/** One GET, its body read under the same timeout; JSON when it parses, else the text. */
async function request(
  url: URL,
  headers: Record<string, string>,
  opts: { timeoutS: number },
): Promise<Raw> {
  const signal = AbortSignal.timeout(opts.timeoutS * 1000);
  const started = performance.now();
  const failed = (message: string, timedOut: boolean): Raw => ({
    status: null,
    headers: new Headers(),
    data: null,
    latencyMs: performance.now() - started,
    timedOut,
    message,
  });
  try {
    const res = await fetch(url, { headers, signal });
    const text = await res.text();
    let data: unknown = text;
    try {
      data = text === "" ? null : JSON.parse(text);
    } catch {
      // Left as text: the poll calls anything but an array of events malformed.
    }
    const ok = res.status < 300 || res.status === 304;
    return {
      status: res.status,
      headers: res.headers,
      data: ok ? data : null,
      latencyMs: performance.now() - started,
      timedOut: false,
      message: ok ? "" : failureMessage(res, data),
    };
  } catch (err) {
    if (signal.aborted) return failed(`no answer within ${opts.timeoutS}s`, true);
    return failed(errorMessage(err), false);
  }
}

/** GitHub's own words for a refusal ({"message": ...}), else the status text. */
function failureMessage(res: Response, data: unknown): string {
  const said = (data as { message?: unknown } | null)?.message;
  return errorMessage(typeof said === "string" && said !== "" ? said : res.statusText);
}

const intHeader = (h: Headers, name: string): number | undefined => {
  const v = h.get(name);
  return v !== null && /^\s*\d+\s*$/.test(v) ? Number(v) : undefined;
};

/** The rel="next" target of a Link header, kept only on GitHub's own origin. */
export function nextLink(link: string | undefined, baseUrl: string): string | null {
  if (!link) return null;
  for (const part of link.split(",")) {
    const m = part.match(/<([^>]+)>\s*;\s*rel="?([^";]+)"?/);
    if (!m || !m[2].split(/\s+/).includes("next")) continue;
    try {
      const url = new URL(m[1], baseUrl);
      // Never send the token to another host.
      if (url.origin !== new URL(baseUrl).origin) return null;
      if (!url.searchParams.has("per_page")) url.searchParams.set("per_page", String(PER_PAGE));
      return url.toString();
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * Records an answer's rate-limit headers in the shared state; returns until when no request may
 * be made, if this answer says so (Retry-After, an exhausted limit, or a bare 429).
 */
export function applyRateLimit(
  rl: RateLimitState,
  status: number | null,
  h: RateLimitHeaders,
  now: Date,
  metrics: Metrics,
): Date | null {
  const { remaining, limit, reset, retryAfter } = h;
  if (remaining !== undefined) rl.remaining = remaining;
  if (limit !== undefined) rl.limit = limit;
  if (reset !== undefined) rl.reset_at = new Date(reset * 1000).toISOString();
  if (remaining !== undefined) {
    // Past the reset GitHub's count starts again: the gauge goes absent rather than keep 0.
    metrics.githubRateLimitRemaining.setUntil(remaining, reset !== undefined ? reset * 1000 : null);
  }
  let until: Date | null = null;
  if (retryAfter !== undefined) until = new Date(now.getTime() + retryAfter * 1000);
  else if (remaining === 0) {
    until = reset !== undefined ? new Date(reset * 1000) : new Date(now.getTime() + 60_000);
  } else if (status === 429) until = new Date(now.getTime() + 60_000);
  if (until && until.getTime() > now.getTime()) {
    rl.blocked_until = until.toISOString();
    return until;
  }
  return null;
}
