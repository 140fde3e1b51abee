import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { AppContext } from "../context.ts";
import { API_KEY_HEADER, requireApiKey } from "../middleware/api-key.ts";
import {
  flipJobEnabled,
  getJobControl,
  type JobControl,
  type JobName,
  setJobEnabled,
} from "../../jobs/job-control.ts";
import { ingestorHealth, ingestorStatus, prunerStatus } from "../../jobs/status.ts";
import { InvalidInputError } from "../../errors.ts";
import { runIngestor } from "../../jobs/ingestor.ts";
import { pruneCutoffs, runPruner } from "../../jobs/pruner.ts";
import type { JobRun } from "../../jobs/runner.ts";
import { boolParam, intParam } from "../schemas/params.ts";
import { problemResponse, ProblemSchema, unavailableResponse } from "../openapi.ts";

// ---- schemas ---------------------------------------------------------------------------

const time = (example: string) => z.string().nullable().openapi({ example });

const PollRecordSchema = z.object({
  source: z.string().openapi({ example: "repo:denoland/deno" }),
  at: z.string().openapi({ example: "2026-11-28T07:00:00.012Z" }),
  outcome: z.enum([
    "ok",
    "not_modified",
    "rate_limited",
    "error",
    "timeout",
    "skipped_interval",
    "skipped_rate_limit",
  ]).openapi({ example: "ok" }),
  status: z.number().int().nullable().openapi({ example: 200 }),
  latency_ms: z.number().nullable().openapi({ example: 182.4 }),
  pages: z.number().int().openapi({ example: 1 }),
  new: z.number().int().openapi({ example: 12 }),
  duplicates: z.number().int().openapi({ example: 18 }),
  too_old: z.number().int().openapi({ example: 0 }),
  invalid: z.number().int().openapi({ example: 0 }),
  rate_limit_remaining: z.number().int().nullable().openapi({ example: 4987 }),
  rate_limit_reset: time("2026-11-28T08:00:00.000Z"),
  error: z.string().nullable().openapi({ example: null }),
}).openapi("GitHubPoll");

const IngestorStatusSchema = z.object({
  enabled: z.boolean().openapi({ example: true }),
  source: z.string().openapi({ example: "public", description: "GITHUB_SOURCE" }),
  schedule: z.string().openapi({ example: "* * * * *", description: "INGEST_CRON (UTC)" }),
  last_run_at: time("2026-11-28T07:00:00.004Z"),
  last_finished_at: time("2026-11-28T07:00:00.391Z"),
  last_success_at: time("2026-11-28T07:00:00.391Z"),
  last_error: z.string().nullable().openapi({ example: null }),
  consecutive_failures: z.number().int().openapi({ example: 0 }),
  events_ingested_total: z.number().int().openapi({ example: 5210 }),
  rate_limit_remaining: z.number().int().nullable().openapi({ example: 4987 }),
  rate_limit_reset: time("2026-11-28T08:00:00.000Z"),
  rate_limited_until: time("2026-11-28T08:00:00.000Z").openapi({
    description: "Set while GitHub's rate limit is exhausted: no request before then.",
  }),
  next_run_at: time("2026-11-28T07:01:00.000Z").openapi({
    description: "Next cron tick; null while switched off.",
  }),
  updated_at: time("2026-11-28T06:55:12.000Z"),
  updated_by: z.string().nullable().openapi({ example: "api-key#1" }),
  sources: z.array(z.object({
    source: z.string().openapi({ example: "public" }),
    poll_interval_s: z.number().int().openapi({ example: 60 }),
    last_poll_at: time("2026-11-28T07:00:00.004Z"),
    next_poll_at: time("2026-11-28T07:01:00.004Z"),
    has_etag: z.boolean().openapi({ example: true }),
    cursor: time("2026-11-28T06:59:58.000Z"),
    last_poll: PollRecordSchema.nullable(),
  })),
}).openapi("IngestorStatus");

const IngestorHealthSchema = z.object({
  running: z.boolean().openapi({ example: false }),
  reason: z.string().optional().openapi({
    example: "failing: public: HTTP 500: Server Error",
    description: "disabled, stale, or failing: <last error>",
  }),
  last_success_at: time("2026-11-28T07:00:00.391Z"),
  interval_s: z.number().openapi({ example: 60, description: "The poll interval in force" }),
}).openapi("IngestorHealth");

// No example on enable: the body's example sets the switch, and the two must agree.
const ToggleQuery = z.strictObject({
  enable: boolParam("enable").openapi({
    description: "Set the switch; without it (and without a body) the switch flips. When the " +
      "body's enabled is given too, the two must agree (else 400).",
  }),
});

const ToggleBody = z.object({
  enabled: z.boolean().optional().openapi({ example: true }),
}).openapi("JobToggleInput");

const ToggleResult = z.object({
  job: z.enum(["ingestor", "pruner"]).openapi({ example: "ingestor" }),
  enabled: z.boolean().openapi({ example: true }),
  updated_at: z.string().openapi({ example: "2026-11-28T07:00:00.000Z" }),
  updated_by: z.string().nullable().openapi({ example: "api-key#1" }),
}).openapi("JobToggleResult");

const RunStatus = z.enum(["success", "failure", "idle", "skipped"]).openapi({
  description: "idle: nothing was due (rate limit exhausted); skipped: the job is switched " +
    "off (reason disabled) or running elsewhere (reason locked).",
  example: "success",
});

const IngestorRunResult = z.object({
  status: RunStatus,
  reason: z.enum(["disabled", "locked"]).optional().openapi({ example: "locked" }),
  error: z.string().nullable().openapi({ example: null }),
  started_at: z.string().openapi({ example: "2026-11-28T07:00:00.004Z" }),
  duration_ms: z.number().openapi({ example: 391.2 }),
  new: z.number().int().openapi({ example: 12 }),
  duplicates: z.number().int().openapi({ example: 18 }),
  rate_limit_remaining: z.number().int().nullable().openapi({ example: 4987 }),
  polls: z.array(PollRecordSchema),
}).openapi("IngestorRunResult");

const PruneQuery = z.strictObject({
  days: intParam(1, 3650, "days").openapi({
    description: "Days of logs to keep, 1 to 3650; default RETENTION_DAYS.",
    example: 7,
  }),
  dry_run: boolParam("dry_run").openapi({
    description: "Compute the figures without changing anything (default false).",
    example: true,
  }),
});

const PruneResult = z.object({
  status: RunStatus,
  reason: z.enum(["disabled", "locked"]).optional().openapi({ example: "locked" }),
  error: z.string().nullable().openapi({ example: null }),
  deleted: z.number().int().openapi({ example: 120_400 }),
  dropped_partitions: z.number().int().openapi({ example: 1 }),
  cutoff: z.string().openapi({
    example: "2026-11-21T07:00:00.000Z",
    description: "now − days, exact: rows older than this are removed.",
  }),
  rollup_cutoff: z.string().openapi({ example: "2026-11-21T07:00:00.000Z" }),
  dry_run: z.boolean().openapi({ example: false }),
  duration_ms: z.number().openapi({ example: 84.1 }),
}).openapi("PruneResult");

const PrunerStatusSchema = z.object({
  enabled: z.boolean().openapi({ example: true }),
  schedule: z.string().openapi({ example: "0 3 * * *", description: "PRUNE_CRON (UTC)" }),
  retention_days: z.number().int().openapi({ example: 7 }),
  rollup_retention_days: z.number().int().openapi({ example: 7 }),
  last_run_at: time("2026-11-28T03:00:00.002Z"),
  last_finished_at: time("2026-11-28T03:00:00.090Z"),
  last_success_at: time("2026-11-28T03:00:00.090Z"),
  last_error: z.string().nullable().openapi({ example: null }),
  consecutive_failures: z.number().int().openapi({ example: 0 }),
  next_run_at: time("2026-11-29T03:00:00.000Z"),
  updated_at: time("2026-11-20T10:00:00.000Z"),
  updated_by: z.string().nullable().openapi({ example: "migration" }),
  last_result: z.object({
    deleted: z.number().int(),
    dropped_partitions: z.number().int(),
    cutoff: z.string(),
    duration_ms: z.number(),
  }).nullable().openapi({
    example: {
      deleted: 120_400,
      dropped_partitions: 1,
      cutoff: "2026-11-21T03:00:00.002Z",
      duration_ms: 84.1,
    },
  }),
}).openapi("PrunerStatus");

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  content: { "application/json": { schema } },
  description,
});

const security = [{ ApiKey: [] }];
const authResponses = {
  401: problemResponse(`Missing or wrong ${API_KEY_HEADER}`, {
    "WWW-Authenticate": z.string().openapi({ example: "ApiKey" }),
  }),
  403: problemResponse("No API key configured: control disabled (set API_KEYS)"),
  503: unavailableResponse(),
};

// ---- handlers --------------------------------------------------------------------------

function toggleResult(row: JobControl) {
  return {
    job: row.job,
    enabled: row.enabled,
    updated_at: row.updated_at.toISOString(),
    updated_by: row.updated_by,
  };
}

/** Skips are answers, not errors: the switch is off, or another run holds the lock. */
function runStatus(run: JobRun<unknown>) {
  switch (run.outcome) {
    case "skipped_disabled":
      return { status: "skipped" as const, reason: "disabled" as const };
    case "skipped_locked":
      return { status: "skipped" as const, reason: "locked" as const };
    default:
      return { status: run.outcome };
  }
}

/** /control/* — background job switches and manual runs (API key). */
export function controlRoutes(app: OpenAPIHono, ctx: AppContext): void {
  app.openAPIRegistry.registerComponent("securitySchemes", "ApiKey", {
    type: "apiKey",
    in: "header",
    name: API_KEY_HEADER,
  });
  const auth = requireApiKey(ctx.config.apiKeys);
  const deps = { sql: ctx.sql, config: ctx.config, metrics: ctx.metrics };

  const toggleRoute = (job: JobName, path: string) =>
    createRoute({
      method: "post",
      path,
      operationId: `toggle${job === "ingestor" ? "Ingestor" : "Pruner"}`,
      tags: ["control"],
      summary: `Switch the ${job} on or off for every instance`,
      description: "`?enable=true|false` or a JSON body `{enabled}` sets the switch; with " +
        "neither it flips. The switch lives in the database, so all instances see it at once.",
      security,
      middleware: [auth] as const,
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

  const toggle = async (
    job: JobName,
    query: { enable?: boolean },
    body: { enabled?: boolean },
    by: string,
  ) => {
    const fromQuery = query.enable;
    if (fromQuery !== undefined && body.enabled !== undefined && fromQuery !== body.enabled) {
      throw new InvalidInputError(
        [{ field: "enable", message: "disagrees with the body's enabled" }],
        "malformed",
      );
    }
    const wanted = fromQuery ?? body.enabled;
    const row = wanted === undefined
      ? await flipJobEnabled(ctx.sql, job, by)
      : await setJobEnabled(ctx.sql, job, wanted, by);
    return toggleResult(row);
  };

  app.openapi(
    createRoute({
      method: "get",
      path: "/control/ingestor-status",
      operationId: "getIngestorStatus",
      tags: ["control"],
      summary: "The GitHub ingestor's switch, schedule, last runs and rate limit",
      responses: { 200: json(IngestorStatusSchema, "Status"), 503: unavailableResponse() },
    }),
    async (c) => {
      const row = await getJobControl(ctx.sql, "ingestor");
      return c.json(ingestorStatus(row, ctx.config, new Date()), 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/control/ingestor-health",
      operationId: "getIngestorHealth",
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
      },
    }),
    async (c) => {
      const row = await getJobControl(ctx.sql, "ingestor");
      const health = ingestorHealth(row, ctx.config, new Date());
      return health.running ? c.json(health, 200) : c.json(health, 503);
    },
  );

  for (const job of ["ingestor", "pruner"] as const) {
    app.openapi(toggleRoute(job, `/control/${job}-toggle`), async (c) => {
      const result = await toggle(
        job,
        c.req.valid("query"),
        c.req.valid("json"),
        c.get("apiCaller"),
      );
      return c.json(result, 200);
    });
  }

  app.openapi(
    createRoute({
      method: "post",
      path: "/control/ingestor-run",
      operationId: "runIngestor",
      tags: ["control"],
      summary: "Poll GitHub now",
      description: "One run of the ingestor now, under the same lock and switch as the cron " +
        "tick. Every source is polled even if its poll interval has not passed (a conditional " +
        "request costs no rate limit), but never while GitHub's rate limit is exhausted.",
      security,
      middleware: [auth] as const,
      responses: { 200: json(IngestorRunResult, "The run's outcome"), ...authResponses },
    }),
    async (c) => {
      const run = await runIngestor(deps, { force: true });
      const r = run.result;
      return c.json({
        ...runStatus(run),
        error: run.error,
        started_at: run.started_at,
        duration_ms: run.duration_ms,
        new: r?.new ?? 0,
        duplicates: r?.duplicates ?? 0,
        rate_limit_remaining: r?.rate_limit.remaining ?? null,
        polls: r?.polls ?? [],
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: "get",
      path: "/control/pruner-status",
      operationId: "getPrunerStatus",
      tags: ["control"],
      summary: "The pruner's switch, schedule, retention and last run",
      responses: { 200: json(PrunerStatusSchema, "Status"), 503: unavailableResponse() },
    }),
    async (c) => {
      const row = await getJobControl(ctx.sql, "pruner");
      return c.json(prunerStatus(row, ctx.config, new Date()), 200);
    },
  );

  app.openapi(
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
      security,
      middleware: [auth] as const,
      request: { query: PruneQuery },
      responses: {
        200: json(PruneResult, "The run's outcome"),
        400: problemResponse("Bad parameter"),
        ...authResponses,
      },
    }),
    async (c) => {
      const q = c.req.valid("query");
      const days = q.days ?? ctx.config.retentionDays;
      const dryRun = q.dry_run ?? false;
      const run = await runPruner(deps, { days, dryRun });
      const r = run.result;
      const now = new Date(run.started_at);
      const planned = pruneCutoffs(ctx.config, days, now);
      return c.json({
        ...runStatus(run),
        error: run.error,
        deleted: r?.deleted ?? 0,
        dropped_partitions: r?.dropped_partitions ?? 0,
        cutoff: r?.cutoff ?? planned.cutoff.toISOString(),
        rollup_cutoff: r?.rollup_cutoff ?? planned.rollupCutoff.toISOString(),
        dry_run: dryRun,
        duration_ms: run.duration_ms,
      }, 200);
    },
  );
}
