import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { buildApp } from "../src/app.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const db = await preparedDatabase();
const app = buildApp({ sql: db.sql, config: testConfig() });

// ---- A fake DOM: just the calls the page's script makes (DOM_SUBSET in docs-page.ts). Any
// HTML-parsing sink throws, so a render that reached for one fails the test.

class FakeNode {
  parentNode: FakeElement | null = null;
  childNodes: FakeNode[] = [];
  constructor(readonly nodeName: string, public data = "") {}
  get textContent(): string {
    return this.nodeName === "#text"
      ? this.data
      : this.childNodes.map((c) => c.textContent).join("");
  }
  set textContent(v: string) {
    if (this.nodeName === "#text") {
      this.data = String(v);
      return;
    }
    for (const c of this.childNodes) c.parentNode = null;
    this.childNodes = [];
    if (v !== "") this.appendChild(new FakeNode("#text", String(v)));
  }
  appendChild(n: FakeNode): FakeNode {
    if (!(n instanceof FakeNode)) throw new TypeError("appendChild: not a node");
    if (n.parentNode) n.parentNode.childNodes = n.parentNode.childNodes.filter((c) => c !== n);
    n.parentNode = this as unknown as FakeElement;
    this.childNodes.push(n);
    return n;
  }
  replaceChildren(...nodes: FakeNode[]): void {
    this.textContent = "";
    for (const n of nodes) this.appendChild(n);
  }
}

type Listener = (ev: Record<string, unknown>) => void;

class FakeElement extends FakeNode {
  attributes = new Map<string, string>();
  listeners = new Map<string, Listener[]>();
  className = "";
  hidden = false;
  disabled = false;
  open = false;
  #value: string | undefined;
  constructor(tag: string) {
    super(tag.toUpperCase());
  }
  get value(): string {
    if (this.#value !== undefined) return this.#value;
    // Like a <select>: the first option until something is chosen.
    if (this.nodeName === "SELECT") {
      const first = this.childNodes.find((c) => c.nodeName === "OPTION") as FakeElement;
      return first ? first.value : "";
    }
    return "";
  }
  set value(v: string) {
    this.#value = String(v);
  }
  setAttribute(k: string, v: string) {
    if (/^on/i.test(k)) throw new Error(`event-handler attribute ${k} set`);
    this.attributes.set(k, String(v));
  }
  getAttribute(k: string) {
    return this.attributes.get(k) ?? null;
  }
  addEventListener(type: string, fn: Listener) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  fire(type: string) {
    for (const fn of this.listeners.get(type) ?? []) fn({ target: this, preventDefault() {} });
  }
  get innerHTML(): string {
    throw new Error("innerHTML read");
  }
  set innerHTML(_v: string) {
    throw new Error("innerHTML written");
  }
  set outerHTML(_v: string) {
    throw new Error("outerHTML written");
  }
  insertAdjacentHTML() {
    throw new Error("insertAdjacentHTML used");
  }
  *descendants(): Generator<FakeElement> {
    for (const c of this.childNodes) {
      if (c instanceof FakeElement) {
        yield c;
        yield* c.descendants();
      }
    }
  }
  find(pred: (e: FakeElement) => boolean): FakeElement | undefined {
    for (const e of this.descendants()) if (pred(e)) return e;
  }
  findAll(pred: (e: FakeElement) => boolean): FakeElement[] {
    return [...this.descendants()].filter(pred);
  }
}

interface Rendered {
  app: FakeElement;
  nav: FakeElement;
  status: FakeElement;
  title: FakeElement;
  created: Set<string>;
  requests: { url: string; init: RequestInit }[];
}

/** Runs the page's script with `fetcher` answering its requests; resolves once it rendered. */
async function renderPage(
  fetcher: (url: string, init?: RequestInit) => Promise<Response>,
): Promise<Rendered> {
  const html = await (await app.request("/docs")).text();
  const script = inlineBlocks(html, "script")[0];
  const created = new Set<string>();
  const ids: Record<string, FakeElement> = {};
  for (const [id, tag] of [["app", "main"], ["nav", "nav"], ["status", "p"], ["title", "h1"]]) {
    ids[id] = new FakeElement(tag);
  }
  ids.app.setAttribute("data-state", "loading");
  const document = {
    getElementById: (id: string) => ids[id] ?? null,
    createElement: (tag: string) => {
      created.add(tag.toLowerCase());
      return new FakeElement(tag);
    },
    createTextNode: (text: string) => new FakeNode("#text", text),
    write: () => {
      throw new Error("document.write used");
    },
  };
  const location = { href: "http://127.0.0.1:8000/docs", pathname: "/docs" };
  const requests: Rendered["requests"] = [];
  const fetchShim = (url: string, init: RequestInit = {}) => {
    const abs = new URL(url, location.href).toString();
    requests.push({ url: abs, init });
    return fetcher(abs, init);
  };
  new Function("document", "location", "fetch", script)(document, location, fetchShim);
  await waitFor(() => ids.app.getAttribute("data-state") !== "loading", "the page to render");
  return { app: ids.app, nav: ids.nav, status: ids.status, title: ids.title, created, requests };
}

async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function inlineBlocks(html: string, tag: "script" | "style"): string[] {
  return [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]);
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("base64");
const appFetch = (url: string, init?: RequestInit) => Promise.resolve(app.request(url, init));
const cardOf = (r: Rendered, id: string) => r.app.find((e) => e.getAttribute("id") === id);

dbTest("[docs] /docs is a self-contained HTML page", async () => {
  const res = await app.request("/docs");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/html; charset=utf-8$/i);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  const html = await res.text();
  // Nothing loaded from elsewhere: no absolute or protocol-relative URL anywhere in the page.
  assert.doesNotMatch(html, /https?:\/\//i);
  assert.doesNotMatch(html, /(src|href)\s*=\s*["']?\/\//i);
  for (const tag of html.match(/<script[^>]*>/g) ?? []) assert.equal(tag, "<script>");
  for (const tag of html.match(/<link[^>]*>/g) ?? []) assert.match(tag, /href="data:/);
  const [style] = inlineBlocks(html, "style");
  assert.doesNotMatch(style, /@import|@font-face|url\(/i);
  assert.equal(inlineBlocks(html, "script").length, 1);
});

dbTest(
  "[docs] the CSP allows exactly the inline script and style, and fetches to self",
  async () => {
    const res = await app.request("/docs");
    const csp = res.headers.get("content-security-policy") ?? "";
    const html = await res.text();
    const directives = Object.fromEntries(
      csp.split(";").map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]),
    );
    assert.deepEqual(directives["default-src"], ["'none'"]);
    assert.deepEqual(directives["connect-src"], ["'self'"]);
    assert.deepEqual(directives["script-src"], [
      `'sha256-${sha256(inlineBlocks(html, "script")[0])}'`,
    ]);
    assert.deepEqual(directives["style-src"], [
      `'sha256-${sha256(inlineBlocks(html, "style")[0])}'`,
    ]);
    assert.deepEqual(directives["frame-ancestors"], ["'none'"]);
    assert.deepEqual(directives["require-trusted-types-for"], ["'script'"]);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
  },
);

dbTest("[docs] the page script parses", async () => {
  const html = await (await app.request("/docs")).text();
  const [script] = inlineBlocks(html, "script");
  assert.doesNotThrow(() => new Function(script));
});

dbTest("[docs] revalidation with the ETag answers 304", async () => {
  const first = await app.request("/docs");
  const etag = first.headers.get("etag");
  assert.ok(etag);
  await first.body?.cancel();
  const again = await app.request("/docs", { headers: { "if-none-match": etag } });
  assert.equal(again.status, 304);
  assert.ok(again.headers.get("content-security-policy"));
});

dbTest("[docs] /openapi.json is OpenAPI 3.1.0", async () => {
  const res = await app.request("/openapi.json");
  assert.equal(res.status, 200);
  assert.equal((await res.json()).openapi, "3.1.0");
});

dbTest("[docs] the script renders every operation of the real document", async () => {
  const doc = await (await app.request("/openapi.json")).json();
  const r = await renderPage(appFetch);
  assert.equal(r.app.getAttribute("data-state"), "ready", r.status.textContent);
  let count = 0;
  for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
    for (const method of ["get", "put", "post", "delete", "patch"]) {
      const op = item[method] as { summary?: string } | undefined;
      if (!op) continue;
      count++;
      const id = `op-${method}-${
        path.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "")
      }`;
      const card = cardOf(r, id);
      assert.ok(card, `no section for ${method.toUpperCase()} ${path}`);
      assert.ok(card.textContent.includes(path));
      if (op.summary) assert.ok(card.textContent.includes(op.summary), `${path}: summary missing`);
      assert.ok(r.nav.textContent.includes(path), `${path} missing from the navigation`);
    }
  }
  assert.ok(count >= 3, `only ${count} operations`);
  assert.match(r.status.textContent, new RegExp(`^${count} operations`));
  const ingest = cardOf(r, "op-post-logs")!;
  for (const text of ["service_name", "LogEventInput", "application/x-ndjson", "201", "422"]) {
    assert.ok(ingest.textContent.includes(text), `POST /logs lacks ${text}`);
  }
  // The ingest form starts with an example body that the API accepts.
  const body = ingest.find((e) => e.nodeName === "TEXTAREA")!;
  const sent = await app.request("/logs", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: body.value.replace(/"timestamp":\s*"[^"]*",?/, ""),
  });
  assert.equal(sent.status, 201, await sent.text());
});

dbTest("[docs] try it sends the request and shows status, headers and body", async () => {
  const r = await renderPage(appFetch);
  const card = cardOf(r, "op-get-health")!;
  const form = card.find((e) => e.nodeName === "FORM")!;
  form.fire("submit");
  await waitFor(() => /complete after/.test(card.textContent), "the response");
  const text = card.textContent;
  assert.match(text, /200 .*ms to headers/);
  assert.match(text, /x-request-id: /);
  assert.match(text, /"status": "ok"/);
  assert.match(text, /curl -i -X GET \\\n\s*'http:\/\/127\.0\.0\.1:8000\/health'/);
});

const HOSTILE = "<img src=x onerror=alert(1)>";
const hostileSpec = {
  openapi: "3.1.0",
  info: { title: "<script>alert('t')</script>", version: "1", description: "a & b <b>bold</b>" },
  components: {
    securitySchemes: { ApiKey: { type: "apiKey", in: "header", name: "X-API-Key" } },
    parameters: {
      Limit: {
        name: "limit",
        in: "query",
        schema: { type: "integer", minimum: 1, maximum: 1000 },
        description: "page size",
      },
    },
    schemas: {
      Thing: {
        type: "object",
        required: ["id"],
        properties: {
          id: { type: "string", description: HOSTILE, example: "t-1" },
          children: { type: "array", items: { $ref: "#/components/schemas/Thing" } },
        },
      },
    },
  },
  paths: {
    "/things/{id}": {
      get: {
        tags: ["things"],
        summary: HOSTILE,
        description: "<i>desc</i>",
        security: [{ ApiKey: [] }],
        parameters: [
          {
            name: "id",
            in: "path",
            required: true,
            schema: { type: "string" },
            description: "<u>the id</u>",
            example: `x"><svg onload=alert(1)>`,
          },
          { $ref: "#/components/parameters/Limit" },
          { name: "kind", in: "query", schema: { type: "string", enum: ["a", "<b>"] } },
        ],
        responses: {
          200: {
            description: "the thing",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Thing" } } },
          },
        },
      },
    },
  },
};

dbTest("[docs] API strings are rendered as text, never as markup", async () => {
  const r = await renderPage((url) =>
    Promise.resolve(
      url.endsWith("/openapi.json")
        ? Response.json(hostileSpec)
        : new Response("{}", { headers: { "content-type": "application/json" } }),
    )
  );
  assert.equal(r.app.getAttribute("data-state"), "ready", r.status.textContent);
  for (const tag of ["img", "script", "svg", "b", "i", "u", "iframe"]) {
    assert.ok(!r.created.has(tag), `created a <${tag}> element`);
  }
  assert.equal(r.title.textContent, "<script>alert('t')</script> 1");
  const card = cardOf(r, "op-get-things-id")!;
  const text = card.textContent;
  for (const s of [HOSTILE, "<i>desc</i>", "<u>the id</u>", `x"><svg onload=alert(1)>`]) {
    assert.ok(text.includes(s), `missing as text: ${s}`);
  }
  // The parameter $ref, the recursive schema and the security scheme are all resolved.
  assert.ok(text.includes("page size") && text.includes(">= 1; <= 1000"));
  assert.ok(text.includes("Thing (see above)"));
  assert.ok(text.includes("ApiKey (API key in header “X-API-Key”)"));
  assert.ok(r.app.textContent.includes("a & b <b>bold</b>"));
});

dbTest("[docs] try it fills path and query parameters and sends the API key", async () => {
  const r = await renderPage((url) =>
    Promise.resolve(
      url.endsWith("/openapi.json") ? Response.json(hostileSpec) : Response.json({ ok: true }),
    )
  );
  const key = r.app.find((e) => e.getAttribute("aria-label") === "ApiKey")!;
  key.value = "s3cret";
  key.fire("input");
  const card = cardOf(r, "op-get-things-id")!;
  const form = card.find((e) => e.nodeName === "FORM")!;
  const input = (name: string) => form.find((e) => e.getAttribute("aria-label") === name)!;
  form.fire("submit");
  assert.match(card.textContent, /Missing required: id/);
  input("id").value = "a/b c";
  input("limit").value = "5";
  form.fire("submit");
  await waitFor(() => /complete after/.test(card.textContent), "the response");
  const last = r.requests[r.requests.length - 1];
  assert.equal(last.url, "http://127.0.0.1:8000/things/a%2Fb%20c?limit=5");
  assert.equal(last.init.method, "GET");
  assert.equal((last.init.headers as Record<string, string>)["X-API-Key"], "s3cret");
  assert.match(card.textContent, /"ok": true/);
});

dbTest("[docs] teardown", async () => {
  await db.drop();
});
