// Folds a committed group of events into the minute/hour/day rollups. Computed here rather
// than by observian_rollup_add() because one prepared statement with three upserts costs a
// fraction of that function's per-call planning; tests/ingest_test.ts checks both agree.
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

const TIERS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;

export function histogramIndex(latencyMs: number): number {
  let i = 0;
  while (latencyMs > LATENCY_BOUNDS_MS[i]) i++;
  return i;
}

/** Rows per (service, bucket) for one tier, sorted so upserts lock in a fixed order. */
export function aggregate(events: readonly RollupInput[], sizeMs: number): Row[] {
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

/** The three rollup upserts as CTEs over parameters $first..$first+2 (minute, hour, day). */
export function rollupCtes(first: number): string {
  return `
    rollup_m as (${upsert("log_rollup_1m", `$${first}`)}),
    rollup_h as (${upsert("log_rollup_1h", `$${first + 1}`)}),
    rollup_d as (${upsert("log_rollup_1d", `$${first + 2}`)})`;
}

/** Parameters for rollupCtes(): the rows of each tier as JSON text. */
export function rollupParams(events: readonly RollupInput[]): string[] {
  return [TIERS.minute, TIERS.hour, TIERS.day].map((size) =>
    JSON.stringify(aggregate(events, size))
  );
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
// Adds only the keys this batch brings (usually one or two) into the stored map.
const addCounts = (col: string) =>
  `${col} = r.${col} || coalesce((select jsonb_object_agg(k, coalesce((r.${col} ->> k)::bigint, 0)
     + v::bigint) from jsonb_each_text(excluded.${col}) as t (k, v)), '{}'::jsonb)`;
const ADD = [
  "count = r.count + excluded.count",
  "errors = r.errors + excluded.errors",
  "latency_sum = r.latency_sum + excluded.latency_sum",
  ...HISTOGRAM_COLUMNS.map((h) => `${h} = r.${h} + excluded.${h}`),
  addCounts("status_counts"),
  addCounts("event_counts"),
].join(", ");
const upsert = (table: string, param: string) => `
  insert into ${table} as r (${COLUMNS})
  select ${COLUMNS} from jsonb_to_recordset(${param}::text::jsonb) as x (${RECORD_TYPE})
  order by service_id, bucket
  on conflict (service_id, bucket) do update set ${ADD}
  returning 1`;
