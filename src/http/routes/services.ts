import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppContext } from "../../app.ts";

/** GET /services, PUT /services/{name}. */
export function servicesRoutes(_app: OpenAPIHono, _ctx: AppContext): void {}
