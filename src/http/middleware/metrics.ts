// Request counts and durations by route template (http_requests_total,
// http_request_duration_seconds).
import type { MiddlewareHandler } from "hono";
import type { AppContext } from "../context.ts";
import { routeTemplate } from "./access-log.ts";

// Anything else (WebDAV verbs, typos) shares one label value, so clients cannot mint series.
const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Counts and times every request by route template. */
export const httpMetrics = (ctx: AppContext): MiddlewareHandler =>
  async function httpMetrics(c, next) {
    const started = performance.now();
    let escaped = false;
    try {
      await next();
    } catch (err) {
      // Hono hands Error throws to onError before this point; anything else reaches the
      // server, which answers 500.
      escaped = true;
      throw err;
    } finally {
      const method = METHODS.has(c.req.method) ? c.req.method : "other";
      const route = routeTemplate(c);
      const status = escaped ? "500" : String(c.res.status);
      ctx.metrics.httpRequests.inc({ method, route, status });
      ctx.metrics.httpDuration.observe({ method, route }, (performance.now() - started) / 1000);
    }
  };
