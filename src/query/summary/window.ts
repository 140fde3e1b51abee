// The window of a summary: a named one ending now or an explicit [start, end), and the series
// step, resolved and checked against the limits.
import { type FieldError, InvalidInputError } from "../../errors.ts";
import { DAY_MS, EARLIEST_TIME, HOUR_MS, MINUTE_MS, parseIsoTime } from "../../time.ts";

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

export const windowNames = Object.keys(WINDOWS) as WindowName[];
export const stepNames = Object.keys(STEPS) as StepName[];

/** What a summary is asked for (validated by the route's query schema). */
export interface SummaryQueryInput {
  window?: WindowName;
  start_time?: string;
  end_time?: string;
  service_name?: string[];
  step?: StepName;
}

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
      "malformed",
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
  if (errors.length) throw new InvalidInputError(errors, "malformed");

  let step: StepName;
  if (q.step) {
    step = q.step;
    const points = pointCount(start, end, STEPS[step]);
    if (points > MAX_POINTS) {
      throw new InvalidInputError([{
        field: "step",
        message: `gives ${points} points over this window; at most ${MAX_POINTS}`,
      }], "malformed");
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
