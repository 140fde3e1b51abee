// GET /logs/summary, answered from the rollups: the window [start, end) is cut into whole UTC
// days, hours and minutes (read from log_rollup_1d/_1h/_1m) and the sub-minute edges (read
// from log_events), so a 7-day summary reads a few thousand rollup rows, not millions of
// events. An edge is read either as finer pieces or as the coarser row less the part outside
// the window, whichever reads fewer rows (see decompose); counts are exact either way. The
// event-type breakdown lists at most ROLLUP_MAX_EVENT_TYPES types, the rest under "(other)", as
// the rollup rows themselves keep no more (sql/010). Every query is bounded by QUERY_TIMEOUT_MS
// and cancelled when the client goes away (see bounded.ts).
import { z } from "@hono/zod-openapi";
import type { Fragment, PendingQuery } from "postgres";
import type { Sql } from "../db/connect.ts";
import { type FieldError, InvalidInputError } from "../errors.ts";
import { parseIntArray, Sketch } from "../ingest/histogram.ts";
import { type CachedSketch, knownKeys, parseSketch, type SketchCache } from "./sketch-cache.ts";
import { DEFAULT_ROLLUP_MAX_EVENT_TYPES } from "../ingest/rollup.ts";
import { boundedQueries, type QueryBounds } from "./bounded.ts";
import { EARLIEST_TIME, filterQueryFields, parseIsoTime } from "./filters.ts";
import { DAY_MS, HOUR_MS, MINUTE_MS } from "../time.ts";

export const WINDOWS = {
  "15m": 15 * MINUTE_MS,
  "1h": HOUR_MS,
  "24h": DAY_MS,
  "7d": 7 * DAY_MS,
  "30d": 30 * DAY_MS,
} as const;
export type WindowName = keyof typeof WINDOWS;

export const STEPS = {
  "1m": MINUTE_MS,
  "5m": 5 * MINUTE_MS,
  "15m": 15 * MINUTE_MS,
  "1h": HOUR_MS,
  "6h": 6 * HOUR_MS,
  "1d": DAY_MS,
} as const;
export type StepName = keyof typeof STEPS;

/** The series step of each named window. */
const WINDOW_STEP: Record<WindowName, StepName> = {
  "15m": "1m",
  "1h": "1m",
  "24h": "1h",
  "7d": "6h",
  "30d": "1d",
};

export const MAX_SPAN_DAYS = 31;
/** An explicit range gets the finest step that keeps the series at or under this many points. */
export const AUTO_MAX_POINTS = 200;
/** A requested step may not give more points than this. */
export const MAX_POINTS = 1440;

const windowNames = Object.keys(WINDOWS) as WindowName[];
const stepNames = Object.keys(STEPS) as StepName[];

export const SummaryQuery = z.strictObject({
  window: z.enum(windowNames as [WindowName, ...WindowName[]], {
    error: `must be one of ${windowNames.join(", ")}`,
  }).optional().openapi({
    param: { name: "window", in: "query" },
    description: "A window ending now (default 24h). Mutually exclusive with start_time and " +
      "end_time (400 when combined).",
    example: "24h",
  }),
  // No examples on start_time and end_time: they exclude window, which has one, and a request
  // built from every example must work.
  start_time: filterQueryFields.start_time.openapi({
    description: "Inclusive start (ISO 8601 with zone), before end_time and at most " +
      `${MAX_SPAN_DAYS} days before it. Alone: until now (then it must be in the past). ` +
      "Mutually exclusive with window.",
    example: undefined,
  }),
  end_time: filterQueryFields.end_time.openapi({
    description: "Exclusive end (ISO 8601 with zone). Alone: the 24 hours before it. " +
      "Mutually exclusive with window.",
    example: undefined,
  }),
  service_name: filterQueryFields.service_name,
  step: z.enum(stepNames as [StepName, ...StepName[]], {
    error: `must be one of ${stepNames.join(", ")}`,
  }).optional().openapi({
    param: { name: "step", in: "query" },
    description: `Series bucket width, aligned to UTC. Default: from the window (15m and 1h: ` +
      `1m, 24h: 1h, 7d: 6h, 30d: 1d; explicit ranges: the finest step giving at most ` +
      `${AUTO_MAX_POINTS} points). At most ${MAX_POINTS} points (400 beyond).`,
    example: "1h",
  }),
});
export type SummaryQueryInput = z.infer<typeof SummaryQuery>;

export interface ResolvedWindow {
  window: WindowName | null;
  start: number;
  end: number;
  step: StepName;
}

/** The window [start, end) in epoch ms and the series step; InvalidInputError for contradictions. */
export function resolveWindow(q: SummaryQueryInput, now: number): ResolvedWindow {
  const errors: FieldError[] = [];
  // Held within years 0001-9999, as GET /logs does: PostgreSQL refuses year 0 (a 500 before).
  const parse = (s: string | undefined) =>
    s === undefined ? undefined : parseIsoTime(s)?.date.getTime();
  const startIn = parse(q.start_time);
  const endIn = parse(q.end_time);
  if (q.window && (startIn !== undefined || endIn !== undefined)) {
    throw new InvalidInputError(
      [{ field: "window", message: "cannot be combined with start_time or end_time" }],
      400,
    );
  }
  let start: number, end: number;
  let window: WindowName | null = null;
  if (startIn === undefined && endIn === undefined) {
    window = q.window ?? "24h";
    end = now;
    start = now - WINDOWS[window];
  } else {
    end = endIn ?? now;
    start = startIn ?? Math.max(end - DAY_MS, EARLIEST_TIME);
    if (startIn === undefined && start >= end) {
      errors.push({ field: "end_time", message: "must be after 0001-01-01T00:00:00Z" });
    } else if (start >= end) {
      errors.push({
        field: "start_time",
        message: endIn === undefined ? "must be in the past" : "must be before end_time",
      });
    } else if (end - start > MAX_SPAN_DAYS * DAY_MS) {
      errors.push({
        field: "start_time",
        message: `must be at most ${MAX_SPAN_DAYS} days before end_time`,
      });
    }
  }
  if (errors.length) throw new InvalidInputError(errors, 400);

  let step: StepName;
  if (q.step) {
    step = q.step;
    const points = pointCount(start, end, STEPS[step]);
    if (points > MAX_POINTS) {
      throw new InvalidInputError([{
        field: "step",
        message: `gives ${points} points over this window; at most ${MAX_POINTS}`,
      }], 400);
    }
  } else if (window) {
    step = WINDOW_STEP[window];
  } else {
    step = stepNames.find((s) => pointCount(start, end, STEPS[s]) <= AUTO_MAX_POINTS) ?? "1d";
  }
  return { window, start, end, step };
}

/** Buckets aligned to `stepMs` (from the epoch, so UTC) that [start, end) touches. */
export function pointCount(start: number, end: number, stepMs: number): number {
  return Math.ceil(end / stepMs) - Math.floor(start / stepMs);
}

// ---- decomposition -------------------------------------------------------------------------

export type Tier = "1m" | "1h" | "1d";
const TIERS: readonly { tier: Tier; ms: number; table: string; weight: number }[] = [
  // weight: rough cost of reading one row, relative to a minute row: coarser rows carry more
  // status and event keys to expand (measured ~3, ~14 and ~24 keys a row at 50 services).
  { tier: "1m", ms: MINUTE_MS, table: "log_rollup_1m", weight: 1 },
  { tier: "1h", ms: HOUR_MS, table: "log_rollup_1h", weight: 3 },
  { tier: "1d", ms: DAY_MS, table: "log_rollup_1d", weight: 5 },
];
/** Rough cost of a minute of raw events, per service, relative to one minute row. */
const RAW_WEIGHT_PER_MINUTE = 1.5;

export interface Piece {
  /** Where the piece is read from: a rollup tier, or the fact table. */
  source: Tier | "raw";
  from: number;
  to: number;
  /** -1: subtracted (the part of a coarser row that lies outside the window). */
  sign: 1 | -1;
}

interface Cover {
  pieces: Piece[];
  cost: number;
}

/**
 * Signed pieces that add up to exactly [from, to): whole units of the coarsest tier allowed
 * (index into 1m, 1h, 1d) in the middle and, at each edge, the cheaper of
 *   - the finer pieces of the partial unit (minutes for a partial hour, …, raw events for a
 *     partial minute), or
 *   - the whole unit minus the finer pieces of the part outside the window,
 * by the rows each reads. Nothing is stored after `now`, so near now the second is almost
 * free: a window ending now reads today's day row instead of up to 23 hour and 59 minute
 * rows per service. Rollups are exact and additive, so both give exact counts. Raw pieces
 * each lie inside one UTC minute, and a piece of a tier never straddles a boundary of a
 * coarser one.
 */
export function decompose(
  from: number,
  to: number,
  opts: { maxTier?: number; now?: number; form?: Form } = {},
): Piece[] {
  const ctx = { now: opts.now ?? Date.now(), form: opts.form ?? "cheapest" };
  return cover(from, to, opts.maxTier ?? TIERS.length - 1, ctx).pieces;
}

/** How edges are read: the cheaper form (the default), or one form throughout (tests). */
export type Form = "cheapest" | "additive" | "subtractive";

interface Ctx {
  now: number;
  form: Form;
}

function cover(from: number, to: number, t: number, ctx: Ctx): Cover {
  if (from >= to) return { pieces: [], cost: 0 };
  const now = ctx.now;
  // The additive form unless the other reads less.
  const cheaper = (additive: Cover, subtractive: Cover): Cover =>
    ctx.form === "additive"
      ? additive
      : ctx.form === "subtractive" || subtractive.cost < additive.cost
      ? subtractive
      : additive;
  if (t < 0) return single("raw", from, to, now);
  const { tier, ms } = TIERS[t];
  const a = Math.ceil(from / ms) * ms;
  const b = Math.floor(to / ms) * ms;
  if (a > b) {
    // Inside one unit: its finer pieces, or the unit minus what lies either side.
    const u = Math.floor(from / ms) * ms;
    return cheaper(
      cover(from, to, t - 1, ctx),
      join(
        single(tier, u, u + ms, now),
        negate(cover(u, from, t - 1, ctx)),
        negate(cover(to, u + ms, t - 1, ctx)),
      ),
    );
  }
  return join(
    a < b ? single(tier, a, b, now) : { pieces: [], cost: 0 },
    from < a
      ? cheaper(
        cover(from, a, t - 1, ctx),
        join(single(tier, a - ms, a, now), negate(cover(a - ms, from, t - 1, ctx))),
      )
      : { pieces: [], cost: 0 },
    b < to
      ? cheaper(
        cover(b, to, t - 1, ctx),
        join(single(tier, b, b + ms, now), negate(cover(to, b + ms, t - 1, ctx))),
      )
      : { pieces: [], cost: 0 },
  );
}

function single(source: Piece["source"], from: number, to: number, now: number): Cover {
  const stored = Math.max(0, Math.min(to, now) - from);
  const t = TIERS.find((x) => x.tier === source);
  const cost = t
    ? Math.ceil(stored / t.ms) * t.weight
    : (stored / MINUTE_MS) * RAW_WEIGHT_PER_MINUTE;
  return { pieces: [{ source, from, to, sign: 1 }], cost };
}

const join = (...covers: Cover[]): Cover => ({
  pieces: covers.flatMap((c) => c.pieces),
  cost: covers.reduce((a, c) => a + c.cost, 0),
});

const negate = (c: Cover): Cover => ({
  pieces: c.pieces.map((p) => ({ ...p, sign: p.sign === 1 ? -1 : 1 })),
  cost: c.cost,
});

/** Index of the coarsest tier whose buckets never straddle a step boundary. */
function seriesMaxTier(stepMs: number): number {
  let idx = 0;
  for (let i = 0; i < TIERS.length; i++) if (TIERS[i].ms <= stepMs) idx = i;
  return idx;
}

// ---- queries -------------------------------------------------------------------------------

export interface Range {
  from: Date;
  to: Date;
}

/** A range whose rows count `weight` times (usually 1 or -1); a source's ranges are disjoint. */
export interface WeightedRange extends Range {
  weight: number;
}

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

const tableOf = (tier: Tier) => TIERS.find((t) => t.tier === tier)!.table;

function inRanges(sql: Sql, column: Fragment, ranges: Range[]): Fragment {
  if (ranges.length === 0) return sql`false`;
  return ranges
    .map((r) => sql`(${column} >= ${r.from}::timestamptz and ${column} < ${r.to}::timestamptz)`)
    .reduce((acc, p) => sql`${acc} or ${p}`);
}

/** The weight of a row at `column`: the weight of the range it lies in. */
function weightOf(sql: Sql, column: Fragment, ranges: WeightedRange[]): Fragment {
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
function serviceFilter(sql: Sql, column: Fragment, services: string[] | undefined): Fragment {
  if (!services) return sql``;
  return sql`and ${column} = any(array(
    select id from services where name = any(string_to_array(${services.join(",")}, ','))))`;
}

/** Whether rows need multiplying by their weight (some range is subtracted). */
const weighted = (ranges: WeightedRange[]) => ranges.some((r) => r.weight !== 1);

/** `wt * ` when some weight is not 1; multiplying by 1 costs ~15% over thousands of rows. */
function times(sql: Sql, ranges: WeightedRange[]): Fragment {
  return weighted(ranges) ? sql`wt * ` : sql``;
}

// Stored latencies from before the input bounds reach 1.8e308 ms: two of them overflow double
// precision when added (an error in PostgreSQL), so every latency sum clamps what it adds.
const LATENCY_CAP = "1e250";

const stepInterval = (sql: Sql, stepMs: number) =>
  sql`(${stepMs / 1000}::int * interval '1 second')`;

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

/**
 * A stored row's SketchCache key, "source/service_id/bucket ms/row_version" (null for a pending
 * row, which has no version); `service` is 0 for the all-services rows.
 */
const sketchKey = (sql: Sql, source: string, service: Fragment) =>
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
const sketchRows = (sql: Sql, rows: Fragment, known: string) =>
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

// ---- assembly ------------------------------------------------------------------------------

export interface LatencySummary {
  avg: number | null;
  /** The least and greatest latency of the window's events (every percentile lies between). */
  min: number | null;
  max: number | null;
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface ServiceSummary {
  service_name: string;
  team_owner: string | null;
  total: number;
  errors: number;
  error_rate_percent: number;
  availability_percent: number;
  p95_latency_ms: number | null;
}

export interface SeriesPoint {
  start: string;
  count: number;
  errors: number;
  p95_latency_ms: number | null;
}

export interface Summary {
  window: WindowName | null;
  start_time: string;
  end_time: string;
  step: StepName;
  total_logs: number;
  total_errors: number;
  error_rate_percent: number;
  status_code_breakdown: Record<string, number>;
  event_type_breakdown: Record<string, number>;
  /** Typed events counted under OTHER_EVENT_TYPES rather than their own type. */
  event_types_folded: number;
  latency: LatencySummary;
  services: ServiceSummary[];
  series: SeriesPoint[];
}

interface Acc {
  count: number;
  errors: number;
  latencySum: number;
  sketch: Sketch;
}

const newAcc = (): Acc => ({ count: 0, errors: 0, latencySum: 0, sketch: new Sketch() });

/** The percentile of each series point (p95_latency_ms). */
const SERIES_QUANTILE = 0.95;

const round2 = (n: number) => Math.round(n * 100) / 100;
const percent = (part: number, whole: number) => whole === 0 ? 0 : round2((part / whole) * 100);

/**
 * The pieces of one source netted into disjoint ranges with their weights: pieces may
 * overlap (both edges of a window in one hour can each subtract from that hour's row).
 */
export function rangesOf(pieces: Piece[], source: Piece["source"]): WeightedRange[] {
  const deltas = new Map<number, number>();
  for (const p of pieces) {
    if (p.source !== source) continue;
    deltas.set(p.from, (deltas.get(p.from) ?? 0) + p.sign);
    deltas.set(p.to, (deltas.get(p.to) ?? 0) - p.sign);
  }
  const points = [...deltas.keys()].sort((a, b) => a - b);
  const out: WeightedRange[] = [];
  let weight = 0;
  for (let i = 0; i < points.length - 1; i++) {
    weight += deltas.get(points[i])!;
    if (weight === 0) continue;
    const last = out[out.length - 1];
    if (last && last.weight === weight && last.to.getTime() === points[i]) {
      last.to = new Date(points[i + 1]);
    } else out.push({ from: new Date(points[i]), to: new Date(points[i + 1]), weight });
  }
  return out;
}

const sameRanges = (a: WeightedRange[], b: WeightedRange[]) =>
  JSON.stringify(a) === JSON.stringify(b);

/**
 * The key of event_type_breakdown under which the summary counts the typed events it does not
 * list by type: those beyond the `max` largest types of the window, and those the rollups
 * already folded (ROLLUP_MAX_EVENT_TYPES per row, sql/010). Parenthesised so that it reads as
 * no ordinary type; an event type of exactly this name would be added to it, which
 * event_types_folded tells apart.
 */
export const OTHER_EVENT_TYPES = "(other)";

/**
 * The key of event_type_breakdown under which the summary counts the events sent without an
 * event type, so that the breakdown adds up to total_logs. Parenthesised like
 * OTHER_EVENT_TYPES; an event type of exactly this name is added to it.
 */
export const NO_EVENT_TYPE = "(none)";

/**
 * event_type_breakdown from netted per-type counts and the events already summed as other: at
 * most `max` types, largest first, plus OTHER_EVENT_TYPES for the rest, so that the breakdown
 * always adds up to the window's typed events exactly. Exact per type when nothing was folded.
 * Once rows folded differently are netted (a day row less hours outside the window, each with
 * its own types kept), a type can net above its events or below zero: negative ones are not
 * listed, and an excess is taken back from the smallest listed so that nothing is negative.
 */
export function foldEventTypes(
  counts: ReadonlyMap<string, number>,
  other: number,
  max: number,
): { breakdown: Record<string, number>; folded: number } {
  let rest = other;
  for (const n of counts.values()) rest += n;
  const listed = [...counts].filter(([, n]) => n > 0)
    .sort(([ka, a], [kb, b]) => b - a || (ka < kb ? -1 : ka > kb ? 1 : 0))
    .slice(0, max);
  for (const [, n] of listed) rest -= n;
  for (let i = listed.length - 1; i >= 0 && rest < 0; i--) {
    const take = Math.min(listed[i][1], -rest);
    listed[i][1] -= take;
    rest += take;
  }
  const breakdown: Record<string, number> = {};
  for (const [k, n] of listed) if (n > 0) breakdown[k] = n;
  const folded = Math.max(0, rest);
  if (folded > 0) breakdown[OTHER_EVENT_TYPES] = (breakdown[OTHER_EVENT_TYPES] ?? 0) + folded;
  return { breakdown, folded };
}

export interface SummaryOptions {
  now?: number;
  form?: Form;
  /** statement_timeout of each query (QUERY_TIMEOUT_MS); 0 or absent: none. */
  timeoutMs?: number;
  /** The request's: when it fires, the queries still running are cancelled. */
  signal?: AbortSignal;
  /** Event types listed at most (ROLLUP_MAX_EVENT_TYPES); the rest: OTHER_EVENT_TYPES. */
  maxEventTypes?: number;
  /** Latency buckets of rows read by earlier summaries (absent: every row's are read). */
  sketchCache?: SketchCache;
}

/**
 * The whole summary; independent queries run concurrently on the pool, each bounded by
 * `timeoutMs` and cancelled when `signal` fires or another one failed.
 */
export async function summarize(
  sql: Sql,
  q: SummaryQueryInput,
  opts: SummaryOptions = {},
): Promise<Summary> {
  const now = opts.now ?? Date.now();
  const form = opts.form;
  const maxTypes = opts.maxEventTypes ?? DEFAULT_ROLLUP_MAX_EVENT_TYPES;
  const w = resolveWindow(q, now);
  const stepMs = STEPS[w.step];
  const services = q.service_name;
  const maxSeriesTier = seriesMaxTier(stepMs);
  const pieces = decompose(w.start, w.end, { now, form });
  // The series reads the same pieces, except that it may not use a tier coarser than its
  // step (a day row cannot be split into 6h buckets): those are read at the coarsest tier
  // that fits, and netting cancels the overlap with their subtracted parts. Every row left
  // outside the window then lies in the first or the last step bucket.
  const seriesTier = TIERS[maxSeriesTier].tier;
  const seriesPieces = pieces.map((p) =>
    p.source !== "raw" && TIERS.findIndex((t) => t.tier === p.source) > maxSeriesTier
      ? { ...p, source: seriesTier }
      : p
  );

  // One failed query fails the summary: the others are cancelled rather than left running.
  const failed = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, failed.signal]) : failed.signal;
  const bounds: QueryBounds = {
    timeoutMs: opts.timeoutMs ?? 0,
    signal,
    serial: true,
    genericPlans: true,
  };
  const run = <T extends object>(build: (conn: Sql) => PendingQuery<T[]>): Promise<T[]> =>
    boundedQueries(sql, bounds, (conn) => [build(conn)] as const).then(
      ([rows]) => rows,
      (err) => {
        failed.abort(err);
        throw err;
      },
    );
  // The buckets of rows read before come from the cache: each query is told the keys it holds
  // (from the snapshot taken here, which the answer is resolved against).
  const cache = opts.sketchCache;
  const snapshot = cache?.snapshot();
  const known = (source: string, ranges: Range[]): string =>
    snapshot ? knownKeys(snapshot, source, ranges) : "";
  const queries: Promise<TierRow[]>[] = [];
  TIERS.forEach(({ tier }, i) => {
    const summary = rangesOf(pieces, tier);
    const series = i <= maxSeriesTier ? rangesOf(seriesPieces, tier) : null;
    const shared = series !== null && sameRanges(summary, series);
    if (summary.length > 0) {
      const keys = known(tableOf(tier), summary);
      queries.push(
        run((conn) =>
          tierSummary(conn, tier, summary, shared ? stepMs : null, services, maxTypes, keys)
        ),
      );
    }
    if (series && series.length > 0 && !shared) {
      queries.push(run((conn) => tierSeries(conn, tier, series, stepMs, services)));
    }
  });
  // The latency buckets of the series, tier by tier, apart from the counts above: without a
  // service filter they come from the all-services rows.
  const sketchTiers = TIERS.flatMap(({ tier }, i) => {
    const ranges = i <= maxSeriesTier ? rangesOf(seriesPieces, tier) : [];
    return ranges.length > 0
      ? [{ tier, ranges, known: known(seriesSketchSource(tier, services), ranges) }]
      : [];
  });
  // Min and max cannot be netted: they are read from pieces that are only ever added. Per
  // service from the coarsest tier (a 7-day window: ~7 day rows a service rather than ~170 hour
  // rows); per step bucket only for the series points that need them (see below).
  const additive = decompose(w.start, w.end, { now, form: "additive" });
  // Raw pieces (partial minutes) are the same for both.
  const raw = rangesOf(pieces, "raw");
  // The raw edges and the series' buckets share a connection (one after the other), the bounds
  // have their own: a connection per query held a summary's share of the pool above what the
  // counts alone needed, one for all three put them end to end.
  const latency = boundedQueries(sql, bounds, (conn) =>
    [
      raw.length === 0
        ? conn<RawRow[]>`select 1 where false`
        : rawEdgeStats(conn, raw, stepMs, services, maxTypes),
      seriesSketches(conn, sketchTiers, stepMs, services),
    ] as const).catch((err) => {
      failed.abort(err);
      throw err;
    });
  const [[rawRows, seriesSketchRows], boundsRows, ...tierRows] = await Promise.all([
    latency,
    run((conn) => latencyBounds(conn, additive, null, services)),
    ...queries,
  ]);

  const byService = new Map<string, { team: string | null; acc: Acc }>();
  const serviceAcc = (name: string, team: string | null) => {
    let s = byService.get(name);
    if (!s) byService.set(name, s = { team, acc: newAcc() });
    return s.acc;
  };
  const statusCounts = new Map<string, number>();
  const eventCounts = new Map<string, number>();
  const bump = (m: Map<string, number>, k: string, n: number) => m.set(k, (m.get(k) ?? 0) + n);

  const firstBucket = Math.floor(w.start / stepMs) * stepMs;
  const points = pointCount(w.start, w.end, stepMs);
  const series: Acc[] = Array.from({ length: points }, newAcc);
  const seriesAcc = (start: Date) => {
    const a = series[Math.round((start.getTime() - firstBucket) / stepMs)];
    if (!a) throw new Error(`series row at ${start.toISOString()} outside the window's buckets`);
    return a;
  };
  const add = (a: Acc, count: number, errors: number, latencySum: number) => {
    a.count += count;
    a.errors += errors;
    a.latencySum += latencySum;
  };

  let otherEvents = 0;
  // Sketch rows name services that a service row of the same query names too (with the team).
  const sketchRows: TierRow[] = [];
  for (const r of tierRows.flat()) {
    if (r.kind === "status") bump(statusCounts, r.key!, r.count);
    else if (r.kind === "event") bump(eventCounts, r.key!, r.count);
    else if (r.kind === "event_other") otherEvents += r.count;
    else if (r.kind === "sketch") sketchRows.push(r);
    else {
      const a = r.kind === "service"
        ? serviceAcc(r.service_name!, r.team_owner)
        : seriesAcc(r.start!);
      add(a, r.count, r.errors!, r.latency_sum ?? 0);
    }
  }
  // A row's buckets: parsed from the answer (and kept for the cache), or for rows the cache
  // holds, those of each key listed.
  const read = new Map<string, CachedSketch>();
  const addBuckets = (
    to: Sketch,
    key: string | null,
    idx: string | null,
    cnt: string | null,
    weight: number,
  ) => {
    if (idx === null || cnt === null) {
      for (const k of key?.split(",") ?? []) {
        const hit = snapshot?.get(k);
        if (!hit) throw new Error(`latency buckets of row ${k} neither sent nor cached`);
        to.addArrays(hit.idx, hit.cnt, weight);
      }
      return;
    }
    if (key === null) return to.addArrays(parseIntArray(idx), parseIntArray(cnt), weight);
    const parsed = parseSketch(key, idx, cnt);
    if (cache) read.set(key, parsed);
    to.addArrays(parsed.idx, parsed.cnt, weight);
  };
  for (const r of sketchRows) {
    addBuckets(serviceAcc(r.service_name!, null).sketch, r.key, r.sk_idx, r.sk_cnt, r.count);
  }
  for (const r of seriesSketchRows) {
    addBuckets(seriesAcc(r.start).sketch, r.key, r.sk_idx, r.sk_cnt, r.wt);
  }
  cache?.update(read);
  for (const r of rawRows) {
    if (r.kind === "event") bump(eventCounts, r.event_type, r.n);
    else if (r.kind === "event_other") otherEvents += r.n;
    else {
      const errors = r.status_code >= 500 ? r.n : 0;
      for (const a of [serviceAcc(r.service_name, r.team_owner), seriesAcc(r.start)]) {
        add(a, r.n, errors, r.latency_sum);
        a.sketch.add(r.hidx, r.n);
      }
      bump(statusCounts, String(r.status_code), r.n);
    }
  }
  for (const r of boundsRows) serviceAcc(r.service_name, null).sketch.bound(r.min, r.max);
  // A series point's p95 depends on its min and max only when it reads the lowest or highest
  // bucket counted (Sketch.needsBounds): only those points' bounds are read, at the series'
  // tier (a step bucket of its own each), in a second round trip that most summaries skip.
  const unbounded = series.flatMap((a, i) =>
    a.count > 0 && a.sketch.needsBounds(SERIES_QUANTILE) ? [i] : []
  );
  if (unbounded.length > 0) {
    const stepPieces = unbounded.flatMap((i) =>
      decompose(
        Math.max(w.start, firstBucket + i * stepMs),
        Math.min(w.end, firstBucket + (i + 1) * stepMs),
        { now, form: "additive", maxTier: maxSeriesTier },
      )
    );
    const [rows] = await boundedQueries(
      sql,
      bounds,
      (conn) => [latencyBounds(conn, stepPieces, stepMs, services)] as const,
    );
    for (const r of rows) seriesAcc(r.start!).sketch.bound(r.min, r.max);
  }
  const types = foldEventTypes(eventCounts, otherEvents, maxTypes);

  // Totals are derived from the per-service figures, so both always agree. A service whose
  // figures net to zero had no events in the window.
  const total = newAcc();
  const serviceList: ServiceSummary[] = [];
  for (const [name, { team, acc }] of byService) {
    if (acc.count <= 0) continue;
    add(total, acc.count, acc.errors, acc.latencySum);
    total.sketch.addAll(acc.sketch);
    serviceList.push({
      service_name: name,
      team_owner: team,
      total: acc.count,
      errors: acc.errors,
      error_rate_percent: percent(acc.errors, acc.count),
      availability_percent: percent(acc.count - acc.errors, acc.count),
      p95_latency_ms: acc.sketch.quantile(0.95),
    });
  }
  // Events without a type: whatever the typed ones leave of the total (both are exact).
  const typed = Object.values(types.breakdown).reduce((a, n) => a + n, 0);
  if (total.count > typed) {
    types.breakdown[NO_EVENT_TYPE] = (types.breakdown[NO_EVENT_TYPE] ?? 0) + total.count - typed;
  }
  serviceList.sort((a, b) =>
    b.total - a.total ||
    (a.service_name < b.service_name ? -1 : a.service_name > b.service_name ? 1 : 0)
  );

  return {
    window: w.window,
    start_time: new Date(w.start).toISOString(),
    end_time: new Date(w.end).toISOString(),
    step: w.step,
    total_logs: total.count,
    total_errors: total.errors,
    error_rate_percent: percent(total.errors, total.count),
    status_code_breakdown: Object.fromEntries(
      [...statusCounts].filter(([, n]) => n > 0).sort(([a], [b]) => Number(a) - Number(b)),
    ),
    event_type_breakdown: types.breakdown,
    event_types_folded: types.folded,
    latency: {
      avg: total.count ? round2(total.latencySum / total.count) : null,
      min: total.count && Number.isFinite(total.sketch.min) ? total.sketch.min : null,
      max: total.count && Number.isFinite(total.sketch.max) ? total.sketch.max : null,
      p50: total.count ? total.sketch.quantile(0.5) : null,
      p95: total.count ? total.sketch.quantile(0.95) : null,
      p99: total.count ? total.sketch.quantile(0.99) : null,
    },
    services: serviceList,
    series: series.map((a, i) => ({
      start: new Date(firstBucket + i * stepMs).toISOString(),
      count: a.count,
      errors: a.errors,
      p95_latency_ms: a.count > 0 ? a.sketch.quantile(SERIES_QUANTILE) : null,
    })),
  };
}
