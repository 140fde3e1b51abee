// Rollup deltas of a committed group of events: summed per service, minute, status code and
// event type from the rows just inserted, appended in the same statement as the events, and
// compacted into the tiers in the background (sql/008_rollup_pending_rows.sql), where each row
// keeps at most ROLLUP_MAX_EVENT_TYPES event types (sql/010_rollup_event_type_cap.sql). Summing
// in SQL rather than in JS saves shipping and parsing a second JSON document per commit.
// tests/ingest_test.ts checks the result equals observian_rollup_rebuild() from the facts.
import { type Sql, statementTimeout } from "../db/connect.ts";
import { HISTOGRAM_COLUMNS, LATENCY_BOUNDS_MS } from "./histogram.ts";

/**
 * Event types a rollup row keeps by default; the events of any other type are counted in the
 * row's event_other. The same default as the SQL functions of sql/010.
 */
export const DEFAULT_ROLLUP_MAX_EVENT_TYPES = 100;

/** Most pending deltas one compaction transaction moves; a larger backlog takes several. */
export const COMPACT_MAX_ROWS = 100_000;

/** Longest one compaction transaction may run before it is stopped (its deltas stay pending). */
export const COMPACT_TIMEOUT_MS = 20_000;

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

export interface CompactOptions {
  /** Event types each rollup row keeps (ROLLUP_MAX_EVENT_TYPES). */
  maxEventTypes?: number;
  /** Most deltas one transaction moves. */
  maxRows?: number;
  /** statement_timeout of each transaction. */
  timeoutMs?: number;
}

/** Most compaction transactions one compactRollups call runs back to back on a backlog… */
const COMPACT_MAX_RUNS = 20;
/** …and none starts this long after the first did: a call ends within this + one timeout. */
const COMPACT_BUDGET_MS = 10_000;

/**
 * Folds pending deltas into the tiers, at most `maxRows` a transaction, continuing while a run
 * leaves more (up to COMPACT_MAX_RUNS and COMPACT_BUDGET_MS): a backlog drains now rather than a
 * batch per later write. Returns the deltas moved, or -1 when another session is already doing it. Then
 * vacuums the pending table: it turns over every second, and waiting for autovacuum (a minute
 * apart by default) let a 30 s load leave 230k dead rows that each compaction scanned again.
 */
export async function compactRollups(sql: Sql, opts: CompactOptions = {}): Promise<number> {
  const maxTypes = opts.maxEventTypes ?? DEFAULT_ROLLUP_MAX_EVENT_TYPES;
  const maxRows = opts.maxRows ?? COMPACT_MAX_ROWS;
  const timeoutMs = opts.timeoutMs ?? COMPACT_TIMEOUT_MS;
  let total = 0;
  const started = Date.now();
  for (let run = 0; run < COMPACT_MAX_RUNS && Date.now() - started < COMPACT_BUDGET_MS; run++) {
    const [, [row]] = await sql.begin((tx) => [
      statementTimeout(tx, timeoutMs),
      tx<{ moved: string }[]>`
        select observian_rollup_compact(${maxTypes}::int, ${maxRows}::int) as moved`,
    ]);
    const moved = Number(row.moved);
    if (moved < 0) return run === 0 ? -1 : total;
    total += moved;
    if (moved < maxRows) break;
  }
  if (total > 0) await sql`vacuum (skip_locked) log_rollup_pending`;
  return total;
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
