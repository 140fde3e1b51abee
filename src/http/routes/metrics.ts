import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppContext } from "../context.ts";
import { collectDatabaseMetrics } from "../../metrics/collect.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { authResponses } from "../openapi.ts";

/** Open (Prometheus' convention) unless METRICS_REQUIRE_KEY: the document says which. */
const scrape = (requireKey: boolean) =>
  createRoute({
    method: "get",
    path: "/metrics",
    operationId: "getMetrics",
    tags: ["monitoring"],
    ...needs("metrics"),
    ...(requireKey ? {} : { security: [] }),
    summary: "Prometheus metrics of this instance (text exposition format 0.0.4)",
    description: "HTTP traffic by route template, ingest, database, background jobs, GitHub " +
      "polling, partitions and process metrics. Database-backed values are read at scrape time.",
    responses: {
      200: {
        content: {
          "text/plain": {
            schema: z.string().openapi({
              example: "# HELP http_requests_total HTTP requests answered...\n" +
                '# TYPE http_requests_total counter\nhttp_requests_total{method="GET",' +
                'route="/health",status="200"} 3\n',
            }),
          },
        },
        description: "Prometheus text exposition",
      },
      ...authResponses,
    },
  });

/** GET /metrics — Prometheus exposition of the process registry. */
export function metricsRoutes(app: OpenAPIHono, ctx: AppContext): void {
  // main sets it too; an app built without main's registry still reports its pool size.
  ctx.metrics.dbPoolMax.set(ctx.config.dbPoolMax);
  // The hub counts its own drops; the counter follows it by the difference at each scrape.
  let dropped = 0;
  app.openapi(guarded(scrape(ctx.config.metricsRequireKey), ctx.access), async (c) => {
    const live = ctx.liveHub.stats();
    ctx.metrics.liveSubscribers.set(live.subscribers);
    ctx.metrics.ingestInflightBytes.set(ctx.admission.inFlightBytes);
    ctx.metrics.liveDropped.inc(live.overflows - dropped);
    dropped = live.overflows;
    await collectDatabaseMetrics(ctx.metrics, ctx.sql);
    const text = await ctx.metrics.registry.metrics();
    return c.text(text, 200, { "Content-Type": ctx.metrics.registry.contentType });
  });
}
