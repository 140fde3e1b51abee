// GET /alerts (what is pending or firing now) and GET /alerts/deliveries (each notice attempt):
// the alerts job's state, narrowed to the caller's scope like every read.
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { listDeliveries, listOpenAlerts } from "../../alerts/list.ts";
import { narrowToScope } from "../../access/principal.ts";
import type { AppContext } from "../context.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { authResponses, problemResponse, unavailableResponse } from "../openapi.ts";
import { filterQueryFields } from "../schemas/filters.ts";
import { intParam } from "../schemas/params.ts";

const OpenAlert = z.object({
  source: z.enum(["rule", "slo"]),
  source_id: z.number().int().openapi({ example: 3 }),
  name: z.string().openapi({ example: "checkout 5xx" }),
  kind: z.string().nullable().openapi({
    description: "What `value` is: the rule's kind (error_rate: % of 5xx; latency_p95, " +
      "latency_p99: ms; no_traffic: requests; volume_drop: the share of the same window a " +
      "week earlier), or slo_burn_rate for an SLO's alerts; null for a rule deleted meanwhile.",
    example: "error_rate",
  }),
  service_name: z.string().openapi({ example: "checkout-service" }),
  team: z.string().nullable().openapi({ example: "Payments Team" }),
  severity: z.string().openapi({
    description: "The rule's severity (page, ticket, info), or the SLO alert's (page, ticket).",
    example: "page",
  }),
  state: z.enum(["pending", "firing"]),
  value: z.number().nullable().openapi({
    description: "What crossed the threshold: %, ms, a count, a ratio, or a burn rate.",
    example: 12.5,
  }),
  since: z.string().openapi({ example: "2026-12-02T13:58:00.000Z" }),
  fired_at: z.string().nullable().openapi({ example: "2026-12-02T14:00:00.000Z" }),
  episode: z.number().int().openapi({ example: 4 }),
  silenced: z.boolean().openapi({ description: "A silence holds its notices back." }),
  last_notified_at: z.string().nullable().openapi({ example: "2026-12-02T14:00:01.000Z" }),
}).openapi("OpenAlert");

const Delivery = z.object({
  id: z.number().int().openapi({ example: 811 }),
  at: z.string().openapi({ example: "2026-12-02T14:00:01.000Z" }),
  channel: z.string().openapi({ example: "payments-pager" }),
  service_name: z.string().openapi({ example: "checkout-service" }),
  source: z.string().openapi({ example: "rule" }),
  source_id: z.number().int().openapi({ example: 3 }),
  alert_key: z.string().openapi({ example: "" }),
  episode: z.number().int().openapi({ example: 4 }),
  status: z.enum(["firing", "resolved"]),
  attempt: z.number().int().openapi({ example: 1 }),
  outcome: z.enum(["delivered", "failed", "rejected"]),
  http_status: z.number().int().nullable().openapi({ example: 200 }),
  error: z.string().nullable().openapi({ example: null }),
  duration_ms: z.number().nullable().openapi({ example: 35.2 }),
}).openapi("AlertDelivery");

const DeliveriesQuery = z.strictObject({
  service_name: filterQueryFields.service_name,
  limit: intParam(1, 500, "limit").openapi({ description: "1-500, default 100.", example: 100 }),
  before: intParam(1, Number.MAX_SAFE_INTEGER, "before").openapi({
    description: "Only attempts with an id below this (the last id of the previous page).",
    example: 811,
  }),
});

export function alertStateRoutes(app: OpenAPIHono, ctx: AppContext): void {
  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/alerts",
        operationId: "listAlerts",
        tags: ["alerts"],
        ...needs("read"),
        summary: "Alerts pending or firing now, firing first",
        description: "Each rule on each service it watches, and each SLO's page and ticket " +
          "alert, whose condition holds (pending: not yet for the rule's `for`). Silenced " +
          "alerts are listed too, marked.",
        request: { query: z.strictObject({ service_name: filterQueryFields.service_name }) },
        responses: {
          200: {
            description: "Open alerts (an empty array when all is well)",
            content: { "application/json": { schema: z.array(OpenAlert) } },
          },
          400: problemResponse("A bad parameter"),
          ...authResponses,
          503: unavailableResponse(),
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const q = c.req.valid("query");
      const services = await narrowToScope(ctx.sql, c.get("principal"), q.service_name);
      return c.json(await listOpenAlerts(ctx.sql, { services, now: new Date() }), 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/alerts/deliveries",
        operationId: "listAlertDeliveries",
        tags: ["alerts"],
        ...needs("read"),
        summary: "Notification attempts, newest first",
        request: { query: DeliveriesQuery },
        responses: {
          200: {
            description: "Attempts (page on with `before` = the last id)",
            content: { "application/json": { schema: z.array(Delivery) } },
          },
          400: problemResponse("A bad parameter"),
          ...authResponses,
          503: unavailableResponse(),
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const q = c.req.valid("query");
      const services = await narrowToScope(ctx.sql, c.get("principal"), q.service_name);
      return c.json(
        await listDeliveries(ctx.sql, { services, limit: q.limit ?? 100, before: q.before }),
        200,
      );
    },
  );
}
