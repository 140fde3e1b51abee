// The pruner's SQL. Partition names come from the catalog and only ever match
// log_events_pYYYYMMDD; they are spliced in as quoted identifiers.
import type { Sql } from "../db/connect.ts";
import { DEFAULT_ROLLUP_MAX_EVENT_TYPES } from "../db/rollup-constants.ts";

export interface LogPartition {
  name: string;
  /** YYYY-MM-DD: the UTC day the partition holds. */
  day: string;
  /** Still a partition of log_events (false: a table left detached by an interrupted run). */
  attached: boolean;
  /** A DETACH … CONCURRENTLY was interrupted half-way. */
  detach_pending: boolean;
}

/** Every daily table, attached or left behind by an interrupted run, oldest first. */
export async function listLogPartitions(sql: Sql): Promise<LogPartition[]> {
  return await sql<LogPartition[]>`
    select c.relname as name,
           to_char(to_date(substring(c.relname from '([0-9]{8})$'), 'YYYYMMDD'), 'YYYY-MM-DD')
             as day,
           i.inhrelid is not null as attached,
           coalesce(i.inhdetachpending, false) as detach_pending
    from pg_class c
    left join pg_inherits i on i.inhrelid = c.oid and i.inhparent = 'log_events'::regclass
    where c.relkind = 'r'
      and c.relname ~ '^log_events_p[0-9]{8}$'
      and c.relnamespace = (select relnamespace from pg_class where oid = 'log_events'::regclass)
    order by day`;
}

/** Rows of one partition, all of them or those before `before`. */
export async function countPartitionRows(
  sql: Sql,
  partition: string,
  before?: Date,
): Promise<number> {
  const [row] = before
    ? await sql<{ n: string }[]>`
        select count(*) as n from ${sql(partition)} where "timestamp" < ${before}`
    : await sql<{ n: string }[]>`select count(*) as n from ${sql(partition)}`;
  return Number(row.n);
}

/**
 * Detaches without blocking readers and writers of log_events (SHARE UPDATE EXCLUSIVE
 * instead of ACCESS EXCLUSIVE). Runs outside any transaction: the simple protocol, on its own.
 */
export async function detachPartition(sql: Sql, partition: string): Promise<void> {
  await sql`alter table log_events detach partition ${sql(partition)} concurrently`.simple();
}

/** Completes a concurrent detach that was interrupted. */
export async function finishDetach(sql: Sql, partition: string): Promise<void> {
  await sql`alter table log_events detach partition ${sql(partition)} finalize`.simple();
}

export async function dropDetachedPartition(sql: Sql, partition: string): Promise<void> {
  await sql`drop table if exists ${sql(partition)}`.simple();
}

/**
 * In one transaction: deletes the boundary partition's rows before `cutoff`, deletes rollup
 * buckets that end at or before `rollupCutoff`, and, when rollups follow the same cutoff and
 * rows went, rebuilds the boundary day's rollups from the rows that remain. Repeatable read,
 * so the rebuild reads one snapshot; a concurrent writer of the same buckets makes it fail
 * with 40001, and the caller retries. Returns the rows deleted.
 */
export async function pruneBoundary(
  sql: Sql,
  opts: { partition: string | null; cutoff: Date; rollupCutoff: Date; maxEventTypes?: number },
): Promise<number> {
  return await sql.begin("isolation level repeatable read", async (tx) => {
    const deleted = opts.partition
      ? (await tx`delete from ${tx(opts.partition)} where "timestamp" < ${opts.cutoff}`).count
      : 0;
    const rc = opts.rollupCutoff;
    // Pending deltas are minute buckets on their way to the tiers: old ones go too.
    await tx`delete from log_rollup_pending where bucket <= ${rc}::timestamptz - interval '1 minute'`;
    await tx`delete from log_rollup_1m_store where bucket <= ${rc}::timestamptz - interval '1 minute'`;
    await tx`delete from log_rollup_1h_store where bucket <= ${rc}::timestamptz - interval '1 hour'`;
    await tx`delete from log_rollup_1d_store where bucket <= ${rc}::timestamptz - interval '1 day'`;
    if (deleted > 0 && rc.getTime() === opts.cutoff.getTime()) {
      // Widened by the function to the whole UTC day that holds the cutoff.
      await tx`
        select observian_rollup_rebuild(
          ${opts.cutoff}::timestamptz, ${opts.cutoff}::timestamptz + interval '1 microsecond',
          ${opts.maxEventTypes ?? DEFAULT_ROLLUP_MAX_EVENT_TYPES}::int)`;
    }
    return deleted;
  });
}

/** Forgets GitHub ids of events older than `before`; returns how many. */
export async function deleteSeenGitHubEvents(sql: Sql, before: Date): Promise<number> {
  const res = await sql`delete from github_seen_events where created_at < ${before}`;
  return res.count;
}

/**
 * Deletes markers older than `before` (the log cutoff: a marker outliving its events would
 * mark a change beside nothing); returns how many. One statement: markers come one per
 * deployment or release, a few a day, and markers_at_idx finds the old ones.
 */
export async function deleteOldMarkers(sql: Sql, before: Date): Promise<number> {
  const res = await sql`delete from markers where at < ${before}`;
  return res.count;
}

/** How many markers deleteOldMarkers would delete (a dry run). */
export async function countOldMarkers(sql: Sql, before: Date): Promise<number> {
  const [r] = await sql<{ n: string }[]>`select count(*) as n from markers where at < ${before}`;
  return Number(r.n);
}
