// One poll of one source, step by step: skip it if it is not due or the rate limit blocks; ask
// for up to MAX_PAGES pages (the ETag on the first); judge each answer; map and store its events
// before asking for the next page; stop at the cursor; move the ETag and cursor only when the
// poll completed; log and return the record.
import { logger } from "../../logging.ts";
import { errorMessage, type JobDeps } from "../runner.ts";
import {
  type Answer,
  applyRateLimit,
  type GitHubClient,
  MAX_PAGES,
  type Source,
} from "./client.ts";
import { type GitHubRow, toLogEvent } from "./mapping.ts";
import {
  blockedUntil,
  type IngestorState,
  isDue,
  type PollOutcome,
  type PollRecord,
  type SourceState,
} from "./state.ts";
import { storeGitHubEvents } from "./store.ts";

export interface PollContext {
  deps: JobDeps;
  client: GitHubClient;
  state: IngestorState;
  /** Poll even when the interval has not passed (a manual run); the rate limit still holds. */
  force: boolean;
  clock: () => Date;
}

/** What a poll carries from page to page. */
interface Progress {
  source: Source;
  st: SourceState;
  rec: PollRecord;
  /** The next page to ask for: the source's path, then rel="next" URLs. */
  target: string;
  /** The first page's ETag, kept once that page is stored. */
  etag?: string;
  /** Newest created_at stored by this poll. */
  newest?: string;
}

/** After a page: ask for the next, the poll is complete, or it stopped short. */
type PageStep = "next" | "complete" | "stopped";

export async function pollSource(ctx: PollContext, source: Source): Promise<PollRecord> {
  const now = ctx.clock();
  const st: SourceState = ctx.state.sources[source.key] ?? {};
  const rec = newRecord(source, ctx.state, now);
  const skip = skipReason(ctx, st, now);
  if (skip) return { ...rec, outcome: skip };

  ctx.state.sources[source.key] = st;
  st.last_poll_at = now.toISOString();
  const p: Progress = { source, st, rec, target: source.path };
  let step: PageStep = "next";
  for (let page = 1; page <= MAX_PAGES && step === "next"; page++) {
    if (page > 1 && blockedUntil(ctx.state.rate_limit, ctx.clock())) break;
    step = await pollPage(ctx, p, page);
  }
  if (step === "complete") advance(p);
  st.last = rec;
  logPoll(rec);
  return rec;
}

function newRecord(source: Source, state: IngestorState, now: Date): PollRecord {
  return {
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
}

function skipReason(ctx: PollContext, st: SourceState, now: Date): PollOutcome | null {
  if (!ctx.force && !isDue(ctx.deps.config, st, now)) return "skipped_interval";
  if (blockedUntil(ctx.state.rate_limit, now)) return "skipped_rate_limit";
  return null;
}

async function pollPage(ctx: PollContext, p: Progress, page: number): Promise<PageStep> {
  const { rec, st } = p;
  const a = await ctx.client.get(p.target, page === 1 ? st.etag : undefined);
  const stop = recordAnswer(ctx, p, page, a);
  const verdict = judge(a, stop);
  ctx.deps.metrics.githubPolls.inc({
    outcome: verdict.outcome,
    status: a.status === null ? "none" : String(a.status),
  });
  if (verdict.outcome !== "ok") {
    Object.assign(rec, verdict);
    return verdict.outcome === "not_modified" ? "complete" : "stopped";
  }

  const events = a.data as unknown[];
  const scan = mapPage(ctx, p, a, events);
  try {
    const stored = await storeGitHubEvents(ctx.deps.sql, scan.rows);
    rec.new += stored.inserted;
    rec.duplicates += stored.duplicates;
    ctx.state.events_ingested_total += stored.inserted;
    ctx.deps.metrics.eventsIngested.inc({ source: "github" }, stored.inserted);
  } catch (err) {
    Object.assign(rec, { outcome: "error", error: `storing events: ${errorMessage(err)}` });
    return "stopped";
  }
  if (page === 1) p.etag = a.etag;
  // Older pages hold nothing new once a page reaches what the last complete poll saw
  // (or the retention cut-off); past page 3 GitHub serves nothing at all.
  if (!a.next || scan.reachedCursor || scan.oldOnly || page === MAX_PAGES) return "complete";
  p.target = a.next;
  return "next";
}

/** Notes what any answer tells: status, latency, rate limit, poll interval; returns the block. */
function recordAnswer(ctx: PollContext, p: Progress, page: number, a: Answer): Date | null {
  const { rec, st } = p;
  rec.pages = page;
  rec.status = a.status;
  if (page === 1) rec.latency_ms = Math.round(a.latencyMs * 100) / 100;
  const rl = ctx.state.rate_limit;
  const stop = applyRateLimit(rl, a.status, a.rateLimit, ctx.clock(), ctx.deps.metrics);
  rec.rate_limit_remaining = rl.remaining;
  rec.rate_limit_reset = rl.reset_at;
  if (page === 1 && a.pollIntervalS) st.poll_interval_s = a.pollIntervalS;
  return stop;
}

/** What an answer means for the poll; "ok" only for a 2xx JSON array of events. */
function judge(
  a: Answer,
  stop: Date | null,
): { outcome: "ok" | "not_modified" | "timeout" | "rate_limited" | "error"; error?: string } {
  if (a.timedOut) return { outcome: "timeout", error: a.message };
  if (a.status === 304) return { outcome: "not_modified" };
  if (a.status === null || a.status >= 300) {
    if ((a.status === 403 || a.status === 429) && stop) {
      return {
        outcome: "rate_limited",
        error: `rate limited (HTTP ${a.status}); no request before ${stop.toISOString()}`,
      };
    }
    const what = a.status === null ? "request failed" : `HTTP ${a.status}`;
    return { outcome: "error", error: `${what}: ${a.message}` };
  }
  if (!Array.isArray(a.data)) {
    return {
      outcome: "error",
      error: `HTTP ${a.status}: malformed answer (expected a JSON array of events)`,
    };
  }
  return { outcome: "ok" };
}

/** The page's events as rows, skips counted; whether the page reached the cursor. */
function mapPage(ctx: PollContext, p: Progress, a: Answer, events: unknown[]) {
  const { rec, st, source } = p;
  const { config, metrics } = ctx.deps;
  const rows: GitHubRow[] = [];
  let reachedCursor = false;
  let oldOnly = events.length > 0;
  for (const ev of events) {
    const m = toLogEvent(ev, {
      source,
      config,
      statusCode: a.status!,
      latencyMs: a.latencyMs,
      now: ctx.clock(),
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
    if (!p.newest || t > p.newest) p.newest = t;
    if (st.cursor && t <= st.cursor) reachedCursor = true;
  }
  return { rows, reachedCursor, oldOnly };
}

/**
 * Only a complete poll moves the ETag and cursor: after a failure half-way, the next poll
 * fetches the first page again and pages down to the old cursor. A 304 moves nothing.
 */
function advance({ st, rec, etag, newest }: Progress): void {
  if (rec.outcome !== "ok") return;
  if (etag) st.etag = etag;
  else delete st.etag;
  if (newest && (!st.cursor || newest > st.cursor)) st.cursor = newest;
}

function logPoll(rec: PollRecord): void {
  const log = logger("jobs", "github");
  const fields = {
    source: rec.source,
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
}
