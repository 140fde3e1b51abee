// src/http/middleware/: what runs around every route (access log, request metrics, deadline)
// or a protected one (API key); named factories, as Hono's own.
//
import type { Context, MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { logger } from "../../logging.ts";

/** The route template that served the request ("/services/:name"), never the raw path. */
export function routeTemplate(c: Context): string {
  const r = routePath(c, -1);
  return r === "*" || r === "/*" || r === "" ? "unmatched" : r;
}

export const accessLog = (): MiddlewareHandler => {
  const log = logger("http", "access");
  return async function accessLog(c, next) {
    const started = performance.now();
    await next();
    // At ingest rates, building a record nobody will see is measurable.
    if (!log.isEnabledFor("info")) return;
    log.info("{method} {route} {status} {durationMs}ms", {
      requestId: c.get("requestId"),
      method: c.req.method,
      route: routeTemplate(c),
      status: c.res.status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
    });
  };
};
