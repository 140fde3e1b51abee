// The summary's counts: what each rollup tier contributes (per service, per step bucket, status
// and event-type counts, the rows' latency buckets) and the sub-minute edges from log_events.
import type { PendingQuery } from "postgres";
import type { Sql } from "../../db/connect.ts";
import { tableOf, type Tier, type WeightedRange } from "./decompose.ts";
import {
  inRanges,
  LATENCY_CAP,
  serviceFilter,
  sketchKey,
  sketchRows,
  stepInterval,
  times,
  weightOf,
} from "./fragments.ts";

/** One row of a tier read, tagged by what it aggregates. */
export interface TierRow {
  /**
   * service: per service; series: per step bucket; status/event: one count; event_other: the
   * typed events not listed as an event row; sketch: latency buckets (count: the weight) of
   * one row (key: its SketchCache key, null for a pending row; with its arrays) or of the rows
   * the caller holds, per service and weight (key: their keys, comma-separated; no arrays).
   */
  kind: "service" | "series" | "status" | "event" | "event_other" | "sketch";
  service_name: string | null;
  team_owner: string | null;
  start: Date | null;
  key: string | null;
  count: number;
  errors: number | null;
  latency_sum: number | null;
  /**
   * sketch rows: lat_idx and lat_cnt as array text ("{-3,12}", "{1,4}"); null for the rows
   * whose keys the query was told (the caller holds their buckets).
   */
  sk_idx: string | null;
  sk_cnt: string | null;
}

export type RawRow = {
  kind: "stats";
  service_name: string;
  team_owner: string | null;
  status_code: number;
  /** The latency bucket (observian_latency_index). */
  hidx: number;
  start: Date;
  n: number;
  latency_sum: number;
} | {
  kind: "event";
  event_type: string;
  n: number;
} | {
  kind: "event_other";
  n: number;
};

/**
 * What one rollup tier contributes to the summary: per-service figures and status/event
 * counts and, when `stepMs` is given (the series reads the same ranges of this tier), the
 * per-step-bucket figures too, from the same pass over the rows. Event types beyond the
 * `maxTypes` largest are summed, with the rows' event_other, into one "event_other" row.
 */
export function tierSummary(
  sql: Sql,
  tier: Tier,
  ranges: WeightedRange[],
  stepMs: number | null,
  services: string[] | undefined,
  maxTypes: number,
  known = "",
): PendingQuery<TierRow[]> {
  const x = times(sql, ranges);
  const series = stepMs
    ? sql`
      union all
      select 'series', null, null, date_bin(${stepInterval(sql, stepMs)}, bucket, to_timestamp(0)),
             null, sum(${x}count)::float8, sum(${x}errors)::float8, null, null, null
      from r group by 4`
    : sql``;
  // Materialized: each row is read once, and the map expansion above it (estimated at 100
  // keys a row) cannot become a parallel plan, whose worker start-up costs more than the query.
  // jsonb_object_keys + ->> rather than jsonb_each_text: a value per call instead of a
  // tuplestore per row, about twice as fast over thousands of rows.
  return sql<TierRow[]>`
    with r as materialized (
      select r.*, ${weightOf(sql, sql`r.bucket`, ranges)} as wt
      from ${sql(tableOf(tier))} r
      where (${inRanges(sql, sql`r.bucket`, ranges)})
        ${serviceFilter(sql, sql`r.service_id`, services)}
    ),
    types as (
      select key, n, row_number() over (order by abs(n) desc, key) as rank
      from (
        select key, sum(${x}(counts ->> key)::bigint)::float8 as n
        from (select wt, event_counts as counts, jsonb_object_keys(event_counts) as key
              from r) e
        group by key
      ) k
    )
    select 'service' as kind, s.name as service_name, s.team_owner, null::timestamptz as start,
           null::text as key, x.count, x.errors, x.latency_sum, null::text as sk_idx,
           null::text as sk_cnt
    from (
      select service_id, sum(${x}count)::float8 as count, sum(${x}errors)::float8 as errors,
             sum(${x}least(latency_sum, ${sql.unsafe(LATENCY_CAP)})) as latency_sum
      from r group by service_id
    ) x
    join services s on s.id = x.service_id
    ${series}
    union all
    select 'sketch', s.name, null, null, r.key, r.wt::float8, null, null, r.sk_idx, r.sk_cnt
    from (${
    sketchRows(
      sql,
      sql`(select r.service_id as g, r.wt,
                  ${sketchKey(sql, tableOf(tier), sql`r.service_id`)} as key, r.lat_idx, r.lat_cnt
           from r where cardinality(r.lat_idx) > 0)`,
      known,
    )
  }) r
    join services s on s.id = r.g
    union all
    select 'status', null, null, null, key, sum(n)::float8, null, null, null, null
    from (
      select key, ${x}(counts ->> key)::bigint as n
      from (select wt, status_counts as counts, jsonb_object_keys(status_counts) as key
            from r) s
    ) kv
    group by key
    union all
    select 'event', null, null, null, key, n, null, null, null, null
    from types where rank <= ${maxTypes}
    union all
    select 'event_other', null, null, null, null,
      coalesce((select sum(n) from types where rank > ${maxTypes}), 0)
        + coalesce((select sum(${x}event_other) from r), 0)::float8,
      null, null, null, null`;
}

/** Count and errors per step bucket (UTC-aligned) from one rollup tier. */
export function tierSeries(
  sql: Sql,
  tier: Tier,
  ranges: WeightedRange[],
  stepMs: number,
  services?: string[],
): PendingQuery<TierRow[]> {
  const x = times(sql, ranges);
  return sql<TierRow[]>`
    select 'series' as kind, null as service_name, null as team_owner,
           date_bin(${stepInterval(sql, stepMs)}, r.bucket, to_timestamp(0)) as start,
           null as key, sum(${x}r.count)::float8 as count,
           sum(${x}r.errors)::float8 as errors, null as latency_sum, null as sk_idx,
           null as sk_cnt
    from (
      select r.*, ${weightOf(sql, sql`r.bucket`, ranges)} as wt
      from ${sql(tableOf(tier))} r
      where (${inRanges(sql, sql`r.bucket`, ranges)})
        ${serviceFilter(sql, sql`r.service_id`, services)}
    ) r
    group by 4`;
}

/**
 * The sub-minute pieces from the fact table: per service, status, latency bucket (as the
 * rollups count them) and series step bucket ("stats" rows), and per event type apart
 * ("event" rows, the `maxTypes` largest; the rest summed in one "event_other" row), so that
 * distinct types do not multiply the other rows.
 */
export function rawEdgeStats(
  sql: Sql,
  ranges: WeightedRange[],
  stepMs: number,
  services: string[] | undefined,
  maxTypes: number,
): PendingQuery<RawRow[]> {
  return sql<RawRow[]>`
    with e as materialized (
      select e.service_id, e.status_code, e.event_type, e.latency_ms, e."timestamp" as ts,
             ${weightOf(sql, sql`e."timestamp"`, ranges)} as wt
      from log_events e
      where (${inRanges(sql, sql`e."timestamp"`, ranges)})
        ${serviceFilter(sql, sql`e.service_id`, services)}
    ),
    types as (
      select event_type, n, row_number() over (order by abs(n) desc, event_type) as rank
      from (select event_type, sum(wt)::float8 as n from e
            where event_type is not null group by 1) t
    )
    select 'stats' as kind, s.name as service_name, s.team_owner, x.status_code,
           null::text as event_type, x.hidx, x.start, x.n, x.latency_sum
    from (
      select e.service_id, e.status_code, e.hidx,
             date_bin(${stepInterval(sql, stepMs)}, e.ts, to_timestamp(0)) as start,
             sum(e.wt)::float8 as n,
             sum(e.wt * least(e.latency_ms, ${sql.unsafe(LATENCY_CAP)})) as latency_sum
      from (select e.*, observian_latency_index(e.latency_ms)::int as hidx from e) e
      group by 1, 2, 3, 4
    ) x
    join services s on s.id = x.service_id
    union all
    select 'event', null, null, null, event_type, null, null, n, null
    from types where rank <= ${maxTypes}
    union all
    select 'event_other', null, null, null, null, null, null, sum(n), null
    from types where rank > ${maxTypes}
    having count(*) > 0`;
}
