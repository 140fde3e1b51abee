// Polls GitHub's events API politely and turns each GitHub event into one log event.
// Polite means: the previous ETag sent back verbatim (a 304 costs no rate limit), no poll
// before X-Poll-Interval has passed, no request at all while the rate limit is exhausted,
// at most 3 pages of 100, and a timeout on every request. Everything this needs to remember
// (ETags, cursors, the rate limit) lives in the ingestor's job_control state, shared by all
// instances; exactly-once storage is github-store.ts's job.
import { Octokit } from "@octokit/rest";
import { type Config, SERVICE_NAME } from "../config.ts";
import { logger } from "../logging.ts";
import type { Metrics } from "../metrics/registry.ts";
import { VERSION } from "../version.ts";
import { type GitHubRow, storeGitHubEvents } from "./github-store.ts";
import { errorMessage, type JobDeps } from "./runner.ts";
import { DAY_MS } from "../time.ts";

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

export type PollOutcome =
  | "ok"
  | "not_modified"
  | "rate_limited"
  | "error"
  | "timeout"
  | "skipped_interval"
  | "skipped_rate_limit";

/** One poll of one source: what the status endpoint shows and metrics count. */
export interface PollRecord {
  source: string;
  at: string;
  outcome: PollOutcome;
  /** HTTP status of the poll's last answer; null when there was none. */
  status: number | null;
  /** Time to the first page's answer. */
  latency_ms: number | null;
  pages: number;
  new: number;
  duplicates: number;
  too_old: number;
  invalid: number;
  rate_limit_remaining: number | null;
  rate_limit_reset: string | null;
  error: string | null;
}

export interface SourceState {
  /** ETag of the last complete poll's first page, sent back verbatim. */
  etag?: string;
  /** Newest created_at seen by the last complete poll: paging stops once a page reaches it. */
  cursor?: string;
  /** X-Poll-Interval of the last answer. */
  poll_interval_s?: number;
  last_poll_at?: string;
  last?: PollRecord;
}

export interface RateLimitState {
  remaining: number | null;
  limit: number | null;
  reset_at: string | null;
  /** No request before this time (exhausted limit or Retry-After). */
  blocked_until: string | null;
}

export interface IngestorState {
  sources: Record<string, SourceState>;
  rate_limit: RateLimitState;
  events_ingested_total: number;
}

export interface IngestResult {
  polls: PollRecord[];
  new: number;
  duplicates: number;
  rate_limit: RateLimitState;
}

/** The stored state, with anything missing or malformed replaced by defaults. */
export function readIngestorState(raw: unknown): IngestorState {
  const r = (raw && typeof raw === "object" ? raw : {}) as Partial<IngestorState>;
  const rl = (r.rate_limit ?? {}) as Partial<RateLimitState>;
  return {
    sources: r.sources && typeof r.sources === "object" ? structuredClone(r.sources) : {},
    rate_limit: {
      remaining: typeof rl.remaining === "number" ? rl.remaining : null,
      limit: typeof rl.limit === "number" ? rl.limit : null,
      reset_at: typeof rl.reset_at === "string" ? rl.reset_at : null,
      blocked_until: typeof rl.blocked_until === "string" ? rl.blocked_until : null,
    },
    events_ingested_total: typeof r.events_ingested_total === "number"
      ? r.events_ingested_total
      : 0,
  };
}

/** The poll interval in force for a source: GitHub's X-Poll-Interval, else the configured one. */
export function pollIntervalS(config: Config, st: SourceState | undefined): number {
  return st?.poll_interval_s ?? config.githubPollIntervalS;
}

// ---- mapping ---------------------------------------------------------------------------

export type MapResult = { row: GitHubRow } | { skip: "too_old" | "invalid" };

const clean = (v: unknown, max = 200): string | undefined =>
  typeof v === "string" && v !== "" ? v.replaceAll("\0", "").slice(0, max) : undefined;

/**
 * One GitHub event → one log event. Only the envelope is read (id, type, created_at, actor,
 * repo, org, payload.action): payloads differ per type and change over time (PushEvent lost
 * its commits in 2025), and none of them is needed for a log line.
 */
export function toLogEvent(
  ev: unknown,
  ctx: {
    source: Source;
    config: Config;
    statusCode: number;
    latencyMs: number;
    now: Date;
  },
): MapResult {
  if (!ev || typeof ev !== "object" || Array.isArray(ev)) return { skip: "invalid" };
  const e = ev as Record<string, unknown>;
  const id = typeof e.id === "string" || typeof e.id === "number" || typeof e.id === "bigint"
    ? clean(String(e.id), 100)
    : undefined;
  const createdAt = typeof e.created_at === "string" ? new Date(e.created_at) : null;
  if (!id || !createdAt || Number.isNaN(createdAt.getTime())) return { skip: "invalid" };
  const now = ctx.now.getTime();
  if (createdAt.getTime() < now - ctx.config.retentionDays * DAY_MS) return { skip: "too_old" };
  if (createdAt.getTime() > now + DAY_MS) return { skip: "invalid" };

  const obj = (v: unknown) => (v && typeof v === "object" ? v : {}) as Record<string, unknown>;
  const type = clean(e.type);
  const repo = clean(obj(e.repo).name);
  const actor = clean(obj(e.actor).login) ?? clean(obj(e.actor).display_login);
  const org = clean(obj(e.org).login);
  const action = clean(obj(e.payload).action);
  const attributes: Record<string, unknown> = { github_id: id };
  if (repo) attributes.repo = repo;
  if (actor) attributes.actor = actor;
  if (org) attributes.org = org;
  if (action) attributes.action = action;

  // Org and repo streams are per repository; the public firehose would register thousands
  // of services, so it goes under one name.
  const serviceName = ctx.source.kind !== "public" && repo && SERVICE_NAME.test(repo)
    ? repo
    : ctx.config.githubService;
  const what = [type ?? "event", action].filter(Boolean).join(" ");
  return {
    row: {
      githubId: id,
      serviceName,
      timestamp: createdAt,
      statusCode: ctx.statusCode,
      eventType: type ?? null,
      latencyMs: Math.max(0, Math.round(ctx.latencyMs * 100) / 100),
      message: `${what}${repo ? ` on ${repo}` : ""}${actor ? ` by ${actor}` : ""}`,
      attributes,
    },
  };
}

// ---- HTTP ------------------------------------------------------------------------------

type Headers = Record<string, string | number | undefined>;

interface Answer {
  /** null: no HTTP answer (timeout, connection refused). */
  status: number | null;
  headers: Headers;
  data: unknown;
  latencyMs: number;
  timedOut: boolean;
  message: string;
}

function client(config: Config): Octokit {
  const log = logger("jobs", "github");
  return new Octokit({
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
}

async function request(
  octokit: Octokit,
  target: string,
  etag: string | undefined,
  timeoutS: number,
): Promise<Answer> {
  const signal = AbortSignal.timeout(timeoutS * 1000);
  const started = performance.now();
  const elapsed = () => performance.now() - started;
  const timeout = (): Answer => ({
    status: null,
    headers: {},
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
      status: res.status,
      headers: res.headers as Headers,
      data: res.data,
      latencyMs: elapsed(),
      timedOut: false,
      message: "",
    };
  } catch (err) {
    if (signal.aborted) return timeout();
    // Octokit throws for 304 and for every status >= 400, with the response attached.
    const e = err as { status?: number; message?: string; response?: { headers?: Headers } };
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

const header = (h: Headers, name: string): string | undefined => {
  const v = h[name];
  return v === undefined ? undefined : String(v);
};

const intHeader = (h: Headers, name: string): number | undefined => {
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

// ---- polling ---------------------------------------------------------------------------

interface PollContext {
  deps: JobDeps;
  octokit: Octokit;
  state: IngestorState;
  force: boolean;
}

function blockedUntil(rl: RateLimitState, now: Date): Date | null {
  if (!rl.blocked_until) return null;
  const t = new Date(rl.blocked_until);
  return t.getTime() > now.getTime() ? t : null;
}

/** Reads X-RateLimit-*; returns when the caller must stop, if this answer says so. */
function applyRateLimit(
  rl: RateLimitState,
  status: number | null,
  h: Headers,
  now: Date,
  metrics: Metrics,
): Date | null {
  const remaining = intHeader(h, "x-ratelimit-remaining");
  const limit = intHeader(h, "x-ratelimit-limit");
  const reset = intHeader(h, "x-ratelimit-reset");
  const retryAfter = intHeader(h, "retry-after");
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

async function pollSource(ctx: PollContext, source: Source): Promise<PollRecord> {
  const { deps, state } = ctx;
  const { config, metrics } = deps;
  const clock = deps.now ?? (() => new Date());
  const log = logger("jobs", "github");
  const now = clock();
  const st: SourceState = state.sources[source.key] ?? {};
  const rec: PollRecord = {
    source: source.key,
    at: now.toISOString(),
    outcome: "ok",
    status: null,
    latency_ms: null,
    pages: 0,
    new: 0,
    duplicates: 0,
    too_old: 0,
    invalid: 0,
    rate_limit_remaining: state.rate_limit.remaining,
    rate_limit_reset: state.rate_limit.reset_at,
    error: null,
  };

  if (!ctx.force && st.last_poll_at) {
    const intervalMs = pollIntervalS(config, st) * 1000;
    // Cron ticks land a few ms either side of the interval; don't skip a whole tick for that.
    const slackMs = Math.min(5000, intervalMs * 0.05);
    if (now.getTime() < new Date(st.last_poll_at).getTime() + intervalMs - slackMs) {
      return { ...rec, outcome: "skipped_interval" };
    }
  }
  if (blockedUntil(state.rate_limit, now)) return { ...rec, outcome: "skipped_rate_limit" };

  state.sources[source.key] = st;
  st.last_poll_at = now.toISOString();
  let target = source.path;
  let newEtag: string | undefined;
  let newest: string | undefined;
  let complete = false;
  for (let page = 1; page <= MAX_PAGES; page++) {
    if (page > 1 && blockedUntil(state.rate_limit, clock())) break;
    const etag = page === 1 ? st.etag : undefined;
    const a = await request(ctx.octokit, target, etag, config.githubTimeoutS);
    rec.pages = page;
    rec.status = a.status;
    if (page === 1) rec.latency_ms = Math.round(a.latencyMs * 100) / 100;
    const stop = applyRateLimit(state.rate_limit, a.status, a.headers, clock(), metrics);
    rec.rate_limit_remaining = state.rate_limit.remaining;
    rec.rate_limit_reset = state.rate_limit.reset_at;
    if (page === 1) {
      const interval = intHeader(a.headers, "x-poll-interval");
      if (interval && interval > 0) st.poll_interval_s = interval;
    }
    const count = (outcome: string) =>
      metrics.githubPolls.inc({ outcome, status: a.status === null ? "none" : String(a.status) });

    if (a.timedOut) {
      count("timeout");
      Object.assign(rec, { outcome: "timeout", error: a.message });
      break;
    }
    if (a.status === 304) {
      count("not_modified");
      rec.outcome = "not_modified";
      complete = true;
      break;
    }
    if (a.status === null || a.status >= 300) {
      if (a.status !== null && (a.status === 403 || a.status === 429) && stop) {
        count("rate_limited");
        Object.assign(rec, {
          outcome: "rate_limited",
          error: `rate limited (HTTP ${a.status}); no request before ${stop.toISOString()}`,
        });
      } else {
        count("error");
        const what = a.status === null ? "request failed" : `HTTP ${a.status}`;
        Object.assign(rec, { outcome: "error", error: `${what}: ${a.message}` });
      }
      break;
    }
    if (!Array.isArray(a.data)) {
      count("error");
      Object.assign(rec, {
        outcome: "error",
        error: `HTTP ${a.status}: malformed answer (expected a JSON array of events)`,
      });
      break;
    }
    count("ok");

    const rows: GitHubRow[] = [];
    let reachedCursor = false;
    let oldOnly = a.data.length > 0;
    for (const ev of a.data) {
      const m = toLogEvent(ev, {
        source,
        config,
        statusCode: a.status,
        latencyMs: a.latencyMs,
        now: clock(),
      });
      if ("skip" in m) {
        rec[m.skip]++;
        metrics.eventsRejected.inc({ reason: `github_${m.skip}` });
        if (m.skip === "too_old") reachedCursor = true;
        continue;
      }
      oldOnly = false;
      rows.push(m.row);
      const t = m.row.timestamp.toISOString();
      if (!newest || t > newest) newest = t;
      if (st.cursor && t <= st.cursor) reachedCursor = true;
    }
    try {
      const stored = await storeGitHubEvents(deps.sql, rows);
      rec.new += stored.inserted;
      rec.duplicates += stored.duplicates;
      state.events_ingested_total += stored.inserted;
      metrics.eventsIngested.inc({ source: "github" }, stored.inserted);
    } catch (err) {
      Object.assign(rec, { outcome: "error", error: `storing events: ${errorMessage(err)}` });
      break;
    }
    if (page === 1) newEtag = header(a.headers, "etag");
    const next = nextLink(header(a.headers, "link"), config.githubApiUrl);
    // Older pages hold nothing new once a page reaches what the last complete poll saw
    // (or the retention cut-off); past page 3 GitHub serves nothing at all.
    if (!next || reachedCursor || oldOnly || page === MAX_PAGES) {
      complete = true;
      break;
    }
    target = next;
  }

  if (complete) {
    // Only a complete poll moves the ETag and cursor: after a failure half-way, the next
    // poll fetches the first page again and pages down to the old cursor.
    if (rec.outcome === "ok") {
      if (newEtag) st.etag = newEtag;
      else delete st.etag;
      if (newest && (!st.cursor || newest > st.cursor)) st.cursor = newest;
    }
  }
  st.last = rec;
  const fields = {
    source: source.key,
    outcome: rec.outcome,
    status: rec.status ?? "-",
    new: rec.new,
    duplicates: rec.duplicates,
    error: rec.error,
  };
  if (rec.error) log.warning("poll {source} failed after {new} new events: {error}", fields);
  else {
    log[rec.new > 0 ? "info" : "debug"](
      "poll {source}: {outcome} ({status}), {new} new, {duplicates} already stored",
      fields,
    );
  }
  return rec;
}

/** Polls every configured source once (those that are due); mutates and returns the state. */
export async function pollGitHub(
  deps: JobDeps,
  state: IngestorState,
  opts: { force?: boolean } = {},
): Promise<IngestResult> {
  const ctx: PollContext = {
    deps,
    octokit: client(deps.config),
    state,
    force: opts.force ?? false,
  };
  const polls: PollRecord[] = [];
  for (const spec of deps.config.githubSources) {
    polls.push(await pollSource(ctx, parseSource(spec)));
  }
  return {
    polls,
    new: polls.reduce((n, p) => n + p.new, 0),
    duplicates: polls.reduce((n, p) => n + p.duplicates, 0),
    rate_limit: { ...state.rate_limit },
  };
}

const FAILED: PollOutcome[] = ["error", "timeout", "rate_limited"];
const POLLED: PollOutcome[] = ["ok", "not_modified"];

/** A run fails when any source failed, succeeds when one was polled, else did nothing. */
export function runOutcome(polls: PollRecord[]): {
  outcome: "success" | "failure" | "idle";
  error?: string;
} {
  const failed = polls.filter((p) => FAILED.includes(p.outcome));
  if (failed.length) {
    return { outcome: "failure", error: failed.map((p) => `${p.source}: ${p.error}`).join("; ") };
  }
  return { outcome: polls.some((p) => POLLED.includes(p.outcome)) ? "success" : "idle" };
}
