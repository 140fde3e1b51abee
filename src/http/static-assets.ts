// Files the server ships to browsers (the API reference page, the console): named by a hash of
// their content so they can be cached for ever, gzipped once and kept, revalidated by ETag.
import { createHash } from "node:crypto";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { acceptQ } from "./accept.ts";

export interface Asset {
  /** The name pages link to, with a hash of the content in it. */
  name: string;
  type: string;
  body: string;
  etag: string;
}

/** Headers every page and asset carries. */
export const COMMON_HEADERS = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
} as const;

export const hash = (text: string): string => createHash("sha256").update(text).digest("base64url");

/** `file` as a fingerprinted asset: `app.js` → `app.<hash>.js`. */
export function fingerprint(file: string, type: string, body: string): Asset {
  const h = hash(body);
  const dot = file.lastIndexOf(".");
  return {
    name: `${file.slice(0, dot)}.${h.slice(0, 12)}${file.slice(dot)}`,
    type,
    body,
    etag: `"${h.slice(0, 22)}"`,
  };
}

export const etagOf = (body: string): string => `"${hash(body).slice(0, 22)}"`;

/** GET `${prefix}:name` for the assets: immutable caching, gzip when asked, 304 by ETag. */
export function serveAssets(
  app: OpenAPIHono,
  prefix: string,
  assets: ReadonlyMap<string, Asset>,
): void {
  // Compressed on first request and kept.
  const gzipped = new Map<string, Promise<Uint8Array<ArrayBuffer>>>();
  const gzipOf = (a: Asset) => {
    let z = gzipped.get(a.name);
    if (!z) {
      const stream = new Blob([a.body]).stream().pipeThrough(new CompressionStream("gzip"));
      z = new Response(stream).arrayBuffer().then((b) => new Uint8Array(b));
      gzipped.set(a.name, z);
    }
    return z;
  };
  app.get(`${prefix}:name`, async (c) => {
    const a = assets.get(c.req.param("name") ?? "");
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
}

export function acceptsGzip(c: Context): boolean {
  return acceptQ(c.req.header("accept-encoding"), ["gzip"]) > 0;
}

/** An HTML page: revalidated each time by ETag (a 304 costs nothing), gzipped when asked. */
export async function htmlPage(
  c: Context,
  html: string,
  headers: Record<string, string>,
): Promise<Response> {
  const etag = etagOf(html);
  const all: Record<string, string> = {
    ...COMMON_HEADERS,
    ...headers,
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-cache",
    etag,
    vary: "Accept, Accept-Encoding, Cookie",
  };
  if (c.req.header("if-none-match") === etag) return c.body(null, 304, all);
  if (acceptsGzip(c)) {
    const stream = new Blob([html]).stream().pipeThrough(new CompressionStream("gzip"));
    return c.body(new Uint8Array(await new Response(stream).arrayBuffer()), 200, {
      ...all,
      "content-encoding": "gzip",
    });
  }
  return c.body(html, 200, all);
}
