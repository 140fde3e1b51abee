// GET /logs/summary, answered from the rollups: the window [start, end) is cut into whole UTC
// days, hours and minutes (read from log_rollup_1d/_1h/_1m) and the sub-minute edges (read
// from log_events), so a 7-day summary reads a few thousand rollup rows, not millions of
// events. An edge is read either as finer pieces or as the coarser row less the part outside
// the window, whichever reads fewer rows (see decompose); counts are exact either way. The
// event-type breakdown lists at most ROLLUP_MAX_EVENT_TYPES types, the rest under "(other)", as
// the rollup rows themselves keep no more (sql/010). Every query is bounded by QUERY_TIMEOUT_MS
// and cancelled when the client goes away (see bounded.ts). This file is the assembly: one
// summarize() sending the queries of the sibling files and adding up their rows.
import type { PendingQuery } from "postgres";
import type { Sql } from "../../db/connect.ts";
import { parseIntArray, Sketch } from "../../ingest/histogram.ts";
import { type CachedSketch, knownKeys, parseSketch, type SketchCache } from "../sketch-cache.ts";
import { DEFAULT_ROLLUP_MAX_EVENT_TYPES } from "../../db/rollup-constants.ts";
import { boundedQueries, type QueryBounds } from "../bounded.ts";
import {
  decompose,
  type Form,
  type Range,
  rangesOf,
  seriesMaxTier,
  tableOf,
  TIERS,
  type WeightedRange,
} from "./decompose.ts";
import { foldEventTypes, NO_EVENT_TYPE } from "./event-types.ts";
import { latencyBounds, seriesSketches, seriesSketchSource } from "./latency-queries.ts";
import { listMarkers, type Marker } from "../markers.ts";
import {
  rawEdgeStats,
  type RawRow,
  type TierRow,
  tierSeries,
  tierSummary,
} from "./tier-queries.ts";
import {
  pointCount,
  resolveWindow,
  type StepName,
  STEPS,
  type SummaryQueryInput,
  type WindowName,
} from "./window.ts";

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
  p50_latency_ms: number | null;
  p95_latency_ms: number | null;
  p99_latency_ms: number | null;
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
  /** Deployments and releases of the summary's services in its window (at most MARKERS_LIMIT). */
  markers: Marker[];
}

interface Acc {
  count: number;
  errors: number;
  latencySum: number;
  sketch: Sketch;
}

const newAcc = (): Acc => ({ count: 0, errors: 0, latencySum: 0, sketch: new Sketch() });

/** The percentiles of each series point (p50_latency_ms, p95_latency_ms, p99_latency_ms). */
const SERIES_QUANTILES = [0.5, 0.95, 0.99] as const;

const round2 = (n: number) => Math.round(n * 100) / 100;
const percent = (part: number, whole: number) => whole === 0 ? 0 : round2((part / whole) * 100);

const sameRanges = (a: WeightedRange[], b: WeightedRange[]) =>
  JSON.stringify(a) === JSON.stringify(b);

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
  // The markers ride along with the bounds (one cheap statement on markers_at_idx), rather than
  // taking a connection of their own.
  const boundsAndMarkers = boundedQueries(sql, bounds, (conn) =>
    [
      latencyBounds(conn, additive, null, services),
      listMarkers(conn, {
        services,
        start: new Date(w.start).toISOString(),
        end: new Date(w.end).toISOString(),
        endExclusive: true,
      }),
    ] as const).catch((err) => {
      failed.abort(err);
      throw err;
    });
  const [[rawRows, seriesSketchRows], [boundsRows, markers], ...tierRows] = await Promise.all([
    latency,
    boundsAndMarkers,
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
  // A series point's percentile depends on its min and max only when it reads the lowest or highest
  // bucket counted (Sketch.needsBounds): only those points' bounds are read, at the series'
  // tier (a step bucket of its own each), in a second round trip that most summaries skip.
  const unbounded = series.flatMap((a, i) =>
    a.count > 0 && SERIES_QUANTILES.some((q) => a.sketch.needsBounds(q)) ? [i] : []
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
    series: series.map((a, i) => {
      const [p50, p95, p99] = SERIES_QUANTILES.map((q) =>
        a.count > 0 ? a.sketch.quantile(q) : null
      );
      return {
        start: new Date(firstBucket + i * stepMs).toISOString(),
        count: a.count,
        errors: a.errors,
        p50_latency_ms: p50,
        p95_latency_ms: p95,
        p99_latency_ms: p99,
      };
    }),
    markers: [...markers],
  };
}
