import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { createDb } from "../src/db/connect.ts";
import { freePort } from "../src/db/embedded.ts";
import { wantsEventStream } from "../src/http/accept.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const db = await preparedDatabase();
const config = testConfig();
const app = buildApp({ sql: db.sql, config });

dbTest("[http] /health answers without touching the database", async () => {
  // An app whose database does not exist still reports alive.
  const dead = createDb(`postgres://nobody:x@127.0.0.1:${freePort()}/none`, { max: 1 });
  try {
    const res = await buildApp({ sql: dead, config }).request("/health");
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.status, "ok");
    assert.match(body.version, /^\d+\.\d+\.\d+/);
    assert.equal(typeof body.uptime_s, "number");
  } finally {
    await dead.end();
  }
});

dbTest("[http] /health/ready is 200 with a database round-trip", async () => {
  const res = await app.request("/health/ready");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.status, "ready");
  assert.equal(body.database.ok, true);
});

dbTest("[http] /health/ready is 503 with the reason when the database is unreachable", async () => {
  const dead = createDb(`postgres://nobody:x@127.0.0.1:${freePort()}/none`, { max: 1 });
  try {
    const res = await buildApp({ sql: dead, config }).request("/health/ready");
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.status, "unavailable");
    assert.equal(body.database.ok, false);
    assert.match(body.database.error, /ECONNREFUSED|refused|connect/i);
  } finally {
    await dead.end();
  }
});

dbTest("[http] every response carries X-Request-Id, the caller's when it is plain", async () => {
  const mine = await app.request("/health", { headers: { "X-Request-Id": "abc-123" } });
  assert.equal(mine.headers.get("x-request-id"), "abc-123");
  const generated = await app.request("/health");
  assert.match(generated.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
  const hostile = await app.request("/health", {
    headers: { "X-Request-Id": "x\u0001injected log line" },
  });
  assert.notEqual(hostile.headers.get("x-request-id"), "x\u0001injected log line");
  const missing = await app.request("/nowhere", { headers: { "X-Request-Id": "r-404" } });
  assert.equal(missing.headers.get("x-request-id"), "r-404");
  const dotted = await app.request("/health", { headers: { "X-Request-Id": "svc.a:1@host" } });
  assert.equal(dotted.headers.get("x-request-id"), "svc.a:1@host");
  const long = await app.request("/health", { headers: { "X-Request-Id": "a".repeat(129) } });
  assert.match(long.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
});

dbTest("[http] unknown routes are 404 problem+json", async () => {
  const res = await app.request("/no/such/route");
  assert.equal(res.status, 404);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const body = await res.json();
  assert.deepEqual(Object.keys(body).sort(), ["detail", "instance", "status", "title", "type"]);
  assert.equal(body.status, 404);
  assert.equal(body.instance, "/no/such/route");
});

dbTest("[http] a known path with another method is 405 with Allow", async () => {
  const res = await app.request("/health", { method: "DELETE" });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  assert.equal(res.headers.get("allow"), "GET, HEAD");
  assert.equal((await res.json()).status, 405);
});

dbTest("[http] an unexpected exception is a 500 problem without internals", async () => {
  const broken = buildApp({ sql: db.sql, config });
  broken.get("/boom", () => {
    throw new Error("secret internal detail at /srv/db.ts:12");
  });
  const res = await broken.request("/boom", { headers: { "X-Request-Id": "req-500" } });
  assert.equal(res.status, 500);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const text = await res.text();
  assert.ok(!text.includes("secret"), text);
  assert.equal(JSON.parse(text).request_id, "req-500");
  assert.equal(res.headers.get("x-request-id"), "req-500");
});

dbTest("[http] the OpenAPI document describes the health endpoints", async () => {
  const res = await app.request("/openapi.json");
  assert.equal(res.status, 200);
  const doc = await res.json();
  assert.equal(doc.openapi, "3.1.0");
  assert.ok(doc.paths["/health"].get);
  assert.ok(doc.paths["/health/ready"].get.responses["503"]);
});

dbTest("[http] a database outage is a 503 problem, not a 500", async () => {
  const dead = createDb(`postgres://nobody:x@127.0.0.1:${freePort()}/none`, { max: 1 });
  try {
    const res = await buildApp({ sql: dead, config }).request("/logs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ service_name: "a", status_code: 200, latency_ms: 1 }),
    });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    assert.equal(res.headers.get("retry-after"), "5");
  } finally {
    await dead.end();
  }
});

dbTest("[http] teardown", async () => {
  await db.drop();
});

Deno.test("[http] wantsEventStream: a stream only when the client prefers it to JSON", () => {
  assert.equal(wantsEventStream(undefined), false);
  assert.equal(wantsEventStream("text/event-stream"), true);
  assert.equal(wantsEventStream("TEXT/Event-Stream"), true);
  assert.equal(wantsEventStream("application/json"), false);
  assert.equal(wantsEventStream("*/*"), false);
  assert.equal(wantsEventStream("text/event-stream;q=0"), false);
  assert.equal(wantsEventStream("text/event-stream, application/json"), true);
  assert.equal(wantsEventStream("text/event-stream;q=0.5, application/json"), false);
  assert.equal(wantsEventStream("application/json;q=0.5, text/event-stream"), true);
  assert.equal(wantsEventStream("application/json; q=0.9, text/event-stream; q=bad"), false);
});
