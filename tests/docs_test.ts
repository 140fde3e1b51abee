// /docs and / over HTTP: what the page is made of and how it is served. The page itself, in a
// browser, is tests/docs_browser_test.ts.
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { buildApp } from "../src/app.ts";
import { wantsHtml } from "../src/http/accept.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const db = await preparedDatabase();
const app = buildApp({ sql: db.sql, config: testConfig() });

const BROWSER_ACCEPT =
  "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/** The same-origin assets the page links to, in order. */
function linkedAssets(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="(docs\/assets\/[^"]+)"/g)].map((m) => m[1]);
}

dbTest("[docs] /docs is an HTML page with no inline script and no outside asset", async () => {
  const res = await app.request("/docs");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
  const html = await res.text();
  // Every script is a file from our origin; no inline handlers, no outside URL.
  for (const m of html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)) {
    assert.match(m[1], /src="docs\/assets\//);
    assert.equal(m[2].trim(), "", "an inline script");
  }
  assert.doesNotMatch(html, /<style|\son\w+=|https?:\/\//);
  const assets = linkedAssets(html);
  assert.equal(assets.length, 3, assets.join());
});

dbTest("[docs] the CSP allows scripts and styles from our origin only", async () => {
  const csp = (await app.request("/docs")).headers.get("content-security-policy") ?? "";
  const directives = new Map(
    csp.split(";").map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v.join(" ")]),
  );
  assert.equal(directives.get("default-src"), "'none'");
  assert.equal(directives.get("script-src"), "'self'");
  assert.equal(directives.get("style-src"), "'self'");
  assert.equal(directives.get("connect-src"), "'self'");
  assert.equal(directives.get("frame-ancestors"), "'none'");
  assert.doesNotMatch(csp, /unsafe-|\*|https?:/);
});

dbTest("[docs] the page's assets are served, cacheable for ever, gzipped on request", async () => {
  const html = await (await app.request("/docs")).text();
  const types = ["text/css", "text/javascript", "text/javascript"];
  for (const [i, path] of linkedAssets(html).entries()) {
    const plain = await app.request(`/${path}`);
    assert.equal(plain.status, 200, path);
    assert.match(plain.headers.get("content-type") ?? "", new RegExp(`^${types[i]}`), path);
    assert.match(plain.headers.get("cache-control") ?? "", /immutable/);
    assert.equal(plain.headers.get("vary"), "Accept-Encoding");
    const body = new Uint8Array(await plain.arrayBuffer());
    assert.ok(body.length > 0);

    const zipped = await app.request(`/${path}`, { headers: { "accept-encoding": "gzip, br" } });
    assert.equal(zipped.headers.get("content-encoding"), "gzip");
    const z = new Uint8Array(await zipped.arrayBuffer());
    assert.deepEqual(new Uint8Array(gunzipSync(z)), body);

    const etag = plain.headers.get("etag")!;
    const again = await app.request(`/${path}`, { headers: { "if-none-match": etag } });
    assert.equal(again.status, 304);
  }
  // Swagger UI's bundle, the library's own code; our start-up script points it at openapi.json.
  const js = await (await app.request(`/${linkedAssets(html)[1]}`)).text();
  assert.match(js, /SwaggerUIBundle/);
  const init = await (await app.request(`/${linkedAssets(html)[2]}`)).text();
  assert.match(init, /openapi\.json/);
  assert.match(init, /validatorUrl: null/);
});

dbTest("[docs] an asset name that is not the page's is a 404 problem", async () => {
  const res = await app.request("/docs/assets/swagger-ui-bundle.js");
  assert.equal(res.status, 404);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
});

dbTest("[docs] revalidating the page with its ETag answers 304", async () => {
  const first = await app.request("/docs");
  const etag = first.headers.get("etag");
  assert.ok(etag);
  assert.equal(first.headers.get("cache-control"), "no-cache");
  const again = await app.request("/docs", { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
});

dbTest("[docs] GET / gives a browser the console", async () => {
  const res = await app.request("/", { headers: { accept: BROWSER_ACCEPT } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(res.headers.get("vary") ?? "", /\bAccept\b/);
  assert.match(await res.text(), /<title>Overview · Observian<\/title>/);
});

dbTest("[docs] GET / answers an API client with links, as JSON", async () => {
  for (const accept of [undefined, "*/*", "application/json", "text/html;q=0, */*"]) {
    const res = await app.request("/", { headers: accept ? { accept } : {} });
    assert.equal(res.status, 200, String(accept));
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const body = await res.json();
    assert.equal(body.service, "observian");
    assert.equal(body.links.docs, "/docs");
    assert.equal(body.links.openapi, "/openapi.json");
  }
  const head = await app.request("/", { method: "HEAD" });
  assert.equal(head.status, 200);
});

dbTest("[docs] GET / and the pages are not operations of the OpenAPI document", async () => {
  const doc = await (await app.request("/openapi.json")).json();
  assert.equal(doc.openapi, "3.1.0");
  for (const path of ["/", "/docs", "/docs/assets/{name}"]) {
    assert.equal(doc.paths[path], undefined, path);
  }
});

Deno.test("[docs] wantsHtml reads Accept as browsers send it", () => {
  assert.equal(wantsHtml(BROWSER_ACCEPT), true);
  assert.equal(wantsHtml("application/xhtml+xml"), true);
  assert.equal(wantsHtml("TEXT/HTML; q=0.5"), true);
  assert.equal(wantsHtml("text/html;q=0"), false);
  assert.equal(wantsHtml("*/*"), false);
  assert.equal(wantsHtml(undefined), false);
  assert.equal(wantsHtml("application/json"), false);
  assert.equal(wantsHtml("application/json, text/html;q=0.9"), false);
});

dbTest("[docs] teardown", async () => {
  await db.drop();
});
