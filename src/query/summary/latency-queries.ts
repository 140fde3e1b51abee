// The summary's latency: the buckets of the series points (from the all-services rows when no
// service is asked for) and the least and greatest latency per service or step bucket.
import type { Fragment, PendingQuery } from "postgres";
import type { Sql } from "../../db/connect.ts";
import {
  type Piece,
  rangesOf,
  tableOf,
  type Tier,
  TIERS,
  type WeightedRange,
} from "./decompose.ts";
import {
  inRanges,
  serviceFilter,
  sketchKey,
  sketchRows,
  stepInterval,
  weightOf,
} from "./fragments.ts";

/** Latency buckets for the series, as the sketch rows of TierRow, per step bucket and weight. */
export interface SketchRow {
  start: Date;
  wt: number;
  /** As in TierRow. */
  key: string | null;
  sk_idx: string | null;
  sk_cnt: string | null;
}

/** The least and greatest latency per service (and step bucket, when asked for). */
export interface BoundsRow {
  service_name: string;
  start: Date | null;
  min: number | null;
  max: number | null;
}

/**
 * The latency buckets of the series from the given tiers, a row per stored row with its step
 * bucket and weight. Without a service filter the 1h and 1d tiers are read from their
 * all-services rows (log_latency_1h/_1d, sql/012): one row per hour instead of one per service
 * and hour.
 */
export function seriesSketches(
  sql: Sql,
  tiers: { tier: Tier; ranges: WeightedRange[]; known?: string }[],
  stepMs: number,
  services: string[] | undefined,
): PendingQuery<SketchRow[]> {
  const parts = tiers.map(({ tier, ranges, known }) => {
    const table = seriesSketchSource(tier, services);
    const all = table.startsWith("log_latency_");
    const rows = sql`(
      select date_bin(${stepInterval(sql, stepMs)}, r.bucket, to_timestamp(0)) as g,
             ${weightOf(sql, sql`r.bucket`, ranges)}::float8 as wt,
             ${sketchKey(sql, table, all ? sql`0` : sql`r.service_id`)} as key, r.lat_idx,
             r.lat_cnt
      from ${sql(table)} r
      where (${inRanges(sql, sql`r.bucket`, ranges)})
        ${all ? sql`` : serviceFilter(sql, sql`r.service_id`, services)}
        and cardinality(r.lat_idx) > 0)`;
    return sql`
      select g as start, wt, key, sk_idx, sk_cnt
      from (${sketchRows(sql, rows, known ?? "")}) x`;
  });
  if (parts.length === 0) {
    return sql<SketchRow[]>`
      select null::timestamptz as start, null::float8 as wt, null as key, null as sk_idx,
             null as sk_cnt
      where false`;
  }
  return sql<SketchRow[]>`${parts.reduce((acc, p) => sql`${acc} union all ${p}`)}`;
}

/** The view seriesSketches reads a tier from: all services together unless filtered. */
export const seriesSketchSource = (tier: Tier, services: string[] | undefined): string =>
  !services && tier !== "1m" ? `log_latency_${tier}` : tableOf(tier);

/**
 * The least and greatest latency per service, and per step bucket when `stepMs` is given, over
 * `pieces`, which must all be added (min and max cannot be subtracted): read from the rows'
 * lat_min/lat_max and, for the partial minutes, from the events.
 */
export function latencyBounds(
  sql: Sql,
  pieces: Piece[],
  stepMs: number | null,
  services: string[] | undefined,
): PendingQuery<BoundsRow[]> {
  const startOf = (column: Fragment) =>
    stepMs === null
      ? sql`null::timestamptz`
      : sql`date_bin(${stepInterval(sql, stepMs)}, ${column}, to_timestamp(0))`;
  const parts: Fragment[] = [];
  for (const { tier } of TIERS) {
    const ranges = rangesOf(pieces, tier);
    if (ranges.length === 0) continue;
    parts.push(sql`
      select service_id, ${startOf(sql`bucket`)} as start, min(lat_min) as lo,
             max(lat_max) as hi
      from ${sql(tableOf(tier))} r
      where (${inRanges(sql, sql`r.bucket`, ranges)})
        ${serviceFilter(sql, sql`r.service_id`, services)}
      group by 1, 2`);
  }
  const raw = rangesOf(pieces, "raw");
  if (raw.length > 0) {
    parts.push(sql`
      select service_id, ${startOf(sql`"timestamp"`)} as start, min(latency_ms) as lo,
             max(latency_ms) as hi
      from log_events e
      where (${inRanges(sql, sql`e."timestamp"`, raw)})
        ${serviceFilter(sql, sql`e.service_id`, services)}
      group by 1, 2`);
  }
  const union = parts.reduce((acc, p) => sql`${acc} union all ${p}`);
  return sql<BoundsRow[]>`
    select s.name as service_name, b.start, min(b.lo) as min, max(b.hi) as max
    from (${union}) b join services s on s.id = b.service_id
    group by 1, 2`;
}
