// The README's "Sending data from your tools" recipes: exactly what Vector's http sink and Fluent
// Bit's http output send with those settings (gzip NDJSON, their own timestamp formats, a writer
// key as a bearer token), to a real server; the rows stored are checked.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const db = await preparedDatabase();
const ENV_KEY = "env-admin-key-0123456789";
const app = buildApp({ sql: db.sql, config: testConfig({ API_KEYS: ENV_KEY }) });
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
const LOGS = `http://127.0.0.1:${server.addr.port}/logs`;

const created = await app.request("/keys", {
  method: "POST",
  headers: { "x-api-key": ENV_KEY, "content-type": "application/json" },
  body: JSON.stringify({ name: "shipper", role: "writer" }),
});
assert.equal(created.status, 201);
const WRITER = (await created.json()).token as string;

const uniq = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

async function gzip(text: string): Promise<Uint8Array<ArrayBuffer>> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** Times a minute ago and just after, in the shippers' own formats. */
const T = new Date(Date.now() - 60_000);
T.setUTCMilliseconds(123);
const isoMs = T.toISOString(); // 2026-12-02T14:21:23.123Z
// Vector: RFC 3339 with up to nine fraction digits; Fluent Bit iso8601: six, then Z.
const vectorTime = isoMs.replace(/\.123Z$/, ".123456789Z");
const fluentTime = isoMs.replace(/\.123Z$/, ".123456Z");

async function stored(service: string) {
  return await db.sql`
    select s.name, e."timestamp", e.status_code, e.event_type, e.latency_ms, e.attributes
    from log_events e join services s on s.id = e.service_id
    where s.name = ${service} order by e.status_code`;
}

dbTest("[recipes] Vector: http sink, json codec, newline_delimited, gzip, bearer", async () => {
  const svc = uniq("vector");
  // What the remap transform outputs, as Vector's json encoder and newline framing join them:
  // one object per line and no newline after the last (Vector trims it).
  const events = [
    {
      service_name: svc,
      status_code: 200,
      latency_ms: 0.012 * 1000,
      event_type: "GET /users/{id}",
      timestamp: vectorTime,
    },
    {
      service_name: svc,
      status_code: 502,
      latency_ms: 1.5 * 1000,
      event_type: "POST /orders",
      timestamp: vectorTime,
    },
  ];
  const res = await fetch(LOGS, {
    method: "POST",
    headers: {
      "content-type": "application/x-ndjson",
      "content-encoding": "gzip",
      authorization: `Bearer ${WRITER}`,
    },
    body: await gzip(events.map((e) => JSON.stringify(e)).join("\n")),
  });
  assert.equal(res.status, 201, await res.text());
  const rows = await stored(svc);
  assert.deepEqual(
    rows.map((r) => [r.status_code, r.event_type, r.latency_ms, r.timestamp.toISOString()]),
    [[200, "GET /users/{id}", 12, isoMs], [502, "POST /orders", 1500, isoMs]],
  );
});

dbTest("[recipes] Fluent Bit: http output, json_lines, gzip, iso8601 timestamp key", async () => {
  const svc = uniq("fluentbit");
  // json_lines: one record per line, each ended by a newline; the record's time under
  // Json_date_key; fields the modify filter left (here the raw line and the client address)
  // travel along and are dropped by Observian.
  const records = [
    {
      timestamp: fluentTime,
      service_name: svc,
      status_code: 404,
      latency_ms: 3.25,
      log: '10.0.0.7 - - "GET /missing HTTP/1.1" 404',
      remote_addr: "10.0.0.7",
    },
    { timestamp: fluentTime, service_name: svc, status_code: 200, latency_ms: 41 },
  ];
  const res = await fetch(LOGS, {
    method: "POST",
    headers: {
      "content-type": "application/x-ndjson",
      "content-encoding": "gzip",
      authorization: `Bearer ${WRITER}`,
    },
    body: await gzip(records.map((r) => JSON.stringify(r) + "\n").join("")),
  });
  assert.equal(res.status, 201, await res.text());
  const rows = await stored(svc);
  assert.deepEqual(
    rows.map((r) => [r.status_code, r.latency_ms, r.timestamp.toISOString(), r.attributes]),
    [[200, 41, isoMs, null], [404, 3.25, isoMs, null]],
  );
});

dbTest("[recipes] the shippers' requests without the key are refused, nothing stored", async () => {
  const svc = uniq("nokey");
  const res = await fetch(LOGS, {
    method: "POST",
    headers: { "content-type": "application/x-ndjson", "content-encoding": "gzip" },
    body: await gzip(JSON.stringify({ service_name: svc, status_code: 200, latency_ms: 1 })),
  });
  assert.equal(res.status, 401);
  await res.body?.cancel();
  assert.equal((await stored(svc)).length, 0);
});

globalThis.addEventListener("unload", () => void server.shutdown());
