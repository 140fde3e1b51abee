// Retries made safe: an event sent again under the same key (its event_id, or the request's
// Idempotency-Key and its index) is stored once, and the retry gets the first answer.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { pruneLogs } from "../src/jobs/pruner.ts";
import { createMetrics } from "../src/metrics/registry.ts";
import { compactAll, dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const db = await preparedDatabase();
const config = testConfig();
const metrics = createMetrics({ processMetrics: false });
const app = buildApp({ sql: db.sql, config, metrics });

const uniq = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`;

function post(body: unknown, headers: Record<string, string> = {}) {
  const text = JSON.stringify(body);
  return app.request("/logs", {
    method: "POST",
    // A declared length, as shippers send it: admission then counts only that.
    headers: { "content-type": "application/json", "content-length": `${text.length}`, ...headers },
    body: text,
  });
}

async function stored(service: string): Promise<number> {
  const [r] = await db.sql`select count(*)::int as n from log_events e
    join services s on s.id = e.service_id where s.name = ${service}`;
  return r.n;
}

async function rolledUp(service: string): Promise<number> {
  await compactAll(db.sql);
  const [r] = await db.sql`select coalesce(sum(count), 0)::int as n from log_rollup_1m r
    join services s on s.id = r.service_id where s.name = ${service}`;
  return r.n;
}

const event = (service: string, over: Record<string, unknown> = {}) => ({
  service_name: service,
  status_code: 200,
  latency_ms: 3,
  ...over,
});

dbTest("[idempotency] an event sent twice with its event_id is stored once", async () => {
  const svc = uniq("event-id");
  const first = await post(event(svc, { event_id: "evt-1" }));
  assert.equal(first.status, 201);
  const { id } = await first.json();
  const again = await post(event(svc, { event_id: "evt-1", latency_ms: 99 }));
  assert.equal(again.status, 201);
  assert.deepEqual(await again.json(), { id, status: "created" });
  assert.equal(await stored(svc), 1);
  assert.equal(await rolledUp(svc), 1, "rollups count it once");
  // Another key, or another service with the same key, is another event.
  assert.equal((await post(event(svc, { event_id: "evt-2" }))).status, 201);
  assert.equal((await post(event(`${svc}-b`, { event_id: "evt-1" }))).status, 201);
  assert.equal(await stored(svc), 2);
  assert.equal(await stored(`${svc}-b`), 1);
  assert.match(await metrics.registry.metrics(), /observian_events_deduplicated_total [1-9]/);
});

dbTest("[idempotency] a batch retried with its Idempotency-Key is stored once", async () => {
  const svc = uniq("request-key");
  const batch = [event(svc), event(svc, { status_code: 503 }), event(svc)];
  const key = { "idempotency-key": `retry-${crypto.randomUUID()}` };
  const first = await post(batch, key);
  assert.equal(first.status, 201);
  const answer = await first.json();
  const again = await post(batch, key);
  assert.equal(again.status, 201);
  assert.deepEqual(await again.json(), answer);
  assert.equal(await stored(svc), 3);
  // Without the key the same body is new events.
  assert.equal((await post(batch)).status, 201);
  assert.equal(await stored(svc), 6);
  // A longer retry under the same key stores only the events it adds.
  assert.equal((await post([...batch, event(svc)], key)).status, 201);
  assert.equal(await stored(svc), 7);
});

dbTest("[idempotency] one key twice in one batch: the first is stored", async () => {
  const svc = uniq("same-batch");
  const res = await post([
    event(svc, { event_id: "dup", latency_ms: 1 }),
    event(svc, { event_id: "dup", latency_ms: 2 }),
    event(svc, { latency_ms: 3 }),
  ]);
  assert.equal(res.status, 201);
  assert.deepEqual(await res.json(), { status: "created", accepted: 3 });
  const rows = await db.sql`select latency_ms from log_events e join services s
    on s.id = e.service_id where s.name = ${svc} order by latency_ms`;
  assert.deepEqual(rows.map((r) => r.latency_ms), [1, 3]);
});

dbTest(
  "[idempotency] concurrent copies of one event: one is stored, every answer names its id",
  async () => {
    const svc = uniq("race");
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => post(event(svc, { event_id: "same" }))),
    );
    const ids = new Set<number>();
    for (const res of answers) {
      assert.equal(res.status, 201, await res.clone().text());
      ids.add((await res.json()).id);
    }
    assert.equal(ids.size, 1, `answers named ids ${[...ids]}`);
    assert.equal(await stored(svc), 1);
    const [row] = await db.sql`select e.id from log_events e join services s
      on s.id = e.service_id where s.name = ${svc}`;
    assert.equal(Number(row.id), [...ids][0]);
  },
);

dbTest("[idempotency] bad keys are refused, naming the field, and nothing is stored", async () => {
  const svc = uniq("bad-key");
  const bad = await post(event(svc), { "idempotency-key": "has space" });
  assert.equal(bad.status, 400);
  assert.match(bad.headers.get("content-type") ?? "", /problem\+json/);
  assert.equal((await bad.json()).errors[0].field, "idempotency-key");
  const long = await post([event(svc), event(svc, { event_id: "x".repeat(129) })]);
  assert.equal(long.status, 422);
  assert.equal((await long.json()).errors[0].field, "[1].event_id");
  assert.equal(await stored(svc), 0);
});

dbTest("[idempotency] the pruner forgets keys older than INGEST_DEDUPE_HOURS", async () => {
  const svc = uniq("forget");
  assert.equal((await post(event(svc, { event_id: "old" }))).status, 201);
  await db.sql`update ingest_dedupe set created_at = now() - interval '25 hours'
    where key = 'e:old'`;
  const report = await pruneLogs(db.sql, config, null);
  assert.ok(report.dedupe_keys_deleted >= 1);
  assert.equal((await post(event(svc, { event_id: "old" }))).status, 201);
  assert.equal(await stored(svc), 2, "a key past the window is a new event");
});

dbTest("[idempotency] teardown", async () => {
  await db.drop();
});
