// What the control endpoints do and answer: a job's switch set (or flipped) for every
// instance, and a run now, under the same lock and switch as the cron tick. A skipped run is
// an answer, not an error: the switch is off, or another run holds the lock.
import type { Sql } from "../db/connect.ts";
import { runIngestor } from "./github/job.ts";
import { flipJobEnabled, type JobName, setJobEnabled } from "./job-control.ts";
import { pruneCutoffs, runPruner } from "./pruner.ts";
import type { JobDeps, JobRun } from "./runner.ts";

/** Sets the switch to `enabled`, or flips it when that is undefined; answers the new state. */
export async function switchJob(
  sql: Sql,
  job: JobName,
  enabled: boolean | undefined,
  updatedBy: string,
) {
  const row = enabled === undefined
    ? await flipJobEnabled(sql, job, updatedBy)
    : await setJobEnabled(sql, job, enabled, updatedBy);
  return {
    job: row.job,
    enabled: row.enabled,
    updated_at: row.updated_at.toISOString(),
    updated_by: row.updated_by,
  };
}

function runStatus(run: JobRun<unknown>) {
  switch (run.outcome) {
    case "skipped_disabled":
      return { status: "skipped" as const, reason: "disabled" as const };
    case "skipped_locked":
      return { status: "skipped" as const, reason: "locked" as const };
    default:
      return { status: run.outcome };
  }
}

/** Polls every source now, interval or not (never while GitHub's rate limit is exhausted). */
export async function runIngestorNow(deps: JobDeps) {
  const run = await runIngestor(deps, { force: true });
  const r = run.result;
  return {
    ...runStatus(run),
    error: run.error,
    started_at: run.started_at,
    duration_ms: run.duration_ms,
    new: r?.new ?? 0,
    duplicates: r?.duplicates ?? 0,
    rate_limit_remaining: r?.rate_limit.remaining ?? null,
    polls: r?.polls ?? [],
  };
}

/** Prunes now to `days` (default RETENTION_DAYS); a dry run reports the same figures. */
export async function pruneNow(deps: JobDeps, opts: { days?: number; dryRun?: boolean }) {
  const days = opts.days ?? deps.config.retentionDays;
  const dryRun = opts.dryRun ?? false;
  const run = await runPruner(deps, { days, dryRun });
  const r = run.result;
  const planned = pruneCutoffs(deps.config, days, new Date(run.started_at));
  return {
    ...runStatus(run),
    error: run.error,
    deleted: r?.deleted ?? 0,
    dropped_partitions: r?.dropped_partitions ?? 0,
    cutoff: r?.cutoff ?? planned.cutoff.toISOString(),
    rollup_cutoff: r?.rollup_cutoff ?? planned.rollupCutoff.toISOString(),
    dry_run: dryRun,
    duration_ms: run.duration_ms,
  };
}
