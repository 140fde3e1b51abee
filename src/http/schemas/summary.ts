// The query string of GET /logs/summary.
import { z } from "@hono/zod-openapi";
import {
  AUTO_MAX_POINTS,
  MAX_POINTS,
  MAX_SPAN_DAYS,
  type StepName,
  stepNames,
  type WindowName,
  windowNames,
} from "../../query/summary/window.ts";
import { filterQueryFields } from "./filters.ts";

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
