import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { timeQuery } from "../../metrics/query-timing.ts";
import { bodyLimit } from "hono/body-limit";
import type { AppContext } from "../context.ts";
import { auditOrigin } from "../audit-origin.ts";
import { SERVICE_NAME } from "../../config.ts";
import { ForbiddenError, InvalidInputError, NotFoundError } from "../../errors.ts";
import { isScoped, mayChangeService, scopeServices } from "../../access/principal.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { getService, listServices, upsertService } from "../../query/services.ts";
import { Service } from "../schemas/services.ts";
import { authResponses, problemResponse, unavailableResponse } from "../openapi.ts";
import { activity, MAX_ACTIVITY_POINTS } from "../../query/activity.ts";
import { narrowToScope } from "../../access/principal.ts";
import { unlessClientGone } from "../client-gone.ts";
import { SummaryQuery } from "../schemas/summary.ts";

/** The body is a team name; anything near this size is not one. */
const MAX_PUT_BYTES = 16 * 1024;

const NameParam = z.object({
  name: z.string().regex(SERVICE_NAME, {
    error: "must be 1-100 characters of letters, digits and . _ - /",
  }).openapi({
    param: { name: "name", in: "path" },
    description: "The service name; write a / inside it as %2F.",
    example: "checkout-service",
  }),
});

const ServiceInput = z.object({
  team_owner: z.string({ error: "must be a string or null" })
    .max(200, { error: "must be at most 200 characters" })
    .refine((s) => !s.includes("\0"), { error: "must not contain NUL characters" })
    .nullable().openapi({ example: "Payments Team" }),
}).openapi("ServiceInput");

const LAST_24H_NOTE = "last_24h is counted from the per-minute and per-hour rollups: from the " +
  "start of the minute 24 hours ago through the current minute (UTC), so it is precise to the " +
  "minute; errors are events with status_code >= 500.";

const list = createRoute({
  method: "get",
  path: "/services",
  operationId: "listServices",
  tags: ["services"],
  ...needs("read"),
  summary: "Every service with its owner and last 24 hours",
  description: LAST_24H_NOTE,
  responses: {
    200: {
      description: "Services by name",
      content: { "application/json": { schema: z.array(Service) } },
    },
    ...authResponses,
  },
});

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
  path: "/services/activity",
  operationId: "getServiceActivity",
  tags: ["services"],
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

const get = createRoute({
  method: "get",
  path: "/services/{name}",
  operationId: "getService",
  tags: ["services"],
  ...needs("read"),
  summary: "One service with its owner and last 24 hours",
  description: LAST_24H_NOTE,
  request: { params: NameParam },
  responses: {
    200: { description: "The service", content: { "application/json": { schema: Service } } },
    400: problemResponse("Not a valid service name"),
    404: problemResponse("No service of that name"),
    ...authResponses,
  },
});

const put = createRoute({
  method: "put",
  path: "/services/{name}",
  operationId: "putService",
  tags: ["services"],
  ...needs("service_owner"),
  summary: "Create a service or set its team owner",
  description: "Creates the service (201) or replaces its team_owner (200); answers the " +
    `service. ${LAST_24H_NOTE}`,
  middleware: [
    bodyLimit({
      maxSize: MAX_PUT_BYTES,
      onError: () => {
        throw new InvalidInputError(
          [{ field: "(body)", message: `larger than the limit of ${MAX_PUT_BYTES} bytes` }],
          "too_large",
        );
      },
    }),
  ] as const,
  request: {
    params: NameParam,
    body: { required: true, content: { "application/json": { schema: ServiceInput } } },
  },
  responses: {
    200: { description: "Updated", content: { "application/json": { schema: Service } } },
    201: { description: "Created", content: { "application/json": { schema: Service } } },
    400: problemResponse("Bad name, malformed JSON or an invalid team_owner"),
    413: problemResponse("Body too large"),
    415: problemResponse("Body not application/json"),
    ...authResponses,
  },
});

/** GET /services, GET /services/activity, GET and PUT /services/{name}. */
export function servicesRoutes(app: OpenAPIHono, ctx: AppContext): void {
  // Before /services/{name}, which would otherwise take "activity" for a name.
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

  app.openapi(guarded(list, ctx.access), async (c) => {
    const all = await timeQuery(ctx.metrics, "services", () => listServices(ctx.sql));
    const p = c.get("principal");
    if (!isScoped(p)) return c.json(all, 200);
    const scope = new Set(await scopeServices(ctx.sql, p));
    return c.json(all.filter((s) => scope.has(s.name)), 200);
  });

  app.openapi(guarded(get, ctx.access), async (c) => {
    const { name } = c.req.valid("param");
    const p = c.get("principal");
    if (isScoped(p) && !(await scopeServices(ctx.sql, p)).includes(name)) {
      throw new ForbiddenError(`outside this key's scope: "${name}"`);
    }
    const service = await getService(ctx.sql, name);
    if (!service) throw new NotFoundError(`No service named "${name}"`);
    return c.json(service, 200);
  });

  app.openapi(guarded(put, ctx.access), async (c) => {
    const { name } = c.req.valid("param");
    const { team_owner } = c.req.valid("json");
    const refused = mayChangeService(
      c.get("principal"),
      (await getService(ctx.sql, name))?.team_owner,
      team_owner,
    );
    if (refused) throw new ForbiddenError(refused);
    const { created } = await upsertService(ctx.sql, name, team_owner, auditOrigin(c));
    const service = await getService(ctx.sql, name);
    if (!service) throw new Error(`service "${name}" vanished after its upsert`);
    return c.json(service, created ? 201 : 200);
  });
}
