import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import type { Sql } from "../db/connect.ts";
import { problemResponse } from "./openapi.ts";

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
  }),
}).openapi("Readiness");

const liveness = createRoute({
  method: "get",
  path: "/health",
  tags: ["health"],
  summary: "Liveness: the process answers (no database work)",
  responses: { 200: { content: { "application/json": { schema: Health } }, description: "Alive" } },
});

const readiness = createRoute({
  method: "get",
  path: "/health/ready",
  tags: ["health"],
  summary: "Readiness: a database round-trip within a short timeout",
  responses: {
    200: { content: { "application/json": { schema: Ready } }, description: "Ready" },
    503: {
      content: { "application/json": { schema: Ready } },
      description: "Database unreachable",
    },
    500: problemResponse("Unexpected error"),
  },
});

export function healthRoutes(
  app: OpenAPIHono,
  deps: { sql: Sql; version: string; startedAt: number },
): void {
  app.openapi(liveness, (c) =>
    c.json({
      status: "ok" as const,
      version: deps.version,
      uptime_s: Math.round((performance.now() - deps.startedAt) / 100) / 10,
    }, 200));

  app.openapi(readiness, async (c) => {
    const started = performance.now();
    const result = await pingDb(deps.sql, 2000);
    const latency_ms = Math.round((performance.now() - started) * 100) / 100;
    if (result === true) {
      return c.json({ status: "ready" as const, database: { ok: true, latency_ms } }, 200);
    }
    return c.json({ status: "unavailable" as const, database: { ok: false, error: result } }, 503);
  });
}

/** true, or why the database did not answer within `timeoutMs`. */
async function pingDb(sql: Sql, timeoutMs: number): Promise<true | string> {
  const query = sql`select 1`;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
  });
  try {
    return await Promise.race([query.then(() => true as const), timeout]);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    clearTimeout(timer);
    query.cancel?.();
  }
}
