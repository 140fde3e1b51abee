// Rollup deltas of a committed group of events: summed per service, minute, status code and
// event type from the rows just inserted, appended in the same statement as the events, and
// compacted into the tiers in the background by observian_rollup_compact(), where each row
// keeps at most ROLLUP_MAX_EVENT_TYPES event types (sql/R__rollup_functions.sql). Summing
// in SQL rather than in JS saves shipping and parsing a second JSON document per commit.
// tests/ingest_test.ts checks the result equals observian_rollup_rebuild() from the facts.
import { type Sql, statementTimeout } from "../db/connect.ts";
import {
  COMPACT_MAX_ROWS,
  DEFAULT_ROLLUP_MAX_EVENT_TYPES,
  LATENCY_SUM_CAP,
  ROLLUP_LOCK_KEY,
  sqlNumber,
} from "../db/rollup-constants.ts";
import { SQLSTATE, withRetry } from "../db/sqlstate.ts";
import { logger } from "../logging.ts";

/** Longest one compaction transaction may run before it is stopped (its deltas stay pending). */
export const COMPACT_TIMEOUT_MS = 20_000;

/**
 * A CTE appending the deltas of the rows in CTE `source` (columns service_id, "timestamp",
 * status_code, event_type, latency_ms) to log_rollup_pending. The bucket rules are the ones
 * observian_rollup_add() uses to rebuild from the facts.
 */
export function pendingCte(source: string): string {
  // Latency buckets per delta as parallel arrays (sql/012_latency_sketch.sql); each latency is
  // clamped in the sum so that no sum of stored values overflows double precision.
  return `rollup_pending as (
    insert into log_rollup_pending (service_id, bucket, status_code, event_type, count, errors,
      latency_sum, lat_min, lat_max, lat_idx, lat_cnt)
    select service_id, bucket, status_code, event_type, sum(n), sum(errors), sum(latency_sum),
      min(lat_min), max(lat_max), array_agg(idx order by idx), array_agg(n order by idx)
    from (
      select service_id, date_trunc('minute', "timestamp", 'UTC') as bucket, status_code,
        event_type, observian_latency_index(latency_ms) as idx, count(*) as n,
        count(*) filter (where status_code >= 500) as errors,
        sum(least(latency_ms, ${
    sqlNumber(LATENCY_SUM_CAP)
  })) as latency_sum, min(latency_ms) as lat_min,
        max(latency_ms) as lat_max
      from ${source} group by 1, 2, 3, 4, 5
    ) d
    group by 1, 2, 3, 4
    returning 1
  )`;
}

/** Most compaction transactions one compactRollups call runs back to back on a backlog… */
const COMPACT_MAX_RUNS = 20;
/** …and none starts this long after the first did: a call ends within this + one timeout. */
const COMPACT_BUDGET_MS = 10_000;

/** A delta compaction could not fold and set aside in log_rollup_rejected. */
export class RollupRejectedError extends Error {
  override name = "RollupRejectedError";
}

export interface CompactOptions {
  /** Event types each rollup row keeps (ROLLUP_MAX_EVENT_TYPES). */
  maxEventTypes?: number;
  /** Most deltas one transaction moves. */
  maxRows?: number;
  /** statement_timeout of each transaction. */
  timeoutMs?: number;
  /**
   * Called for each compaction transaction that failed on the data (not on time or the
   * connection), before it is retried on fewer deltas; `rejected` when that was one delta alone,
   * now set aside.
   */
  onDataError?: (err: unknown, rejected: boolean) => void;
}

// Failures of the transaction rather than of the deltas: retrying on fewer deltas would not
// help (the timeout is per transaction, and a smaller one is tried next time anyway).
const TRANSIENT = /^(08|40|53|57)/;
const isTransient = (err: unknown) => {
  const code = (err as { code?: unknown }).code;
  return typeof code !== "string" || TRANSIENT.test(code);
};

/**
 * Folds pending deltas into the tiers, at most `maxRows` a transaction, continuing while a run
 * leaves more (up to COMPACT_MAX_RUNS and COMPACT_BUDGET_MS): a backlog drains now rather than a
 * batch per later write. Returns the deltas moved, or -1 when another session is already doing
 * it. Then vacuums the pending table: it turns over every second, and waiting for autovacuum (a
 * minute apart by default) let a 30 s load leave 230k dead rows that each compaction scanned
 * again.
 *
 * Never wedged by what is stored: a transaction that fails on the data (an SQLSTATE outside
 * connection, transaction, resource and operator classes) is retried on a tenth of the deltas,
 * down to one, and a single delta that still fails is moved to log_rollup_rejected (its events
 * stay in log_events), so the rest are folded. Such failures are reported to `onDataError`;
 * the caller logs and counts them.
 */
export async function compactRollups(sql: Sql, opts: CompactOptions = {}): Promise<number> {
  const maxTypes = opts.maxEventTypes ?? DEFAULT_ROLLUP_MAX_EVENT_TYPES;
  const maxRows = opts.maxRows ?? COMPACT_MAX_ROWS;
  const timeoutMs = opts.timeoutMs ?? COMPACT_TIMEOUT_MS;
  let total = 0;
  let size = maxRows;
  const started = Date.now();
  for (let run = 0; run < COMPACT_MAX_RUNS && Date.now() - started < COMPACT_BUDGET_MS; run++) {
    let moved: number;
    try {
      const [, [row]] = await sql.begin((tx) => [
        statementTimeout(tx, timeoutMs),
        tx<{ moved: string }[]>`
          select observian_rollup_compact(${maxTypes}::int, ${size}::int) as moved`,
      ]);
      moved = Number(row.moved);
    } catch (err) {
      if (isTransient(err)) throw err;
      if (size > 1) {
        opts.onDataError?.(err, false);
        size = Math.max(1, Math.floor(size / 10));
        continue;
      }
      const reason = String((err as Error)?.message ?? err).slice(0, 2000);
      const [r] = await sql<{ n: number }[]>`
        select observian_rollup_reject_first(${reason}) as n`;
      opts.onDataError?.(err, r.n > 0);
      continue;
    }
    if (moved < 0) return run === 0 ? -1 : total;
    total += moved;
    if (moved < size) break;
    // Back to full batches once past the delta that failed.
    size = Math.min(maxRows, size * 10);
  }
  // Even when nothing moved: a run after a burst is what frees the deltas the burst's last
  // compaction deleted while a reader's snapshot still saw them (see pendingPages).
  await sql`vacuum (skip_locked) log_rollup_pending`;
  return total;
}

/**
 * Pages of the pending table's file. Every read of a rollup view scans the pending table, empty
 * or not: after a burst left it at 15 MB (1,909 pages, all rows gone), each of a 7-day summary's
 * queries read them all, ~19 ms apiece. VACUUM gives the pages back only once no snapshot sees
 * the deleted rows, so the writer compacts (and vacuums) again until the file is small.
 */
export async function pendingPages(sql: Sql): Promise<number> {
  const [r] = await sql<{ pages: number }[]>`
    select (pg_relation_size('log_rollup_pending') / 8192)::int as pages`;
  return r.pages;
}

/** Pages an idle pending table may keep before the writer vacuums it again (a few deltas' worth). */
export const PENDING_IDLE_PAGES = 16;

/** Days whose latency buckets migration 012 left to rebuild, if any. */
export async function backfillLatencySketches(sql: Sql, maxTypes?: number): Promise<number> {
  const log = logger("ingest", "backfill");
  const days = await sql<{ day: Date }[]>`select day from rollup_sketch_backfill order by day`;
  let done = 0;
  for (const { day } of days) {
    const next = new Date(day.getTime() + 86_400_000);
    // Repeatable read: the rebuild reads one snapshot of the day's events, and deltas
    // committed after it stay pending for compaction, as their events are not in it.
    const rebuilt = await retrySerialization(() =>
      sql.begin("isolation level repeatable read", async (tx) => {
        // Compaction waits meanwhile, so no delta of the day lands in a row being rebuilt.
        await tx`select pg_advisory_xact_lock(${ROLLUP_LOCK_KEY})`;
        // Another instance starting at the same time may have done it.
        const claimed = await tx`delete from rollup_sketch_backfill where day = ${day} returning 1`;
        if (claimed.length === 0) return null;
        const [c] = await tx<
          { events: string; rolled: string | null; bucketed: string | null }[]
        >`
          select (select count(*) from log_events
                  where "timestamp" >= ${day} and "timestamp" < ${next}) as events,
                 sum(count) as rolled, sum((select sum(n) from unnest(lat_cnt) n)) as bucketed
          from log_rollup_1d_store where bucket = ${day}`;
        // Already rebuilt since (by a seed, or the pruner): nothing to do.
        if (c.rolled !== null && c.rolled === c.bucketed) return false;
        // Events pruned while the day's rollups were kept: rebuilding would lose counts.
        const whole = c.events === (c.rolled ?? "0");
        if (whole) {
          await tx`select observian_rollup_rebuild(${day}, ${next},
          ${maxTypes ?? DEFAULT_ROLLUP_MAX_EVENT_TYPES}::int)`;
        }
        return whole;
      })
    );
    done++;
    if (rebuilt === null) continue;
    log.info("latency buckets of {day}: {what} ({done}/{total} days)", {
      day: day.toISOString().slice(0, 10),
      what: rebuilt ? "rebuilt from log_events" : "already done, or events pruned",
      done,
      total: days.length,
    });
  }
  return done;
}

/** `fn` again (up to 5 times) when it failed with 40001: a compaction committed under it. */
function retrySerialization<T>(fn: () => Promise<T>): Promise<T> {
  return withRetry(fn, {
    attempts: 5,
    baseDelayMs: 50,
    maxDelayMs: 400,
    retryOn: (err) => (err as { code?: string }).code === SQLSTATE.serialization_failure,
  });
}
