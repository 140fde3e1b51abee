// What the status and health endpoints report, computed from a job_control row, the
// configuration and the clock: no I/O, so every instance answers the same for the same row.
import type { AlertsReport } from "./alerts.ts";
import type { Config } from "../config.ts";
import { cronPeriodMs, nextCronTime } from "./cron.ts";
import { parseSource } from "./github/client.ts";
import { pollIntervalS, type PollRecord, readIngestorState } from "./github/state.ts";
import type { JobControl } from "./job-control.ts";

const iso = (d: Date | null) => d ? d.toISOString() : null;

/** Health calls the ingestor stale after this many poll intervals without a success. */
export const STALE_INTERVALS = 3;

export interface SourceStatus {
  source: string;
  poll_interval_s: number;
  last_poll_at: string | null;
  next_poll_at: string | null;
  has_etag: boolean;
  cursor: string | null;
  last_poll: PollRecord | null;
}

export function ingestorStatus(row: JobControl, config: Config, now: Date) {
  const state = readIngestorState(row.state);
  const blocked = state.rate_limit.blocked_until &&
      new Date(state.rate_limit.blocked_until).getTime() > now.getTime()
    ? state.rate_limit.blocked_until
    : null;
  const sources: SourceStatus[] = config.githubSources.map((spec) => {
    const st = state.sources[parseSource(spec).key];
    const interval = pollIntervalS(config, st);
    return {
      source: spec,
      poll_interval_s: interval,
      last_poll_at: st?.last_poll_at ?? null,
      next_poll_at: st?.last_poll_at
        ? new Date(new Date(st.last_poll_at).getTime() + interval * 1000).toISOString()
        : null,
      has_etag: !!st?.etag,
      cursor: st?.cursor ?? null,
      last_poll: st?.last ?? null,
    };
  });
  return {
    enabled: row.enabled,
    source: config.githubSources.join(","),
    schedule: config.ingestCron,
    last_run_at: iso(row.last_started_at),
    last_finished_at: iso(row.last_finished_at),
    last_success_at: iso(row.last_success_at),
    last_error: row.last_error,
    consecutive_failures: row.consecutive_failures,
    events_ingested_total: state.events_ingested_total,
    rate_limit_remaining: state.rate_limit.remaining,
    rate_limit_reset: state.rate_limit.reset_at,
    rate_limited_until: blocked,
    next_run_at: row.enabled ? iso(nextCronTime(config.ingestCron, now)) : null,
    updated_at: iso(row.updated_at),
    updated_by: row.updated_by,
    sources,
  };
}

export type IngestorHealth =
  | { running: true; last_success_at: string; interval_s: number }
  | { running: false; reason: string; last_success_at: string | null; interval_s: number };

/**
 * Running: switched on, no failure since the last success, and that success within
 * STALE_INTERVALS poll intervals (the longest of X-Poll-Interval, the configured interval and
 * the cron period, since a poll cannot happen more often than the cron fires).
 */
export function ingestorHealth(row: JobControl, config: Config, now: Date): IngestorHealth {
  const state = readIngestorState(row.state);
  const polls = config.githubSources.map((spec) =>
    pollIntervalS(config, state.sources[parseSource(spec).key])
  );
  const cronS = (cronPeriodMs(config.ingestCron, now) ?? 0) / 1000;
  const interval_s = Math.max(...polls, cronS);
  const last_success_at = iso(row.last_success_at);
  if (!row.enabled) return { running: false, reason: "disabled", last_success_at, interval_s };
  if (row.consecutive_failures > 0) {
    return {
      running: false,
      reason: `failing: ${row.last_error ?? "unknown error"}`,
      last_success_at,
      interval_s,
    };
  }
  if (
    !row.last_success_at ||
    now.getTime() - row.last_success_at.getTime() > STALE_INTERVALS * interval_s * 1000
  ) {
    return { running: false, reason: "stale", last_success_at, interval_s };
  }
  return { running: true, last_success_at: last_success_at!, interval_s };
}

export function prunerStatus(row: JobControl, config: Config, now: Date) {
  const last = row.state.last_result as
    | { deleted: number; dropped_partitions: number; cutoff: string; duration_ms: number }
    | undefined;
  return {
    enabled: row.enabled,
    schedule: config.pruneCron,
    retention_days: config.retentionDays,
    rollup_retention_days: config.rollupRetentionDays,
    last_run_at: iso(row.last_started_at),
    last_finished_at: iso(row.last_finished_at),
    last_success_at: iso(row.last_success_at),
    last_error: row.last_error,
    consecutive_failures: row.consecutive_failures,
    next_run_at: row.enabled ? iso(nextCronTime(config.pruneCron, now)) : null,
    updated_at: iso(row.updated_at),
    updated_by: row.updated_by,
    last_result: last ?? null,
  };
}

/** The alerts job's switch, schedule and last evaluation. */
export function alertsStatus(row: JobControl, config: Config, now: Date) {
  return {
    enabled: row.enabled,
    schedule: config.alertCron,
    repeat_interval_min: config.alertRepeatIntervalMin,
    default_channel: config.alertDefaultChannel ?? null,
    last_run_at: iso(row.last_started_at),
    last_finished_at: iso(row.last_finished_at),
    last_success_at: iso(row.last_success_at),
    last_error: row.last_error,
    consecutive_failures: row.consecutive_failures,
    next_run_at: row.enabled ? iso(nextCronTime(config.alertCron, now)) : null,
    updated_at: iso(row.updated_at),
    updated_by: row.updated_by,
    last_result: (row.state.last_result as AlertsReport | undefined) ?? null,
  };
}
