// The window of a summary: a named one ending now or an explicit [start, end), and the series
// step, resolved and checked against the limits.
import { z } from "@hono/zod-openapi";
import { type FieldError, InvalidInputError } from "../../errors.ts";
import { EARLIEST_TIME, filterQueryFields, parseIsoTime } from "../filters.ts";
import { DAY_MS, HOUR_MS, MINUTE_MS } from "../../time.ts";

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
