import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppContext } from "../../app.ts";

/** /control/* — background job switches and manual runs (API key). */
export function controlRoutes(_app: OpenAPIHono, _ctx: AppContext): void {}
