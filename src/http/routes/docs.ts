import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppContext } from "../../app.ts";
import { buildDocsPage } from "../docs-page.ts";

/** GET /docs — the API reference page, served without any outside assets. */
export function docsRoutes(app: OpenAPIHono, _ctx: AppContext): void {
  const page = buildDocsPage();
  const headers = {
    "content-security-policy": page.csp,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    // Revalidate each time: the page changes with each deploy, and a 304 costs nothing.
    "cache-control": "no-cache",
    etag: page.etag,
  };
  // Not in the OpenAPI document: it is a page about the API, not part of it.
  app.get("/docs", (c) => {
    if (c.req.header("if-none-match") === page.etag) return c.body(null, 304, headers);
    return c.html(page.html, 200, headers);
  });
}
