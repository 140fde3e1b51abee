import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppContext } from "../context.ts";
import { buildDocsPage } from "../docs-page.ts";
import { COMMON_HEADERS, serveAssets } from "../static-assets.ts";

/**
 * GET /docs — the API reference page and its assets, served without any outside assets; and
 * GET / — where a person opening the service lands.
 *
 * None of these are in the OpenAPI document: they are pages about the API, not part of it.
 */
export function docsRoutes(app: OpenAPIHono, ctx: AppContext): void {
  const page = buildDocsPage();
  const pageHeaders = {
    ...COMMON_HEADERS,
    "content-security-policy": page.csp,
    // Revalidate each time: the page changes with each deploy, and a 304 costs nothing.
    "cache-control": "no-cache",
    etag: page.etag,
  };
  app.get("/docs", (c) => {
    if (c.req.header("if-none-match") === page.etag) return c.body(null, 304, pageHeaders);
    return c.html(page.html, 200, pageHeaders);
  });

  serveAssets(app, "/docs/assets/", page.assets);

  // A browser gets the console (registered before this); an API client where things are.
  app.get("/", (c) => {
    c.header("vary", "Accept");
    c.header("cache-control", "no-cache");
    return c.json({
      service: "observian",
      version: ctx.version,
      links: { console: "/", docs: "/docs", openapi: "/openapi.json", health: "/health" },
    });
  });
}
