import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppContext } from "../context.ts";
import { acceptQ, wantsHtml } from "../accept.ts";
import { buildDocsPage, type DocsAsset } from "../docs-page.ts";

const COMMON_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

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

  // Compressed once, on first request, and kept: the bundle is 1.7 MB, about 0.5 MB gzipped.
  const gzipped = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  const gzipOf = (a: DocsAsset) => {
    let z = gzipped.get(a.name);
    if (!z) {
      const stream = new Blob([a.body]).stream().pipeThrough(new CompressionStream("gzip"));
      z = new Response(stream).arrayBuffer().then((b) => new Uint8Array(b));
      gzipped.set(a.name, z);
    }
    return z;
  };
  app.get("/docs/assets/:name", async (c) => {
    const a = page.assets.get(c.req.param("name"));
    if (!a) return c.notFound();
    const headers: Record<string, string> = {
      ...COMMON_HEADERS,
      "content-type": a.type,
      // The name holds a hash of the content: a new version is a new name.
      "cache-control": "public, max-age=31536000, immutable",
      etag: a.etag,
      vary: "Accept-Encoding",
    };
    if (c.req.header("if-none-match") === a.etag) return c.body(null, 304, headers);
    if (acceptsGzip(c)) {
      return c.body(await gzipOf(a), 200, { ...headers, "content-encoding": "gzip" });
    }
    return c.body(a.body, 200, headers);
  });

  // A browser lands on the reference; an API client gets where things are, as JSON.
  app.get("/", (c) => {
    c.header("vary", "Accept");
    c.header("cache-control", "no-cache");
    // Relative, so a path prefix added by a proxy is kept.
    if (wantsHtml(c.req.header("accept"))) return c.redirect("docs", 302);
    return c.json({
      service: "observian",
      version: ctx.version,
      links: { docs: "/docs", openapi: "/openapi.json", health: "/health" },
    });
  });
}

function acceptsGzip(c: Context): boolean {
  return acceptQ(c.req.header("accept-encoding"), ["gzip"]) > 0;
}
