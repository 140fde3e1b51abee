// The GitHub poller's memory: what lives in job_control.state for the "ingestor" job, shared by
// every instance and saved with each run record. Per source the ETag, cursor, X-Poll-Interval
// and last poll; across sources the rate limit and a running total. Plain data and the rules
// that read it (is a source due, is the rate limit blocking); no I/O.
import type { Config } from "../../config.ts";

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

/** Whether a source's interval has passed since its last poll. */
export function isDue(config: Config, st: SourceState, now: Date): boolean {
  if (!st.last_poll_at) return true;
  const intervalMs = pollIntervalS(config, st) * 1000;
  // Cron ticks land a few ms either side of the interval; don't skip a whole tick for that.
  const slackMs = Math.min(5000, intervalMs * 0.05);
  return now.getTime() >= new Date(st.last_poll_at).getTime() + intervalMs - slackMs;
}

/** Until when no request may be made, if that is still in the future. */
export function blockedUntil(rl: RateLimitState, now: Date): Date | null {
  if (!rl.blocked_until) return null;
  const t = new Date(rl.blocked_until);
  return t.getTime() > now.getTime() ? t : null;
}
