// What the control endpoints do and answer: a job's switch set (or flipped) for every
// instance, and a run now, under the same lock and switch as the cron tick. A skipped run is
// an answer, not an error: the switch is off, or another run holds the lock. Each is recorded
// in the audit log: a switch in its own transaction, a run in the one that records its end.
import { type AlertsReport, runAlertsJob } from "./alerts.ts";
import { type AuditOrigin, recordAudit } from "../access/audit.ts";
import type { Sql } from "../db/connect.ts";
import { type IngestResult, runIngestor } from "./github/job.ts";
import { flipJobEnabled, type JobName, setJobEnabled } from "./job-control.ts";
import { pruneCutoffs, type PruneReport, runPruner } from "./pruner.ts";
import type { JobDeps, JobRun } from "./runner.ts";

/** Sets the switch to `enabled`, or flips it when that is undefined; answers the new state. */
export async function switchJob(
  sql: Sql,
  job: JobName,
  enabled: boolean | undefined,
  origin: AuditOrigin,
) {
  const row = await sql.begin(async (tx) => {
    const [old] = await tx<{ was: boolean }[]>`
      select enabled as was from job_control where job = ${job} for update`;
    const row = enabled === undefined
      ? await flipJobEnabled(tx, job, origin.actor)
      : await setJobEnabled(tx, job, enabled, origin.actor);
    await recordAudit(tx, origin, {
      action: "job.toggle",
      target: `job:${job}`,
      detail: { enabled: row.enabled, was: old?.was ?? null, requested: enabled ?? "flip" },
    });
    return row;
  });
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

/**
 * Polls every source now, interval or not (never while GitHub's rate limit is exhausted). One
 * audit entry (job.run) with the outcome, written with the run record.
 */
export async function runIngestorNow(deps: JobDeps, origin: AuditOrigin) {
  const answer = (run: JobRun<IngestResult>) => {
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
  };
  const run = await runIngestor(deps, {
    force: true,
    onEnd: async (tx, run) => {
      const { polls, ...figures } = answer(run);
      await recordAudit(tx, origin, {
        action: "job.run",
        target: "job:ingestor",
        detail: { ...figures, polls: polls.length },
      });
    },
  });
  return answer(run);
}

/**
 * Prunes now to `days` (default RETENTION_DAYS); a dry run reports the same figures. A real run
 * is recorded (job.prune, with its days and what it removed) in the transaction that records
 * the run's end: the prune itself is many statements, some of which (a concurrent DETACH)
 * cannot run in a transaction. A dry run changes nothing and is not recorded.
 */
export async function pruneNow(
  deps: JobDeps,
  opts: { days?: number; dryRun?: boolean },
  origin: AuditOrigin,
) {
  const days = opts.days ?? deps.config.retentionDays;
  const dryRun = opts.dryRun ?? false;
  const answer = (run: JobRun<PruneReport>) => {
    const r = run.result;
    const planned = pruneCutoffs(deps.config, days, new Date(run.started_at));
    return {
      ...runStatus(run),
      error: run.error,
      deleted: r?.deleted ?? 0,
      dropped_partitions: r?.dropped_partitions ?? 0,
      cutoff: r?.cutoff ?? planned.cutoff.toISOString(),
      rollup_cutoff: r?.rollup_cutoff ?? planned.rollupCutoff.toISOString(),
      audit_deleted: r?.audit_deleted ?? 0,
      markers_deleted: r?.markers_deleted ?? 0,
      dry_run: dryRun,
      duration_ms: run.duration_ms,
    };
  };
  const run = await runPruner(deps, {
    days,
    dryRun,
    onEnd: async (tx, run) => {
      const r = run.result;
      await recordAudit(tx, origin, {
        action: "job.prune",
        target: "job:pruner",
        detail: {
          days,
          ...answer(run),
          seen_ids_deleted: r?.seen_ids_deleted ?? 0,
          dedupe_keys_deleted: r?.dedupe_keys_deleted ?? 0,
        },
      });
    },
  });
  return answer(run);
}

/** Evaluates every rule and SLO now (one audit entry, job.run, with the figures). */
export async function runAlertsNow(deps: JobDeps, origin: AuditOrigin) {
  const answer = (run: JobRun<AlertsReport>) => ({
    ...runStatus(run),
    error: run.error,
    started_at: run.started_at,
    duration_ms: run.duration_ms,
    report: run.result,
  });
  const run = await runAlertsJob(deps, {
    onEnd: async (tx, run) => {
      await recordAudit(tx, origin, {
        action: "job.run",
        target: "job:alerts",
        detail: answer(run),
      });
    },
  });
  return answer(run);
}
