// Requests and errors per service over time, for sparklines (the console's overview): one
// statement over one rollup tier (views that include the pending deltas, so counts are current),
// binned into 15-60 whole steps. The summary's series is of all services together; this is the
// same counts split by service, without latency.
import type { Sql } from "../db/connect.ts";
import { DAY_MS, HOUR_MS, MINUTE_MS } from "../time.ts";
import { boundedQueries, type QueryBounds } from "./bounded.ts";
import { resolveWindow, type WindowName } from "./summary/window.ts";

export interface ActivityQuery {
  window?: WindowName;
  start_time?: string;
  end_time?: string;
  /** Absent: every service; empty: none (an empty scope). */
  service_name?: string[];
}

export interface ActivityPoint {
  start: string;
  count: number;
  errors: number;
}

export interface Activity {
  start_time: string;
  end_time: string;
  step: string;
  services: { service_name: string; points: ActivityPoint[] }[];
}

/** At most this many points per service; steps are the first of STEPS that fits. */
export const MAX_ACTIVITY_POINTS = 60;

const STEPS: [name: string, ms: number][] = [
  ["1m", MINUTE_MS],
  ["2m", 2 * MINUTE_MS],
  ["5m", 5 * MINUTE_MS],
  ["10m", 10 * MINUTE_MS],
  ["15m", 15 * MINUTE_MS],
  ["30m", 30 * MINUTE_MS],
  ["1h", HOUR_MS],
  ["2h", 2 * HOUR_MS],
  ["3h", 3 * HOUR_MS],
  ["6h", 6 * HOUR_MS],
  ["12h", 12 * HOUR_MS],
  ["1d", DAY_MS],
  ["2d", 2 * DAY_MS],
];

const TIERS = [
  { table: "log_rollup_1m", unitMs: MINUTE_MS, upToMs: HOUR_MS },
  { table: "log_rollup_1h", unitMs: HOUR_MS, upToMs: 7 * DAY_MS },
  { table: "log_rollup_1d", unitMs: DAY_MS, upToMs: Infinity },
] as const;

/** The tier, the step and the range widened to whole steps (UTC-aligned) of a window. */
export function activityPlan(start: number, end: number) {
  const tier = TIERS.find((t) => end - start <= t.upToMs)!;
  const points = (ms: number) => Math.ceil(end / ms) - Math.floor(start / ms);
  const [step, stepMs] =
    STEPS.find(([, ms]) =>
      ms >= tier.unitMs && ms % tier.unitMs === 0 && points(ms) <= MAX_ACTIVITY_POINTS
    ) ?? STEPS.at(-1)!;
  return {
    tier,
    step,
    stepMs,
    from: Math.floor(start / stepMs) * stepMs,
    to: Math.ceil(end / stepMs) * stepMs,
  };
}

/**
 * Per service with events in the range, by name: every step from start_time to end_time (the
 * window widened to whole steps, so each point counts a whole step), empty ones as 0.
 */
export async function activity(
  sql: Sql,
  q: ActivityQuery,
  bounds: QueryBounds,
  now = Date.now(),
): Promise<Activity> {
  const w = resolveWindow(
    { window: q.window, start_time: q.start_time, end_time: q.end_time },
    now,
  );
  const plan = activityPlan(w.start, w.end);
  const from = new Date(plan.from), to = new Date(plan.to);
  const services = q.service_name;
  const [rows] = services?.length === 0
    ? [[] as Row[]]
    : await boundedQueries(sql, bounds, (conn) =>
      [
        conn<Row[]>`
          select s.name as service_name,
                 date_bin(${plan.stepMs / 1000}::int * interval '1 second', r.bucket,
                          to_timestamp(0)) as start,
                 sum(r.count)::float8 as count, sum(r.errors)::float8 as errors
            from ${conn(plan.tier.table)} r join services s on s.id = r.service_id
           where r.bucket >= ${from} and r.bucket < ${to}
             ${
          services
            ? conn`and s.name in (select jsonb_array_elements_text(${
              JSON.stringify(services)
            }::text::jsonb))`
            : conn``
        }
           group by 1, 2`,
      ] as const);

  const n = Math.round((plan.to - plan.from) / plan.stepMs);
  const byService = new Map<string, ActivityPoint[]>();
  for (const r of rows) {
    let points = byService.get(r.service_name);
    if (!points) {
      points = Array.from({ length: n }, (_, i) => ({
        start: new Date(plan.from + i * plan.stepMs).toISOString(),
        count: 0,
        errors: 0,
      }));
      byService.set(r.service_name, points);
    }
    const p = points[Math.round((r.start.getTime() - plan.from) / plan.stepMs)];
    p.count += r.count;
    p.errors += r.errors;
  }
  return {
    start_time: from.toISOString(),
    end_time: to.toISOString(),
    step: plan.step,
    // A service whose rows net to nothing (pruned meanwhile) had no events here.
    services: [...byService]
      .filter(([, points]) => points.some((p) => p.count > 0))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([service_name, points]) => ({ service_name, points })),
  };
}

interface Row {
  service_name: string;
  start: Date;
  count: number;
  errors: number;
}
