// Runs one background job at most once at a time across every instance: a session-level
// advisory lock on a reserved connection (held for the whole run, released even when the
// pool hands the connection to someone else later), then the job's switch in job_control,
// then the work, then the run record. The cron tick and the manual endpoints both come here.
import type { Config } from "../config.ts";
import {
  getJobControl,
  type JobControl,
  type JobName,
  markJobFinished,
  markJobStarted,
} from "./job-control.ts";
import type { Sql, Tx } from "../db/connect.ts";
import { logger } from "../logging.ts";
import type { Metrics } from "../metrics/registry.ts";

export interface JobDeps {
  sql: Sql;
  config: Config;
  metrics: Metrics;
  /** The clock; tests move it forward to pass poll intervals and rate-limit resets. */
  now?: () => Date;
}

/** Fixed keys, next to the migration (7246330001) and partition (7246330002) locks. */
export const JOB_LOCK_KEYS: Record<JobName, number> = {
  ingestor: 7_246_330_101,
  pruner: 7_246_330_102,
  alerts: 7_246_330_103,
};

/** What the work reports: success, failure, or idle (nothing was due, nothing attempted). */
export interface WorkResult<T> {
  outcome: "success" | "failure" | "idle";
  error?: string;
  /** The job's new cursor state, saved with the run record. */
  state?: Record<string, unknown>;
  result: T;
}

export type RunOutcome = "success" | "failure" | "idle" | "skipped_locked" | "skipped_disabled";

export interface JobRun<T> {
  job: JobName;
  outcome: RunOutcome;
  started_at: string;
  duration_ms: number;
  error: string | null;
  result: T | null;
}

export type Work<T> = (control: JobControl, now: Date) => Promise<WorkResult<T>>;

/**
 * Told how a run ended: in the transaction that records its end (so that what it writes, an
 * audit entry, commits with the run record or not at all), or alone for a skipped run.
 */
export type OnRunEnd<T> = (sql: Sql | Tx, run: JobRun<T>) => Promise<void>;

export function errorMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > 500 ? text.slice(0, 497) + "..." : text;
}

export async function runJob<T>(
  deps: JobDeps,
  job: JobName,
  work: Work<T>,
  onEnd?: OnRunEnd<T>,
): Promise<JobRun<T>> {
  const log = logger("jobs", job);
  const now = deps.now ?? (() => new Date());
  const startedAt = now();
  const started = performance.now();
  const ended = (
    outcome: RunOutcome,
    result: T | null = null,
    error: string | null = null,
  ): JobRun<T> => ({
    job,
    outcome,
    started_at: startedAt.toISOString(),
    duration_ms: Math.round((performance.now() - started) * 100) / 100,
    error,
    result,
  });
  const done = (run: JobRun<T>): JobRun<T> => {
    deps.metrics.jobRuns.inc({ observian_job: job, outcome: run.outcome });
    return run;
  };
  const skipped = async (outcome: "skipped_locked" | "skipped_disabled") => {
    const run = ended(outcome);
    await onEnd?.(deps.sql, run);
    return done(run);
  };

  const conn = await deps.sql.reserve();
  let locked = false;
  try {
    const [row] = await conn<{ locked: boolean }[]>`
      select pg_try_advisory_lock(${JOB_LOCK_KEYS[job]}) as locked`;
    locked = row.locked;
    if (!locked) {
      log.debug("another run holds the lock; skipping");
      return await skipped("skipped_locked");
    }
    const control = await getJobControl(deps.sql, job);
    if (!control.enabled) return await skipped("skipped_disabled");

    await markJobStarted(deps.sql, job, startedAt);
    let res: WorkResult<T> | undefined;
    let error: string | null = null;
    try {
      res = await work(control, startedAt);
      error = res.outcome === "failure" ? res.error ?? "unknown error" : null;
    } catch (err) {
      error = errorMessage(err);
    }
    const outcome = res && !error ? res.outcome : "failure";
    const run = ended(outcome, res?.result ?? null, error);
    const finished = { at: now(), outcome, error, state: res?.state };
    if (onEnd) {
      await deps.sql.begin(async (tx) => {
        await markJobFinished(tx, job, finished);
        await onEnd(tx, run);
      });
    } else {
      await markJobFinished(deps.sql, job, finished);
    }
    deps.metrics.jobDuration.observe({ observian_job: job }, (performance.now() - started) / 1000);
    if (outcome === "success") {
      deps.metrics.jobLastSuccess.set({ observian_job: job }, now().getTime() / 1000);
    }
    if (error) log.warning("run failed: {error}", { error });
    return done(run);
  } finally {
    if (locked) {
      // If this fails the connection is broken, and PostgreSQL drops its session locks.
      await conn`select pg_advisory_unlock(${JOB_LOCK_KEYS[job]})`.catch(() => {});
    }
    conn.release();
  }
}
