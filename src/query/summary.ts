// GET /logs/summary, answered from the rollups: the window [start, end) is cut into whole UTC
// days, hours and minutes (read from log_rollup_1d/_1h/_1m) and the sub-minute edges (read
// from log_events), so a 7-day summary reads a few thousand rollup rows, not millions of events.
import { z } from "@hono/zod-openapi";
import type { Fragment } from "postgres";
import type { Sql } from "../db/connect.ts";
import { type FieldError, InvalidInputError } from "../errors.ts";
import { HISTOGRAM_COLUMNS, LATENCY_BOUNDS_MS, quantile } from "../ingest/histogram.ts";
import { filterQueryFields } from "./filters.ts";

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

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

export const SummaryQuery = z.object({
  window: z.enum(windowNames as [WindowName, ...WindowName[]], {
    error: `must be one of ${windowNames.join(", ")}`,
  }).optional().openapi({
    param: { name: "window", in: "query" },
    description: "A window ending now (default 24h). Not combinable with start_time/end_time.",
    example: "24h",
  }),
  start_time: filterQueryFields.start_time.openapi({
    description: "Inclusive start (ISO 8601 with zone). Alone: until now.",
  }),
  end_time: filterQueryFields.end_time.openapi({
    description: "Exclusive end (ISO 8601 with zone). Alone: the 24 hours before it.",
  }),
  service_name: filterQueryFields.service_name,
  step: z.enum(stepNames as [StepName, ...StepName[]], {
    error: `must be one of ${stepNames.join(", ")}`,
  }).optional().openapi({
    param: { name: "step", in: "query" },
    description: `Series bucket width, aligned to UTC. Default: from the window (15m and 1h: ` +
      `1m, 24h: 1h, 7d: 6h, 30d: 1d; explicit ranges: the finest step giving at most ` +
      `${AUTO_MAX_POINTS} points). At most ${MAX_POINTS} points.`,
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
  const parse = (s: string | undefined) =>
    s === undefined ? undefined : Date.parse(s.replace(" ", "T"));
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
    start = startIn ?? end - DAY_MS;
    if (start >= end) {
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
const TIERS: readonly { tier: Tier; ms: number; table: string }[] = [
  { tier: "1m", ms: MINUTE_MS, table: "log_rollup_1m" },
  { tier: "1h", ms: HOUR_MS, table: "log_rollup_1h" },
  { tier: "1d", ms: DAY_MS, table: "log_rollup_1d" },
];

export interface Piece {
  /** Where the piece is read from: a rollup tier, or the fact table. */
  source: Tier | "raw";
  from: number;
  to: number;
}

/**
 * Cuts [from, to) into the whole units of the coarsest tier allowed (index into 1m, 1h, 1d)
 * and, at each edge, the finer pieces left over; raw pieces each lie inside one UTC minute.
 */
export function decompose(from: number, to: number, maxTier = TIERS.length - 1): Piece[] {
  if (from >= to) return [];
  if (maxTier < 0) return [{ source: "raw", from, to }];
  const { tier, ms } = TIERS[maxTier];
  const a = Math.ceil(from / ms) * ms;
  const b = Math.floor(to / ms) * ms;
  if (a > b) return decompose(from, to, maxTier - 1);
  return [
    ...decompose(from, a, maxTier - 1),
    ...(a < b ? [{ source: tier, from: a, to: b }] : []),
    ...decompose(b, to, maxTier - 1),
  ];
}

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

/** Per service, one rollup tier (or the raw edges), before merging. */
export interface ServiceRow {
  service_name: string;
  team_owner: string | null;
  count: number;
  errors: number;
  latency_sum: number;
  hist: number[];
}

export interface CountRow {
  kind: "status" | "event";
  key: string;
  n: number;
}

export interface SeriesRow {
  start: Date;
  count: number;
  errors: number;
  hist: number[];
}

export interface RawRow {
  service_name: string;
  team_owner: string | null;
  status_code: number;
  event_type: string | null;
  hidx: number;
  start: Date;
  n: number;
  latency_sum: number;
}

const tableOf = (tier: Tier) => TIERS.find((t) => t.tier === tier)!.table;

function inRanges(sql: Sql, column: Fragment, ranges: Range[]): Fragment {
  return ranges
    .map((r) => sql`(${column} >= ${r.from}::timestamptz and ${column} < ${r.to}::timestamptz)`)
    .reduce((acc, p) => sql`${acc} or ${p}`);
}

function serviceFilter(sql: Sql, column: Fragment, services: string[] | undefined): Fragment {
  if (!services) return sql``;
  return sql`and ${column} = any(array(
    select id from services where name = any(${services}::text[])))`;
}

/** array[sum(h00), …, sum(h19)] as float8[]: the histogram of the rows summed. */
function histogramSums(sql: Sql): Fragment {
  const sums = HISTOGRAM_COLUMNS.map((c) => sql`sum(${sql(c)})`)
    .reduce((acc, p) => sql`${acc}, ${p}`);
  return sql`array[${sums}]::float8[]`;
}

/** Counts, latency sum and histogram per service from one rollup tier over whole buckets. */
export async function rollupServiceStats(
  sql: Sql,
  tier: Tier,
  ranges: Range[],
  services?: string[],
): Promise<ServiceRow[]> {
  return await sql<ServiceRow[]>`
    select s.name as service_name, s.team_owner, x.count, x.errors, x.latency_sum, x.hist
    from (
      select r.service_id, sum(r.count)::float8 as count, sum(r.errors)::float8 as errors,
             sum(r.latency_sum) as latency_sum, ${histogramSums(sql)} as hist
      from ${sql(tableOf(tier))} r
      where (${inRanges(sql, sql`r.bucket`, ranges)})
        ${serviceFilter(sql, sql`r.service_id`, services)}
      group by r.service_id
    ) x
    join services s on s.id = x.service_id`;
}

/** Status-code and event-type counts merged over one rollup tier. */
export async function rollupBreakdowns(
  sql: Sql,
  tier: Tier,
  ranges: Range[],
  services?: string[],
): Promise<CountRow[]> {
  return await sql<CountRow[]>`
    select kv.kind, kv.key, sum(kv.n)::float8 as n
    from ${sql(tableOf(tier))} r
    cross join lateral (
      select 'status' as kind, key, value::bigint as n from jsonb_each_text(r.status_counts)
      union all
      select 'event', key, value::bigint from jsonb_each_text(r.event_counts)
    ) kv
    where (${inRanges(sql, sql`r.bucket`, ranges)})
      ${serviceFilter(sql, sql`r.service_id`, services)}
    group by kv.kind, kv.key`;
}

/** Count, errors and histogram per step bucket (UTC-aligned) from one rollup tier. */
export async function rollupSeries(
  sql: Sql,
  tier: Tier,
  ranges: Range[],
  stepMs: number,
  services?: string[],
): Promise<SeriesRow[]> {
  return await sql<SeriesRow[]>`
    select date_bin(${stepMs / 1000}::int * interval '1 second', r.bucket, to_timestamp(0))
             as start,
           sum(r.count)::float8 as count, sum(r.errors)::float8 as errors,
           ${histogramSums(sql)} as hist
    from ${sql(tableOf(tier))} r
    where (${inRanges(sql, sql`r.bucket`, ranges)})
      ${serviceFilter(sql, sql`r.service_id`, services)}
    group by 1`;
}

/**
 * The sub-minute edges from the fact table, grouped finely enough to feed every figure:
 * per service, status, event type, histogram bucket (same bounds as the rollups, passed in)
 * and series step bucket.
 */
export async function rawEdgeStats(
  sql: Sql,
  ranges: Range[],
  stepMs: number,
  services?: string[],
): Promise<RawRow[]> {
  const bounds = LATENCY_BOUNDS_MS.filter(Number.isFinite);
  return await sql<RawRow[]>`
    select s.name as service_name, s.team_owner, x.status_code, x.event_type, x.hidx, x.start,
           x.n, x.latency_sum
    from (
      select e.service_id, e.status_code, e.event_type, e.hidx,
             date_bin(${stepMs / 1000}::int * interval '1 second', e.ts, to_timestamp(0))
               as start,
             count(*)::float8 as n, sum(e.latency_ms) as latency_sum
      from (
        select e.service_id, e.status_code, e.event_type, e.latency_ms, e."timestamp" as ts,
               -- upper bounds are inclusive: the bucket is the number of bounds below
               (select count(*) from unnest(${bounds}::float8[]) b where b < e.latency_ms)::int
                 as hidx
        from log_events e
        where (${inRanges(sql, sql`e."timestamp"`, ranges)})
          ${serviceFilter(sql, sql`e.service_id`, services)}
      ) e
      group by 1, 2, 3, 4, 5
    ) x
    join services s on s.id = x.service_id`;
}

// ---- assembly ------------------------------------------------------------------------------

export interface LatencySummary {
  avg: number | null;
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
  latency: LatencySummary;
  services: ServiceSummary[];
  series: SeriesPoint[];
}

interface Acc {
  count: number;
  errors: number;
  latencySum: number;
  hist: number[];
}

const newAcc = (): Acc => ({
  count: 0,
  errors: 0,
  latencySum: 0,
  hist: new Array(LATENCY_BOUNDS_MS.length).fill(0),
});

function addHist(into: number[], from: readonly number[]) {
  for (let i = 0; i < into.length; i++) into[i] += from[i] ?? 0;
}

const round2 = (n: number) => Math.round(n * 100) / 100;
const percent = (part: number, whole: number) => whole === 0 ? 0 : round2((part / whole) * 100);

function groupRanges(pieces: Piece[], source: Piece["source"]): Range[] {
  return pieces.filter((p) => p.source === source)
    .map((p) => ({ from: new Date(p.from), to: new Date(p.to) }));
}

/** The whole summary; independent queries run concurrently on the pool. */
export async function summarize(
  sql: Sql,
  q: SummaryQueryInput,
  opts: { now?: number } = {},
): Promise<Summary> {
  const w = resolveWindow(q, opts.now ?? Date.now());
  const stepMs = STEPS[w.step];
  const services = q.service_name;
  const pieces = decompose(w.start, w.end);
  // The series may not use a tier coarser than its step (a day row cannot be split into 6h).
  const seriesPieces = decompose(w.start, w.end, seriesMaxTier(stepMs));

  const raw = groupRanges(pieces, "raw");
  const tiers = TIERS.map((t) => t.tier);
  const [rawRows, statsByTier, countsByTier, seriesByTier] = await Promise.all([
    raw.length ? rawEdgeStats(sql, raw, stepMs, services) : [],
    Promise.all(tiers.map((t) => {
      const r = groupRanges(pieces, t);
      return r.length ? rollupServiceStats(sql, t, r, services) : [];
    })),
    Promise.all(tiers.map((t) => {
      const r = groupRanges(pieces, t);
      return r.length ? rollupBreakdowns(sql, t, r, services) : [];
    })),
    Promise.all(tiers.map((t) => {
      const r = groupRanges(seriesPieces, t);
      return r.length ? rollupSeries(sql, t, r, stepMs, services) : [];
    })),
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
  const seriesAcc = (start: Date) => series[Math.round((start.getTime() - firstBucket) / stepMs)];

  for (const r of statsByTier.flat()) {
    const a = serviceAcc(r.service_name, r.team_owner);
    a.count += r.count;
    a.errors += r.errors;
    a.latencySum += r.latency_sum;
    addHist(a.hist, r.hist);
  }
  for (const r of countsByTier.flat()) {
    bump(r.kind === "status" ? statusCounts : eventCounts, r.key, r.n);
  }
  for (const r of seriesByTier.flat()) {
    const a = seriesAcc(r.start);
    a.count += r.count;
    a.errors += r.errors;
    addHist(a.hist, r.hist);
  }
  for (const r of rawRows) {
    const errors = r.status_code >= 500 ? r.n : 0;
    for (const a of [serviceAcc(r.service_name, r.team_owner), seriesAcc(r.start)]) {
      a.count += r.n;
      a.errors += errors;
      a.latencySum += r.latency_sum;
      a.hist[r.hidx] += r.n;
    }
    bump(statusCounts, String(r.status_code), r.n);
    if (r.event_type !== null) bump(eventCounts, r.event_type, r.n);
  }

  // Totals are derived from the per-service figures, so both always agree.
  const total = newAcc();
  const serviceList: ServiceSummary[] = [];
  for (const [name, { team, acc }] of byService) {
    if (acc.count === 0) continue;
    total.count += acc.count;
    total.errors += acc.errors;
    total.latencySum += acc.latencySum;
    addHist(total.hist, acc.hist);
    serviceList.push({
      service_name: name,
      team_owner: team,
      total: acc.count,
      errors: acc.errors,
      error_rate_percent: percent(acc.errors, acc.count),
      availability_percent: percent(acc.count - acc.errors, acc.count),
      p95_latency_ms: quantile(acc.hist, 0.95),
    });
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
    event_type_breakdown: Object.fromEntries(
      [...eventCounts].filter(([, n]) => n > 0)
        .sort(([ka, a], [kb, b]) => b - a || (ka < kb ? -1 : ka > kb ? 1 : 0)),
    ),
    latency: {
      avg: total.count ? round2(total.latencySum / total.count) : null,
      p50: quantile(total.hist, 0.5),
      p95: quantile(total.hist, 0.95),
      p99: quantile(total.hist, 0.99),
    },
    services: serviceList,
    series: series.map((a, i) => ({
      start: new Date(firstBucket + i * stepMs).toISOString(),
      count: a.count,
      errors: a.errors,
      p95_latency_ms: quantile(a.hist, 0.95),
    })),
  };
}
