// Rollup deltas of a committed group of events: summed per service, minute, status code and
// event type from the rows just inserted, appended in the same statement as the events, and
// compacted into the tiers in the background (sql/008_rollup_pending_rows.sql). Summing in SQL
// rather than in JS saves shipping and parsing a second JSON document per commit.
// tests/ingest_test.ts checks the result equals observian_rollup_rebuild() from the facts.
import type { Sql } from "../db/connect.ts";
import { HISTOGRAM_COLUMNS, LATENCY_BOUNDS_MS } from "./histogram.ts";

/**
 * A CTE appending the deltas of the rows in CTE `source` (columns service_id, "timestamp",
 * status_code, event_type, latency_ms) to log_rollup_pending. The bucket rules are the ones
 * observian_rollup_add() uses to rebuild from the facts.
 */
export function pendingCte(source: string): string {
  return `rollup_pending as (
    insert into log_rollup_pending (service_id, bucket, status_code, event_type, count, errors,
      latency_sum, ${HISTOGRAM_COLUMNS.join(", ")})
    select service_id, date_trunc('minute', "timestamp", 'UTC'), status_code, event_type,
      count(*), count(*) filter (where status_code >= 500), sum(latency_ms),
      ${HISTOGRAM_FILTERS}
    from ${source} group by 1, 2, 3, 4
    returning 1
  )`;
}

/**
 * Folds pending deltas into the tiers; -1 when another session is already doing it. Then
 * vacuums the pending table: it turns over every second, and waiting for autovacuum (a minute
 * apart by default) let a 30 s load leave 230k dead rows that each compaction scanned again.
 */
export async function compactRollups(sql: Sql): Promise<number> {
  const [row] = await sql<{ moved: string }[]>`select observian_rollup_compact() as moved`;
  const moved = Number(row.moved);
  if (moved > 0) await sql`vacuum (skip_locked) log_rollup_pending`;
  return moved;
}

// Built once from this module's constants (never from input): bucket i holds latencies in
// (bound[i-1], bound[i]], the last one everything above the largest finite bound.
const HISTOGRAM_FILTERS = HISTOGRAM_COLUMNS.map((_, i) => {
  const upper = LATENCY_BOUNDS_MS[i];
  const lower = i > 0 ? `latency_ms > ${LATENCY_BOUNDS_MS[i - 1]}` : "";
  const cond = upper === Infinity ? lower : [lower, `latency_ms <= ${upper}`].filter(Boolean)
    .join(" and ");
  return `count(*) filter (where ${cond})`;
}).join(",\n      ");
