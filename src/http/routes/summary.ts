import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { timeQuery } from "../../metrics/query-timing.ts";
import type { AppContext } from "../context.ts";
import { BOUNDS_DESCRIPTION } from "../../ingest/histogram.ts";
import { NO_EVENT_TYPE, OTHER_EVENT_TYPES } from "../../query/summary/event-types.ts";
import { summarize } from "../../query/summary/summarize.ts";
import { MAX_SPAN_DAYS } from "../../query/summary/window.ts";
import { SummaryQuery } from "../schemas/summary.ts";
import { unlessClientGone } from "../client-gone.ts";
import { SketchCache } from "../../query/sketch-cache.ts";
import { authResponses, problemResponse, unavailableResponse } from "../openapi.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { narrowToScope } from "../../access/principal.ts";
import { MARKERS_LIMIT } from "../../query/markers.ts";
import { Marker } from "../schemas/markers.ts";

const pct = (example: number) => z.number().min(0).max(100).openapi({ example });
const ms = (example: number) => z.number().nullable().openapi({ example });

const ServiceSummary = z.object({
  service_name: z.string().openapi({ example: "checkout-service" }),
  team_owner: z.string().nullable().openapi({ example: "Payments Team" }),
  total: z.number().int().openapi({ example: 120_431 }),
  errors: z.number().int().openapi({ example: 1_204 }),
  error_rate_percent: pct(1),
  availability_percent: pct(99).openapi({
    description: "Share of events below 500. Only services with events are listed, so " +
      "total is never 0 and availability is always 100 - error_rate_percent.",
  }),
  p95_latency_ms: ms(240.5),
}).openapi("ServiceSummary");

const SeriesPoint = z.object({
  start: z.string().openapi({
    description: "Bucket start, aligned to the step in UTC. The first and last buckets " +
      "count only the part inside the window.",
    example: "2026-11-28T06:00:00.000Z",
  }),
  count: z.number().int().openapi({ example: 5_120 }),
  errors: z.number().int().openapi({ example: 12 }),
  p50_latency_ms: ms(88.1).openapi({ description: "null for an empty bucket." }),
  p95_latency_ms: ms(210.3).openapi({ description: "null for an empty bucket." }),
  p99_latency_ms: ms(512.7).openapi({ description: "null for an empty bucket." }),
}).openapi("SummarySeriesPoint");

const Summary = z.object({
  window: z.enum(["15m", "1h", "24h", "7d", "30d"]).nullable().openapi({
    description: "The named window used, or null for an explicit range.",
    example: "24h",
  }),
  start_time: z.string().openapi({
    description: "Inclusive.",
    example: "2026-11-27T07:00:00.000Z",
  }),
  end_time: z.string().openapi({ description: "Exclusive.", example: "2026-11-28T07:00:00.000Z" }),
  step: z.enum(["1m", "5m", "15m", "1h", "6h", "1d"]).openapi({ example: "1h" }),
  total_logs: z.number().int().openapi({ example: 240_862 }),
  total_errors: z.number().int().openapi({
    description: "Events with status >= 500.",
    example: 2_409,
  }),
  error_rate_percent: pct(1).openapi({
    description: "Share of status >= 500, 0-100; 0 when empty.",
  }),
  status_code_breakdown: z.record(z.string(), z.number().int()).openapi({
    example: { "200": 236_000, "404": 2_453, "503": 2_409 },
  }),
  event_type_breakdown: z.record(z.string(), z.number().int()).openapi({
    description: "Events by type, most first: at most ROLLUP_MAX_EVENT_TYPES types (default " +
      `100), and "${OTHER_EVENT_TYPES}" for the typed events not listed by type. Counts are ` +
      "exact while no rollup row of the window had more types than that; otherwise the " +
      "listed counts are estimates (never negative) and the breakdown still adds up to the " +
      `typed events exactly. Events without a type are counted under "${NO_EVENT_TYPE}", so ` +
      "the breakdown adds up to total_logs.",
    example: {
      "payment.charge": 80_211,
      deploy: 3,
      [OTHER_EVENT_TYPES]: 1_520,
      [NO_EVENT_TYPE]: 159_128,
    },
  }),
  event_types_folded: z.number().int().openapi({
    description: `Typed events counted under "${OTHER_EVENT_TYPES}" instead of their own ` +
      `type; 0 when the breakdown lists every type. An event type literally named ` +
      `"${OTHER_EVENT_TYPES}" is added to that key too, and is not included here.`,
    example: 1_520,
  }),
  latency: z.object({
    avg: ms(86.2).openapi({ description: "Exact mean." }),
    min: ms(0.4).openapi({ description: "The least latency of the window's events." }),
    max: ms(30_012.5).openapi({ description: "The greatest latency of the window's events." }),
    p50: ms(42.1),
    p95: ms(240.5),
    p99: ms(730.9),
  }).openapi({ description: "null when the window has no events." }),
  services: z.array(ServiceSummary).openapi({
    description: "Services with events in the window, by total, most first.",
  }),
  series: z.array(SeriesPoint).openapi({
    description: "Every step bucket touching the window, empty ones included.",
  }),
  markers: z.array(Marker).openapi({
    description: "Deployments and releases (as GET /markers lists them) of the summarised " +
      "services in [start_time, end_time), oldest first: those of service_name when given, " +
      `else of every service the caller may read. At most ${MARKERS_LIMIT}: past that, ` +
      "the oldest are listed and the rest left out (ask GET /markers for a narrower range).",
  }),
}).openapi("LogSummary");

const route = createRoute({
  method: "get",
  path: "/logs/summary",
  operationId: "getLogSummary",
  tags: ["logs"],
  ...needs("read"),
  summary: "Counts, error rate, latency percentiles, per-service figures and a time series",
  description: "Summarises events in [start_time, end_time): a named window ending now " +
    `(default 24h), or an explicit range of at most ${MAX_SPAN_DAYS} days. ` +
    "Read from per-minute, per-hour and per-day rollups plus the sub-minute edges, so counts " +
    "are exact and current. " + BOUNDS_DESCRIPTION,
  request: { query: SummaryQuery },
  responses: {
    200: { content: { "application/json": { schema: Summary } }, description: "The summary" },
    400: problemResponse(
      "A bad or contradictory parameter (each one is named): window with start_time or " +
        `end_time, start_time not before end_time, a span over ${MAX_SPAN_DAYS} days, or a ` +
        "step giving too many points",
    ),
    ...authResponses,
    503: unavailableResponse(
      "A query ran past QUERY_TIMEOUT_MS and was stopped (narrow the window or the services)",
    ),
  },
});

/** GET /logs/summary. */
export function summaryRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const sketchCache = new SketchCache();
  app.openapi(guarded(route, ctx.access), async (c) => {
    const asked = c.req.valid("query");
    const service_name = await narrowToScope(ctx.sql, c.get("principal"), asked.service_name);
    const q = { ...asked, service_name };
    return unlessClientGone(c.req.raw, async (signal) => {
      const summary = await timeQuery(ctx.metrics, "summary", () =>
        summarize(ctx.sql, q, {
          timeoutMs: ctx.config.queryTimeoutMs,
          signal,
          maxEventTypes: ctx.config.rollupMaxEventTypes,
          sketchCache,
        }));
      return c.json(summary, 200);
    });
  });
}
