import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppContext } from "../../app.ts";

/** GET /logs/live-feed (JSON and Server-Sent Events). */
export function liveRoutes(_app: OpenAPIHono, _ctx: AppContext): void {}
