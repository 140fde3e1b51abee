// SQL fragments the summary's queries share: time ranges and their weights, the service filter,
// the series buckets, and the rows of latency buckets with the keys of the cache.
import type { Fragment } from "postgres";
import type { Sql } from "../../db/connect.ts";
import type { Range, WeightedRange } from "./decompose.ts";
import { LATENCY_SUM_CAP, sqlNumber } from "../../db/rollup-constants.ts";

export function inRanges(sql: Sql, column: Fragment, ranges: Range[]): Fragment {
  if (ranges.length === 0) return sql`false`;
  return ranges
    .map((r) => sql`(${column} >= ${r.from}::timestamptz and ${column} < ${r.to}::timestamptz)`)
    .reduce((acc, p) => sql`${acc} or ${p}`);
}

/** The weight of a row at `column`: the weight of the range it lies in. */
export function weightOf(sql: Sql, column: Fragment, ranges: WeightedRange[]): Fragment {
  const weights = [...new Set(ranges.map((r) => r.weight))];
  if (weights.length === 1) return sql`${weights[0]}::int`;
  const whens = weights.map((w) =>
    sql`when ${inRanges(sql, column, ranges.filter((r) => r.weight === w))} then ${w}::int`
  ).reduce((acc, p) => sql`${acc} ${p}`);
  return sql`(case ${whens} end)`;
}

// Lists go to PostgreSQL as one text parameter, not as JS arrays: postgres.js serialises a JS
// array properly only once the connection has fetched the array types, and queries queued
// on a fresh connection meanwhile send "a,b" (malformed array literal). Names cannot hold
// commas (SERVICE_NAME), so the text splits back exactly.
export function serviceFilter(
  sql: Sql,
  column: Fragment,
  services: string[] | undefined,
): Fragment {
  if (!services) return sql``;
  return sql`and ${column} = any(array(
    select id from services where name = any(string_to_array(${services.join(",")}, ','))))`;
}

/** Whether rows need multiplying by their weight (some range is subtracted). */
export const weighted = (ranges: WeightedRange[]) => ranges.some((r) => r.weight !== 1);

/** `wt * ` when some weight is not 1; multiplying by 1 costs ~15% over thousands of rows. */
export function times(sql: Sql, ranges: WeightedRange[]): Fragment {
  return weighted(ranges) ? sql`wt * ` : sql``;
}

// Stored latencies from before the input bounds reach 1.8e308 ms: two of them overflow double
// precision when added (an error in PostgreSQL), so every latency sum clamps what it adds.
export const LATENCY_CAP = sqlNumber(LATENCY_SUM_CAP);

export const stepInterval = (sql: Sql, stepMs: number) =>
  sql`(${stepMs / 1000}::int * interval '1 second')`;

/**
 * A stored row's SketchCache key, "source/service_id/bucket ms/row_version" (null for a pending
 * row, which has no version); `service` is 0 for the all-services rows.
 */
export const sketchKey = (sql: Sql, source: string, service: Fragment) =>
  sql`(${source}::text || '/' || ${service} || '/' ||
       (extract(epoch from r.bucket) * 1000)::bigint || '/' || r.row_version)`;

/** The keys the caller holds (comma-separated, one parameter) as a table of `key`. */
const knownTable = (sql: Sql, known: string) =>
  sql`(select distinct unnest(string_to_array(${known}, ',')) as key)`;

/**
 * The sketch rows of `rows` (columns g, wt, key, lat_idx, lat_cnt): each row whose key the
 * caller does not hold with its arrays as text; the rows it holds as one row per group `g` and
 * weight, `key` listing their keys comma-separated and no arrays. Thousands of rows of a key
 * each cost the client more (~1 µs a row in postgres.js) than the lookups they stand for.
 */
export const sketchRows = (sql: Sql, rows: Fragment, known: string) =>
  sql`
    with x as materialized (
      select r.*, r.key in (select key from ${knownTable(sql, known)} k) as held from ${rows} r
    )
    select g, wt, key, lat_idx::text as sk_idx, lat_cnt::text as sk_cnt
    from x where held is not true
    union all
    select g, wt, string_agg(key, ','), null, null
    from x where held
    group by g, wt`;
