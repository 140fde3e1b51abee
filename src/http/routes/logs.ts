import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppContext } from "../../app.ts";

/** GET /logs — filtered, paginated query. */
export function logsRoutes(_app: OpenAPIHono, _ctx: AppContext): void {}
