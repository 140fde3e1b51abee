// The GitHub REST client for the events API, and the rules that keep it polite: the previous
// ETag sent back verbatim (a 304 costs no rate limit), per_page=100, rel="next" followed only
// on GitHub's own origin, a timeout on every request, and the rate-limit headers
// (X-RateLimit-*, Retry-After) turned into "no request before ...". X-Poll-Interval is read
// here and honoured by the poll (poll.ts). Answers never throw: a failure is an Answer too.
import { Octokit } from "@octokit/rest";
import type { Config } from "../../config.ts";
import { logger } from "../../logging.ts";
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

type RawHeaders = Record<string, string | number | undefined>;

export function gitHubClient(config: Config): GitHubClient {
  const log = logger("jobs", "github");
  const octokit = new Octokit({
    baseUrl: config.githubApiUrl,
    auth: config.githubToken,
    userAgent: `observian/${VERSION}`,
    // Octokit logs every request and error to the console by default; outcomes are
    // recorded here instead.
    log: {
      debug: () => {},
      info: () => {},
      warn: (message: string) => log.warning("octokit: {message}", { message }),
      error: () => {},
    },
  });
  return {
    get: async (target, etag) => {
      const { status, headers, data, latencyMs, timedOut, message } = await request(
        octokit,
        target,
        etag,
        config.githubTimeoutS,
      );
      const interval = intHeader(headers, "x-poll-interval");
      return {
        status,
        data,
        latencyMs,
        timedOut,
        message,
        etag: header(headers, "etag"),
        pollIntervalS: interval && interval > 0 ? interval : undefined,
        next: nextLink(header(headers, "link"), config.githubApiUrl),
        rateLimit: {
          remaining: intHeader(headers, "x-ratelimit-remaining"),
          limit: intHeader(headers, "x-ratelimit-limit"),
          reset: intHeader(headers, "x-ratelimit-reset"),
          retryAfter: intHeader(headers, "retry-after"),
        },
      };
    },
  };
}

async function request(
  octokit: Octokit,
  target: string,
  etag: string | undefined,
  timeoutS: number,
) {
  const signal = AbortSignal.timeout(timeoutS * 1000);
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const timeout = () => ({
    status: null,
    headers: {} as RawHeaders,
    data: null,
    latencyMs: elapsed(),
    timedOut: true,
    message: `no answer within ${timeoutS}s`,
  });
  try {
    const absolute = /^https?:/.test(target);
    const res = await octokit.request(`GET ${target}`, {
      ...(absolute ? {} : { per_page: PER_PAGE }),
      headers: etag ? { "if-none-match": etag } : {},
      request: { signal },
    });
    // A timeout while reading the body reaches us as an empty body, not as an error.
    if (signal.aborted) return timeout();
    return {
      status: res.status as number | null,
      headers: res.headers as RawHeaders,
      data: res.data as unknown,
      latencyMs: elapsed(),
      timedOut: false,
      message: "",
    };
  } catch (err) {
    if (signal.aborted) return timeout();
    // Octokit throws for 304 and for every status >= 400, with the response attached.
    const e = err as { status?: number; message?: string; response?: { headers?: RawHeaders } };
    return {
      status: e.response ? e.status ?? null : null,
      headers: e.response?.headers ?? {},
      data: null,
      latencyMs: elapsed(),
      timedOut: false,
      message: errorMessage(err),
    };
  }
}

const header = (h: RawHeaders, name: string): string | undefined => {
  const v = h[name];
  return v === undefined ? undefined : String(v);
};

const intHeader = (h: RawHeaders, name: string): number | undefined => {
  const v = header(h, name);
  return v !== undefined && /^\s*\d+\s*$/.test(v) ? Number(v) : undefined;
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
