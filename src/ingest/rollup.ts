// Rollup deltas of a committed group of events: aggregated here per service and minute, appended
// in the same statement as the events, compacted into the tiers in the background.
// tests/ingest_test.ts checks the result equals observian_rollup_rebuild() from the facts.
import type { Sql } from "../db/connect.ts";
import { HISTOGRAM_COLUMNS, LATENCY_BOUNDS_MS } from "./histogram.ts";

export interface RollupInput {
  serviceId: number;
  /** ms since epoch */
  time: number;
  statusCode: number;
  eventType: string | null;
  latencyMs: number;
}

interface Row {
  service_id: number;
  bucket: string;
  count: number;
  errors: number;
  latency_sum: number;
  status_counts: Record<string, number>;
  event_counts: Record<string, number>;
  [h: string]: unknown;
}

const MINUTE_MS = 60_000;

function histogramIndex(latencyMs: number): number {
  let i = 0;
  while (latencyMs > LATENCY_BOUNDS_MS[i]) i++;
  return i;
}

/** Rows per (service, bucket) for one tier, sorted so upserts lock in a fixed order. */
function aggregate(events: readonly RollupInput[], sizeMs: number): Row[] {
  const rows = new Map<string, Row>();
  for (const e of events) {
    const start = Math.floor(e.time / sizeMs) * sizeMs;
    const key = `${e.serviceId}:${start}`;
    let r = rows.get(key);
    if (!r) {
      r = {
        service_id: e.serviceId,
        bucket: new Date(start).toISOString(),
        count: 0,
        errors: 0,
        latency_sum: 0,
        status_counts: {},
        event_counts: {},
      };
      for (const h of HISTOGRAM_COLUMNS) r[h] = 0;
      rows.set(key, r);
    }
    r.count++;
    if (e.statusCode >= 500) r.errors++;
    r.latency_sum += e.latencyMs;
    const h = HISTOGRAM_COLUMNS[histogramIndex(e.latencyMs)];
    r[h] = (r[h] as number) + 1;
    r.status_counts[e.statusCode] = (r.status_counts[e.statusCode] ?? 0) + 1;
    if (e.eventType !== null) {
      r.event_counts[e.eventType] = (r.event_counts[e.eventType] ?? 0) + 1;
    }
  }
  return [...rows.values()].sort((a, b) =>
    a.service_id - b.service_id || (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0)
  );
}

/**
 * A CTE appending this commit's per-minute deltas (parameter $param) to log_rollup_pending;
 * observian_rollup_compact() folds them into the tiers later (sql/006_rollup_pending.sql).
 */
export function pendingCte(param: number): string {
  return `rollup_pending as (
    insert into log_rollup_pending (${COLUMNS})
    select ${COLUMNS} from jsonb_to_recordset($${param}::text::jsonb) as x (${RECORD_TYPE})
    returning 1)`;
}

/** The parameter for pendingCte(): the commit's rows per service and minute, as JSON text. */
export function pendingParam(events: readonly RollupInput[]): string {
  return JSON.stringify(aggregate(events, MINUTE_MS));
}

/** Folds pending deltas into the tiers; -1 when another session is already doing it. */
export async function compactRollups(sql: Sql): Promise<number> {
  const [row] = await sql<{ moved: string }[]>`select observian_rollup_compact() as moved`;
  return Number(row.moved);
}

// Built once from this module's constants; the rows are the only parameters.
const RECORD_TYPE = [
  "service_id int, bucket timestamptz, count bigint, errors bigint, latency_sum float8",
  ...HISTOGRAM_COLUMNS.map((h) => `${h} bigint`),
  "status_counts jsonb, event_counts jsonb",
].join(", ");
const COLUMNS = [
  "service_id",
  "bucket",
  "count",
  "errors",
  "latency_sum",
  ...HISTOGRAM_COLUMNS,
  "status_counts",
  "event_counts",
].join(", ");
