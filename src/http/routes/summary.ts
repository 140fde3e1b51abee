import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppContext } from "../../app.ts";

/** GET /logs/summary. */
export function summaryRoutes(_app: OpenAPIHono, _ctx: AppContext): void {}
