import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppContext } from "../../app.ts";

/** GET /docs — the API reference page, served without any outside assets. */
export function docsRoutes(_app: OpenAPIHono, _ctx: AppContext): void {}
