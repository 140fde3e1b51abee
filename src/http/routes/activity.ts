// GET /logs/activity: requests and errors per service over time, for the console's sparklines.
// Not under /services/: every name there is a service's (PUT /services/activity creates one).
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { timeQuery } from "../../metrics/query-timing.ts";
import type { AppContext } from "../context.ts";
import { narrowToScope } from "../../access/principal.ts";
import { activity, MAX_ACTIVITY_POINTS } from "../../query/activity.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { authResponses, problemResponse, unavailableResponse } from "../openapi.ts";
import { unlessClientGone } from "../client-gone.ts";
import { SummaryQuery } from "../schemas/summary.ts";

const ActivityPoint = z.object({
  start: z.string().openapi({ example: "2026-11-28T06:00:00.000Z" }),
  count: z.number().int().openapi({ example: 5_120 }),
  errors: z.number().int().openapi({ description: "Status >= 500.", example: 12 }),
}).openapi("ActivityPoint");

const Activity = z.object({
  start_time: z.string().openapi({
    description: "The window's start, down to a whole step. Inclusive.",
    example: "2026-11-27T06:00:00.000Z",
  }),
  end_time: z.string().openapi({
    description: "The window's end, up to a whole step. Exclusive.",
    example: "2026-11-28T08:00:00.000Z",
  }),
  step: z.string().openapi({ example: "1h" }),
  services: z.array(z.object({
    service_name: z.string().openapi({ example: "checkout-service" }),
    points: z.array(ActivityPoint).openapi({
      description: "Every step from start_time to end_time, oldest first, empty ones as 0.",
    }),
  })).openapi({ description: "Services with events in the range, by name." }),
}).openapi("ServiceActivity");

const activityRoute = createRoute({
  method: "get",
  path: "/logs/activity",
  operationId: "getServiceActivity",
  tags: ["logs"],
  ...needs("read"),
  summary: "Requests and errors per service over time (for sparklines)",
  description: "Counts per service in whole UTC steps over a window (as GET /logs/summary " +
    "takes it), read from one rollup tier: per minute up to 1 hour, per hour up to 7 days, " +
    `per day beyond; the step is the finest giving at most ${MAX_ACTIVITY_POINTS} points. ` +
    "A scoped caller gets its services only.",
  request: { query: SummaryQuery.omit({ step: true }) },
  responses: {
    200: {
      description: "The services' points",
      content: { "application/json": { schema: Activity } },
    },
    400: problemResponse("A bad or contradictory parameter (as for GET /logs/summary)"),
    ...authResponses,
    503: unavailableResponse("The query ran past QUERY_TIMEOUT_MS and was stopped"),
  },
});

/** GET /logs/activity. */
export function activityRoutes(app: OpenAPIHono, ctx: AppContext): void {
  app.openapi(guarded(activityRoute, ctx.access), async (c) => {
    const asked = c.req.valid("query");
    const service_name = await narrowToScope(ctx.sql, c.get("principal"), asked.service_name);
    return unlessClientGone(c.req.raw, async (signal) => {
      const answer = await timeQuery(
        ctx.metrics,
        "activity",
        () =>
          activity(ctx.sql, { ...asked, service_name }, {
            timeoutMs: ctx.config.queryTimeoutMs,
            signal,
            serial: true,
          }),
      );
      return c.json(answer, 200);
    });
  });
}
