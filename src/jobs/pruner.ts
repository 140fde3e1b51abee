// Retention. The cutoff is exact: now − days, to the millisecond, so "older than N days"
// means what it says and nothing the ingest window (also now − days) accepts is removed.
// Partitions entirely before the cutoff's UTC day are detached and dropped (fast, no dead
// rows); the one partition holding the cutoff gets a DELETE of its older rows, and its day's
// rollups are rebuilt from what remains. That partition is dropped whole a day later, so the
// DELETE's dead rows never linger.
import type { Config } from "../config.ts";
import type { Sql } from "../db/connect.ts";
import { withRetry } from "../db/sqlstate.ts";
import {
  ensurePartitions,
  listPartitionDays,
  PARTITION_DAYS_AHEAD,
  utcDay,
} from "../db/partitions.ts";
import { logger } from "../logging.ts";
import type { Metrics } from "../metrics/registry.ts";
import {
  countOldMarkers,
  countPartitionRows,
  deleteOldMarkers,
  deleteSeenGitHubEvents,
  detachPartition,
  dropDetachedPartition,
  finishDetach,
  listLogPartitions,
  pruneBoundary,
} from "./prune-queries.ts";
import { type JobDeps, type JobRun, type OnRunEnd, runJob } from "./runner.ts";
import { countOldAudit, pruneAudit } from "../access/audit.ts";
import { DAY_MS, HOUR_MS } from "../time.ts";
import { deleteDedupeKeys } from "../ingest/store.ts";

export interface PruneOptions {
  /** Days of logs kept; the configured RETENTION_DAYS when absent. */
  days?: number;
  dryRun?: boolean;
  now?: Date;
}

export interface PruneReport {
  /** Log rows removed: those in dropped partitions plus those deleted at the boundary. */
  deleted: number;
  dropped_partitions: number;
  cutoff: string;
  /** Rollup buckets ending at or before this go; earlier than cutoff when they are kept longer. */
  rollup_cutoff: string;
  duration_ms: number;
  dry_run: boolean;
  partitions_created: number;
  partitions_ahead: number;
  seen_ids_deleted: number;
  /** Idempotency keys older than INGEST_DEDUPE_HOURS forgotten. */
  dedupe_keys_deleted: number;
  /** Audit log entries older than AUDIT_RETENTION_DAYS (whatever `days` says) removed. */
  audit_deleted: number;
  audit_cutoff: string;
  /** Markers (deployments, releases) older than cutoff removed. */
  markers_deleted: number;
}

/**
 * Rollups follow the log cutoff (?days included), so summaries agree with the rows; only a
 * ROLLUP_RETENTION_DAYS longer than RETENTION_DAYS keeps them longer, on purpose outliving
 * the rows (and then they are not rebuilt at the log boundary). A shorter one is not
 * honoured: summaries never lose rows that the logs still have.
 */
export function pruneCutoffs(config: Config, days: number, now: Date) {
  const cutoff = new Date(now.getTime() - days * DAY_MS);
  const rollupCutoff = config.rollupRetentionDays > config.retentionDays
    ? new Date(Math.min(cutoff.getTime(), now.getTime() - config.rollupRetentionDays * DAY_MS))
    : cutoff;
  // GitHub ids must be remembered as long as the ingestor still accepts their events.
  const seenCutoff = new Date(
    Math.min(cutoff.getTime(), now.getTime() - config.retentionDays * DAY_MS),
  );
  return { cutoff, rollupCutoff, seenCutoff };
}

export async function pruneLogs(
  sql: Sql,
  config: Config,
  metrics: Metrics | null,
  opts: PruneOptions = {},
): Promise<PruneReport> {
  const log = logger("jobs", "pruner");
  const started = performance.now();
  const now = opts.now ?? new Date();
  const days = opts.days ?? config.retentionDays;
  const dryRun = opts.dryRun ?? false;
  const { cutoff, rollupCutoff, seenCutoff } = pruneCutoffs(config, days, now);
  const cutoffDay = utcDay(cutoff);
  const auditCutoff = new Date(now.getTime() - config.auditRetentionDays * DAY_MS);

  const tables = await listLogPartitions(sql);
  const whole = tables.filter((t) => t.day < cutoffDay);
  const boundary = tables.find((t) => t.day === cutoffDay && t.attached && !t.detach_pending);

  let deleted = 0;
  let dropped = 0;
  let created = 0;
  let seen = 0;
  let keys = 0;
  let audit = 0;
  let markers = 0;
  if (dryRun) {
    for (const t of whole) {
      if (t.attached) deleted += await countPartitionRows(sql, t.name);
      dropped++;
    }
    if (boundary) deleted += await countPartitionRows(sql, boundary.name, cutoff);
    audit = await countOldAudit(sql, auditCutoff);
    markers = await countOldMarkers(sql, cutoff);
  } else {
    for (const t of whole) {
      // Counted first: afterwards the rows are gone. Nothing writes to days this old.
      const rows = t.attached ? await countPartitionRows(sql, t.name) : 0;
      if (t.detach_pending) await finishDetach(sql, t.name);
      else if (t.attached) await detachPartition(sql, t.name);
      await dropDetachedPartition(sql, t.name);
      deleted += rows;
      dropped++;
    }
    // Ingest's rollup compaction can win a race with the boundary's rebuild (40001, 40P01).
    deleted += await withRetry(
      () =>
        pruneBoundary(sql, {
          partition: boundary?.name ?? null,
          cutoff,
          rollupCutoff,
          maxEventTypes: config.rollupMaxEventTypes,
        }),
      { attempts: 5, baseDelayMs: 50, maxDelayMs: 1000 },
    );
    seen = await deleteSeenGitHubEvents(sql, seenCutoff);
    keys = await deleteDedupeKeys(
      sql,
      new Date(now.getTime() - config.ingestDedupeHours * HOUR_MS),
    );
    audit = await pruneAudit(sql, auditCutoff);
    markers = await deleteOldMarkers(sql, cutoff);
    // Upcoming days only: past days exist or are created on demand inside the ingest window.
    created = await ensurePartitions(
      sql,
      utcDay(now),
      utcDay(new Date(now.getTime() + PARTITION_DAYS_AHEAD * DAY_MS)),
    );
  }
  const ahead = daysAhead(await listPartitionDays(sql), now);

  const report: PruneReport = {
    deleted,
    dropped_partitions: dropped,
    cutoff: cutoff.toISOString(),
    rollup_cutoff: rollupCutoff.toISOString(),
    duration_ms: Math.round((performance.now() - started) * 100) / 100,
    dry_run: dryRun,
    partitions_created: created,
    partitions_ahead: ahead,
    seen_ids_deleted: seen,
    dedupe_keys_deleted: keys,
    audit_deleted: audit,
    audit_cutoff: auditCutoff.toISOString(),
    markers_deleted: markers,
  };
  if (metrics && !dryRun) {
    metrics.prunerDeletedRows.inc(deleted);
    metrics.prunerDroppedPartitions.inc(dropped);
    metrics.prunerDeletedAuditRows.inc(audit);
  }
  metrics?.partitionsAhead.set(ahead);
  log.info(
    "{mode}: {deleted} rows, {dropped} partitions, {markers} markers before {cutoff}, " +
      "{audit} audit entries ({ms} ms)",
    {
      markers,
      mode: dryRun ? "dry run" : "pruned",
      deleted,
      dropped,
      audit,
      cutoff: report.cutoff,
      ms: report.duration_ms,
    },
  );
  return report;
}

/** Consecutive days after today that have a partition. */
export function daysAhead(days: string[], now: Date): number {
  const have = new Set(days);
  let n = 0;
  while (have.has(utcDay(new Date(now.getTime() + (n + 1) * DAY_MS)))) n++;
  return n;
}

/**
 * The pruner job: what the cron tick and POST /control/prune call. A dry run changes
 * nothing, so it needs neither the lock nor the switch and leaves the run record alone (and
 * `onEnd` is not called).
 */
export async function runPruner(
  deps: JobDeps,
  opts: { days?: number; dryRun?: boolean; onEnd?: OnRunEnd<PruneReport> } = {},
): Promise<JobRun<PruneReport>> {
  const now = deps.now ?? (() => new Date());
  if (opts.dryRun) {
    const started = now();
    const report = await pruneLogs(deps.sql, deps.config, deps.metrics, {
      days: opts.days,
      dryRun: true,
      now: started,
    });
    return {
      job: "pruner",
      outcome: "success",
      started_at: started.toISOString(),
      duration_ms: report.duration_ms,
      error: null,
      result: report,
    };
  }
  return await runJob(deps, "pruner", async (control, startedAt) => {
    const report = await pruneLogs(deps.sql, deps.config, deps.metrics, {
      days: opts.days,
      now: startedAt,
    });
    const { deleted, dropped_partitions, cutoff, duration_ms, audit_deleted, markers_deleted } =
      report;
    return {
      outcome: "success",
      state: {
        ...control.state,
        last_result: {
          deleted,
          dropped_partitions,
          cutoff,
          duration_ms,
          audit_deleted,
          markers_deleted,
        },
      },
      result: report,
    };
  }, opts.onEnd);
}
