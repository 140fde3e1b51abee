// Builds the HTTP application from its dependencies; does no I/O of its own.
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { compress } from "hono/compress";
import { requestId } from "hono/request-id";
import type { Config } from "./config.ts";
import type { Db } from "./db/connect.ts";
import { InvalidInputError } from "./errors.ts";
import { accessLog } from "./http/middleware/access-log.ts";
import { Access } from "./http/middleware/auth.ts";
import { RateLimits } from "./access/rate-limit.ts";
import { principalLabel } from "./access/principal.ts";
import type { AppContext } from "./http/context.ts";
import { requestDeadline } from "./http/middleware/deadline.ts";
import { healthRoutes } from "./http/routes/health.ts";
import { serveOpenApi } from "./http/openapi.ts";
import { notFound, onError } from "./http/problem.ts";
import { auditRoutes } from "./http/routes/audit.ts";
import { controlRoutes } from "./http/routes/control.ts";
import { keysRoutes } from "./http/routes/keys.ts";
import { authRoutes } from "./http/routes/auth.ts";
import { usersRoutes } from "./http/routes/users.ts";
import { webhookRoutes } from "./http/routes/webhooks.ts";
import { markersRoutes } from "./http/routes/markers.ts";
import { alertStateRoutes } from "./http/routes/alert-state.ts";
import { activityRoutes } from "./http/routes/activity.ts";
import { docsRoutes } from "./http/routes/docs.ts";
import { consoleRoutes } from "./http/routes/console.tsx";
import { ingestRoutes } from "./http/routes/ingest.ts";
import { otlpRoutes } from "./http/routes/otlp.ts";
import { liveRoutes } from "./http/routes/live.ts";
import { logsRoutes } from "./http/routes/logs.ts";
import { metricsRoutes } from "./http/routes/metrics.ts";
import { httpMetrics } from "./http/middleware/metrics.ts";
import { servicesRoutes } from "./http/routes/services.ts";
import { summaryRoutes } from "./http/routes/summary.ts";
import { alertRulesRoutes } from "./http/routes/alert-rules.ts";
import { alertChannelsRoutes } from "./http/routes/alert-channels.ts";
import { silencesRoutes } from "./http/routes/silences.ts";
import { slosRoutes } from "./http/routes/slos.ts";
import { IngestAdmission } from "./ingest/admission.ts";
import { EventWriter } from "./ingest/writer.ts";
import { createMetrics, type Metrics } from "./metrics/registry.ts";
import { LiveHub } from "./live/hub.ts";
import { VERSION } from "./version.ts";

export interface AppDeps {
  sql: Db;
  /** The readiness check's own connection; the pool when absent. */
  health?: Db;
  /** Whether the embedded PostgreSQL runs; absent with an external database. */
  embeddedUp?: () => boolean;
  config: Config;
  /** performance.now() at process start, for uptime. */
  startedAt?: number;
  /** Shared with background jobs that write events; one is made when absent. */
  writer?: EventWriter;
  /** The process registry; a fresh one (without process metrics) when absent. */
  metrics?: Metrics;
  /** The live feed's shared listener; main closes it before draining requests. */
  liveHub?: LiveHub;
  /** The rate limits' clock in milliseconds (performance.now); tests move their own. */
  rateLimitClock?: () => number;
}

export function writerFor(
  sql: Db,
  config: Config,
  metrics: Metrics,
  lane?: Db,
): EventWriter {
  return new EventWriter(sql, {
    lane,
    retentionDays: config.retentionDays,
    commitTimeoutMs: config.ingestCommitTimeoutMs,
    maxEventTypes: config.rollupMaxEventTypes,
    onFlush: ({ events, durationMs, ok, duplicates }) => {
      if (!ok) return;
      // Counted at the commit: a write answered 503 past its deadline may still commit.
      metrics.eventsIngested.inc({ source: "api" }, events - duplicates);
      metrics.ingestBatchEvents.observe(events);
      metrics.ingestCommitDuration.observe(durationMs / 1000);
      if (duplicates) metrics.eventsDeduplicated.inc(duplicates);
    },
    onTimeout: () => metrics.ingestCommitTimeouts.inc(),
    onCompactionFailure: () => metrics.rollupCompactionFailures.inc(),
  });
}

const REQUEST_ID_HEADER = "X-Request-Id";
// A caller's id is kept only when it is short and plain, so it cannot forge log lines.
// hono/request-id keeps ids of letters, digits, _ - and =; this keeps those with . : @ too.
const PLAIN_ID = /^[A-Za-z0-9._:@\-]{1,128}$/;

function callerIdOrNew(c: Context): string {
  const given = c.req.header(REQUEST_ID_HEADER);
  return given && PLAIN_ID.test(given) ? given : crypto.randomUUID();
}

export function buildApp(deps: AppDeps): OpenAPIHono {
  const metrics = deps.metrics ?? createMetrics({ processMetrics: false });
  const ctx: AppContext = {
    sql: deps.sql,
    health: deps.health ?? deps.sql,
    embeddedUp: deps.embeddedUp,
    config: deps.config,
    metrics,
    writer: deps.writer ?? writerFor(deps.sql, deps.config, metrics),
    admission: new IngestAdmission(deps.config.ingestMaxInflightBytes),
    liveHub: deps.liveHub ?? new LiveHub(deps.sql),
    access: new Access(
      deps.sql,
      deps.config,
      !!(deps.config.signIn.github || deps.config.signIn.oidc),
      new RateLimits({
        now: deps.rateLimitClock,
        onRefused: (p) => metrics.rateLimited.inc({ key_prefix: p.prefix ?? principalLabel(p) }),
      }),
    ),
    version: VERSION,
    startedAt: deps.startedAt ?? 0,
  };
  ctx.access.refusals.onDropped = (reason) => metrics.auditRefusalsDropped.inc({ reason });
  const app = new OpenAPIHono({
    // zod validation failures become one 400 problem naming every bad field.
    defaultHook: (result) => {
      if (!result.success) {
        throw new InvalidInputError(
          result.error.issues.flatMap((i) =>
            // A misspelt parameter is named rather than silently ignored.
            i.code === "unrecognized_keys"
              ? i.keys.map((k) => ({
                field: [...i.path, k].join("."),
                message: "is not a parameter of this operation",
              }))
              : [{ field: i.path.join(".") || "(request)", message: i.message }]
          ),
          "malformed",
        );
      }
    },
  });
  app.use(
    "*",
    requestId({ headerName: REQUEST_ID_HEADER, limitLength: 128, generator: callerIdOrNew }),
  );
  app.use("*", accessLog());
  app.use("*", httpMetrics(ctx));
  app.use("*", requestDeadline(ctx));
  // Answers to reads, gzipped for clients that ask (the console, curl --compressed): never
  // POST /logs' small answers, whose compression would cost more than it saves, nor event
  // streams (the middleware leaves text/event-stream alone), nor pages and assets (already).
  const gzip = compress({ encoding: "gzip" });
  app.use("*", (c, next) => c.req.method === "GET" ? gzip(c, next) : next());
  app.onError(onError);
  app.notFound(notFound(() => app.routes));

  // First: for a browser it answers `/` and `/services/{name}` before the API does.
  consoleRoutes(app, ctx);
  healthRoutes(app, ctx);
  ingestRoutes(app, ctx);
  webhookRoutes(app, ctx);
  otlpRoutes(app, ctx);
  markersRoutes(app, ctx);
  alertStateRoutes(app, ctx);
  logsRoutes(app, ctx);
  summaryRoutes(app, ctx);
  activityRoutes(app, ctx);
  liveRoutes(app, ctx);
  servicesRoutes(app, ctx);
  controlRoutes(app, ctx);
  keysRoutes(app, ctx);
  auditRoutes(app, ctx);
  authRoutes(app, ctx);
  usersRoutes(app, ctx);
  alertRulesRoutes(app, ctx);
  slosRoutes(app, ctx);
  alertChannelsRoutes(app, ctx);
  silencesRoutes(app, ctx);
  metricsRoutes(app, ctx);
  docsRoutes(app, ctx);

  serveOpenApi(app, {
    title: "Observian",
    version: VERSION,
    description: "Log ingestion, query and monitoring for microservices.",
  });
  return app;
}
