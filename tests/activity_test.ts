// GET /logs/activity (the overview's sparklines): per service and whole step, the counts
// and errors the raw events give for the same steps, from compacted rollup rows and pending
// deltas alike, for every named window and an explicit range; a scoped reader gets its
// services only.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { createKey } from "../src/access/keys.ts";
import { MAX_ACTIVITY_POINTS } from "../src/query/activity.ts";
import { compactAll, dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { mulberry32 } from "../scripts/lib/random.ts";

const ADMIN_KEY = "activity-admin-key-0123456789";
const SEED = "pay-api:Payments,pay-web:Payments,ship-api:Shipping,ops-cron";
const env = { RETENTION_DAYS: "30", API_KEYS: ADMIN_KEY, SEED_SERVICES: SEED };
const db = await preparedDatabase(env);
const app = buildApp({ sql: db.sql, config: testConfig(env) });
const admin = { "x-api-key": ADMIN_KEY };

const MIN = 60_000, DAY = 86_400_000;
const SERVICES = ["pay-api", "pay-web", "ship-api", "ops-cron"];
const STATUSES = [200, 200, 201, 404, 500, 503];
const rand = mulberry32(15);
const events = (n: number, spanMs: number) =>
  Array.from({ length: n }, () => ({
    service_name: SERVICES[Math.floor(rand() * SERVICES.length)],
    status_code: STATUSES[Math.floor(rand() * STATUSES.length)],
    latency_ms: 10,
    // A second back at least: nothing in the future of the request that reads it.
    timestamp: new Date(Date.now() - 1000 - Math.floor(rand() * spanMs)).toISOString(),
  }));

interface Activity {
  start_time: string;
  end_time: string;
  step: string;
  services: { service_name: string; points: { start: string; count: number; errors: number }[] }[];
}

async function post(batch: unknown[]) {
  const res = await app.request("/logs", {
    method: "POST",
    headers: { ...admin, "content-type": "application/json" },
    body: JSON.stringify(batch),
  });
  assert.equal(res.status, 201, await res.text());
}

async function get(query: string, headers: Record<string, string> = admin) {
  const res = await app.request(`/logs/activity?${query}`, { headers });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) };
}

/** The same counts straight from log_events: per service and step bucket, non-zero ones. */
async function direct(a: Activity, services?: string[]) {
  const from = new Date(a.start_time), to = new Date(a.end_time);
  const stepMs = Date.parse(a.services[0]?.points[1]?.start ?? a.end_time) -
    Date.parse(a.services[0]?.points[0]?.start ?? a.start_time);
  const rows = await db.sql<{ name: string; start: Date; count: number; errors: number }[]>`
    select s.name,
           date_bin(${stepMs / 1000}::int * interval '1 second', e."timestamp", to_timestamp(0))
             as start,
           count(*)::int as count, (count(*) filter (where e.status_code >= 500))::int as errors
      from log_events e join services s on s.id = e.service_id
     where e."timestamp" >= ${from} and e."timestamp" < ${to}
       and (${services === undefined} or s.name in (
         select jsonb_array_elements_text(${JSON.stringify(services ?? [])}::text::jsonb)))
     group by 1, 2`;
  return new Map(rows.map((r) => [`${r.name} ${r.start.toISOString()}`, [r.count, r.errors]]));
}

function flatten(a: Activity) {
  const out = new Map<string, number[]>();
  for (const s of a.services) {
    for (const p of s.points) {
      if (p.count !== 0 || p.errors !== 0) {
        out.set(`${s.service_name} ${p.start}`, [p.count, p.errors]);
      }
    }
  }
  return out;
}

/** Whole steps, every one listed, aligned and contiguous. */
function assertShape(a: Activity, label: string) {
  const from = Date.parse(a.start_time), to = Date.parse(a.end_time);
  for (const s of a.services) {
    const stepMs = (to - from) / s.points.length;
    assert.ok(Number.isInteger(stepMs) && from % stepMs === 0, `${label}: aligned steps`);
    assert.ok(s.points.length <= MAX_ACTIVITY_POINTS, `${label}: ${s.points.length} points`);
    s.points.forEach((p, i) =>
      assert.equal(Date.parse(p.start), from + i * stepMs, `${label}: point ${i}`)
    );
    assert.ok(s.points.some((p) => p.count > 0), `${label}: ${s.service_name} has events`);
  }
  const names = a.services.map((s) => s.service_name);
  assert.deepEqual(names, [...names].sort(), `${label}: by name`);
}

dbTest("[activity] per service and step, the raw events' counts, for every window", async () => {
  // Compacted rows across the month, then pending deltas on top (also in the last minutes).
  await post(events(6_000, 29 * DAY));
  await post(events(1_000, 20 * MIN));
  await compactAll(db.sql);
  await post(events(3_000, 8 * DAY));
  await post(events(500, 14 * MIN));
  const expectSteps = { "15m": "1m", "1h": "2m", "24h": "1h", "7d": "3h", "30d": "1d" };
  for (const [window, step] of Object.entries(expectSteps)) {
    const { status, body } = await get(`window=${window}`);
    assert.equal(status, 200, JSON.stringify(body));
    const a = body as Activity;
    assert.equal(a.step, step, window);
    assertShape(a, window);
    assert.ok(a.services.length > 0, `${window}: some services`);
    assert.ok(a.services[0].points.length >= 15, `${window}: at least 15 points`);
    assert.deepEqual(flatten(a), await direct(a), `${window}: counts per service and step`);
  }
  // An explicit range and a service filter.
  const end = new Date(Date.now() - 2 * DAY - 17 * MIN).toISOString();
  const start = new Date(Date.now() - 5 * DAY + 3 * MIN).toISOString();
  const q = `start_time=${start}&end_time=${end}&service_name=pay-api&service_name=ship-api`;
  const { status, body } = await get(q);
  assert.equal(status, 200, JSON.stringify(body));
  assert.ok(Date.parse(body.start_time) <= Date.parse(start), "widened to whole steps");
  assert.ok(Date.parse(body.end_time) >= Date.parse(end), "widened to whole steps");
  assert.deepEqual(body.services.map((s: { service_name: string }) => s.service_name), [
    "pay-api",
    "ship-api",
  ]);
  assertShape(body, "range");
  assert.deepEqual(flatten(body), await direct(body, ["pay-api", "ship-api"]), "range counts");
});

dbTest("[activity] a scoped reader gets its services only; outside them is 403", async () => {
  const { token } = await createKey(db.sql, {
    name: "pay-reader",
    role: "reader",
    teams: ["Payments"],
  }, { actor: "test" });
  const reader = { authorization: `Bearer ${token}` };
  const all = (await get("window=30d")).body as Activity;
  const scoped = await get("window=30d", reader);
  assert.equal(scoped.status, 200);
  assert.deepEqual(
    scoped.body.services,
    all.services.filter((s) => s.service_name.startsWith("pay-")),
  );
  assert.ok(scoped.body.services.length === 2, "both Payments services have events");
  assert.equal((await get("window=30d&service_name=ship-api", reader)).status, 403);
  // No key at all.
  assert.equal((await get("window=30d", {})).status, 401);
});

dbTest("[activity] bad parameters are a 400; no parameter is the last 24 hours", async () => {
  assert.equal((await get("window=2h")).status, 400);
  assert.equal((await get("window=1h&start_time=2026-01-01T00:00:00Z")).status, 400);
  assert.equal((await get("step=1m")).status, 400);
  const { status, body } = await get("");
  assert.equal(status, 200);
  assert.equal(body.step, "1h", JSON.stringify(body));
});

dbTest("[activity] teardown", async () => {
  await db.drop();
});
