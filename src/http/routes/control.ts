import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { InvalidInputError } from "../../errors.ts";
import { getJobControl, type JobName } from "../../jobs/job-control.ts";
import { pruneNow, runAlertsNow, runIngestorNow, switchJob } from "../../jobs/manual.ts";
import { alertsStatus, ingestorHealth, ingestorStatus, prunerStatus } from "../../jobs/status.ts";
import type { AppContext } from "../context.ts";
import { guarded, needs } from "../middleware/auth.ts";
import { auditOrigin } from "../audit-origin.ts";
import { authResponses, problemResponse, ProblemSchema, registerKeySchemes } from "../openapi.ts";
import {
  AlertsRunResult,
  AlertsStatusSchema,
  IngestorHealthSchema,
  IngestorRunResult,
  IngestorStatusSchema,
  PruneQuery,
  PruneResult,
  PrunerStatusSchema,
  ToggleBody,
  ToggleQuery,
  ToggleResult,
} from "../schemas/control.ts";

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

/** /control/* — background job switches and manual runs (API key). */
export function controlRoutes(app: OpenAPIHono, ctx: AppContext): void {
  registerKeySchemes(app);
  const admin = needs("admin");
  const read = needs("read");
  const deps = { sql: ctx.sql, config: ctx.config, metrics: ctx.metrics };

  const toggleRoute = (job: JobName, path: string) =>
    createRoute({
      method: "post",
      path,
      operationId: `toggle${job[0].toUpperCase()}${job.slice(1)}`,
      tags: ["control"],
      summary: `Switch the ${job} on or off for every instance`,
      description: "`?enable=true|false` or a JSON body `{enabled}` sets the switch; with " +
        "neither it flips. The switch lives in the database, so all instances see it at once.",
      ...admin,
      request: {
        query: ToggleQuery,
        body: { content: { "application/json": { schema: ToggleBody } }, required: false },
      },
      responses: {
        200: json(ToggleResult, "The new state"),
        400: problemResponse("Bad parameter or body"),
        ...authResponses,
      },
    });

  /** The switch wanted: from the query or the body (which must agree), else a flip. */
  const wanted = (query: { enable?: boolean }, body: { enabled?: boolean }) => {
    if (query.enable !== undefined && body.enabled !== undefined && query.enable !== body.enabled) {
      throw new InvalidInputError(
        [{ field: "enable", message: "disagrees with the body's enabled" }],
        "malformed",
      );
    }
    return query.enable ?? body.enabled;
  };

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/control/ingestor-status",
        operationId: "getIngestorStatus",
        ...read,
        tags: ["control"],
        summary: "The GitHub ingestor's switch, schedule, last runs and rate limit",
        responses: { 200: json(IngestorStatusSchema, "Status"), ...authResponses },
      }),
      ctx.access,
    ),
    async (c) => {
      const row = await getJobControl(ctx.sql, "ingestor");
      return c.json(ingestorStatus(row, ctx.config, new Date()), 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/control/ingestor-health",
        operationId: "getIngestorHealth",
        ...read,
        tags: ["control"],
        summary: "200 while the ingestor polls successfully; 503 with the reason otherwise",
        description: `Running: switched on, no failure since the last successful poll, and ` +
          `that poll within 3 poll intervals. Otherwise reason is disabled, stale, or ` +
          `"failing: <last error>".`,
        responses: {
          200: json(IngestorHealthSchema, "Running"),
          503: {
            description: "Not running (reason says why); a problem+json instead when the " +
              "database cannot be reached",
            content: {
              "application/json": { schema: IngestorHealthSchema },
              "application/problem+json": { schema: ProblemSchema },
            },
          },
          401: authResponses[401],
          403: authResponses[403],
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const row = await getJobControl(ctx.sql, "ingestor");
      const health = ingestorHealth(row, ctx.config, new Date());
      return health.running ? c.json(health, 200) : c.json(health, 503);
    },
  );

  for (const job of ["ingestor", "pruner", "alerts"] as const) {
    app.openapi(guarded(toggleRoute(job, `/control/${job}-toggle`), ctx.access), async (c) => {
      const enabled = wanted(c.req.valid("query"), c.req.valid("json"));
      return c.json(await switchJob(ctx.sql, job, enabled, auditOrigin(c)), 200);
    });
  }

  app.openapi(
    guarded(
      createRoute({
        method: "post",
        path: "/control/ingestor-run",
        operationId: "runIngestor",
        tags: ["control"],
        summary: "Poll GitHub now",
        description: "One run of the ingestor now, under the same lock and switch as the cron " +
          "tick. Every source is polled even if its poll interval has not passed (a conditional " +
          "request costs no rate limit), but never while GitHub's rate limit is exhausted.",
        ...admin,
        responses: { 200: json(IngestorRunResult, "The run's outcome"), ...authResponses },
      }),
      ctx.access,
    ),
    async (c) => c.json(await runIngestorNow(deps, auditOrigin(c)), 200),
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/control/pruner-status",
        operationId: "getPrunerStatus",
        ...read,
        tags: ["control"],
        summary: "The pruner's switch, schedule, retention and last run",
        responses: { 200: json(PrunerStatusSchema, "Status"), ...authResponses },
      }),
      ctx.access,
    ),
    async (c) => {
      const row = await getJobControl(ctx.sql, "pruner");
      return c.json(prunerStatus(row, ctx.config, new Date()), 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "post",
        path: "/control/prune",
        operationId: "runPrune",
        tags: ["control"],
        summary: "Remove logs older than N days now",
        description: "Whole daily partitions older than the cutoff (now − days) are detached " +
          "and dropped, the boundary partition loses its older rows, and rollups follow. " +
          "`dry_run=true` reports the same figures and changes nothing (it needs neither the " +
          "switch nor the lock).",
        ...admin,
        request: { query: PruneQuery },
        responses: {
          200: json(PruneResult, "The run's outcome"),
          400: problemResponse("Bad parameter"),
          ...authResponses,
        },
      }),
      ctx.access,
    ),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(await pruneNow(deps, { days: q.days, dryRun: q.dry_run }, auditOrigin(c)), 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "get",
        path: "/control/alerts-status",
        operationId: "getAlertsStatus",
        ...read,
        tags: ["control"],
        summary: "The alerts job's switch, schedule and last evaluation",
        responses: { 200: json(AlertsStatusSchema, "Status"), ...authResponses },
      }),
      ctx.access,
    ),
    async (c) => {
      const row = await getJobControl(ctx.sql, "alerts");
      return c.json(alertsStatus(row, ctx.config, new Date()), 200);
    },
  );

  app.openapi(
    guarded(
      createRoute({
        method: "post",
        path: "/control/alerts-run",
        operationId: "runAlerts",
        tags: ["control"],
        summary: "Evaluate every alert rule and SLO now",
        description: "One evaluation now, under the same lock and switch as the ALERT_CRON " +
          "tick: states move and due notices are sent as on a tick.",
        ...admin,
        responses: { 200: json(AlertsRunResult, "The run's outcome"), ...authResponses },
      }),
      ctx.access,
    ),
    async (c) => c.json(await runAlertsNow(deps, auditOrigin(c)), 200),
  );
}
