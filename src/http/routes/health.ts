import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { needs } from "../middleware/auth.ts";
import type { Db } from "../../db/connect.ts";
import { isConnectionLost } from "../../db/sqlstate.ts";
import type { Metrics } from "../../metrics/registry.ts";

/** Longest the readiness check waits for the database. */
const PING_TIMEOUT_MS = 2000;

const Health = z.object({
  status: z.literal("ok"),
  version: z.string().openapi({ example: "0.1.0" }),
  uptime_s: z.number().openapi({ example: 3600.5 }),
}).openapi("Health");

const Ready = z.object({
  status: z.enum(["ready", "unavailable"]),
  database: z.object({
    ok: z.boolean(),
    latency_ms: z.number().optional(),
    error: z.string().optional(),
    embedded: z.object({ running: z.boolean() }).optional().openapi({
      description: "The PostgreSQL this process started (no DATABASE_URL); absent otherwise",
    }),
  }),
}).openapi("Readiness");

const liveness = createRoute({
  method: "get",
  path: "/health",
  operationId: "getHealth",
  tags: ["health"],
  ...needs("public"),
  summary: "Liveness: the process answers (no database work)",
  responses: { 200: { content: { "application/json": { schema: Health } }, description: "Alive" } },
});

const readiness = createRoute({
  method: "get",
  path: "/health/ready",
  operationId: "getReadiness",
  tags: ["health"],
  ...needs("public"),
  summary: "Readiness: a database round-trip within a short timeout",
  description: `503 while the database does not answer within ${PING_TIMEOUT_MS} ms (or the ` +
    "embedded PostgreSQL is down); 200 again on the first check after it is back.",
  responses: {
    200: { content: { "application/json": { schema: Ready } }, description: "Ready" },
    503: {
      content: { "application/json": { schema: Ready } },
      description: "Database unreachable",
    },
  },
});

export function healthRoutes(
  app: OpenAPIHono,
  deps: {
    /** The check's own handle, or the pool when DB_POOL_MAX is too small for one. */
    health: Db;
    sql: Db;
    embeddedUp?: () => boolean;
    metrics: Metrics;
    version: string;
    startedAt: number;
  },
): void {
  app.openapi(liveness, (c) =>
    c.json({
      status: "ok" as const,
      version: deps.version,
      uptime_s: Math.round((performance.now() - deps.startedAt) / 100) / 10,
    }, 200));

  app.openapi(readiness, async (c) => {
    const embedded = deps.embeddedUp ? { running: deps.embeddedUp() } : undefined;
    const started = performance.now();
    const result = embedded?.running === false
      ? "the embedded PostgreSQL is not running"
      : await pingDb(deps.health, PING_TIMEOUT_MS, deps.health !== deps.sql);
    const latency_ms = Math.round((performance.now() - started) * 100) / 100;
    deps.metrics.dbUp.set(result === true ? 1 : 0);
    if (result === true) {
      return c.json(
        { status: "ready" as const, database: { ok: true, latency_ms, embedded } },
        200,
      );
    }
    return c.json(
      { status: "unavailable" as const, database: { ok: false, error: result, embedded } },
      503,
    );
  });
}

/**
 * true, or why the database did not answer within `timeoutMs`. When the handle is the check's
 * own, one that timed out or lost its connection is replaced: the next check starts clean.
 */
async function pingDb(sql: Db, timeoutMs: number, own: boolean): Promise<true | string> {
  const generation = sql.generation;
  const query = sql`select 1`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    const result = await Promise.race([query.then(() => true as const), timeout]);
    if (result !== true && own) sql.replace("the readiness check timed out", generation);
    return result;
  } catch (err) {
    if (isConnectionLost(err) && own) {
      sql.replace("the readiness check lost its connection", generation);
    }
    return err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
  }
}
