// The summary's cache of latency buckets (src/query/sketch-cache.ts): rows read before are not
// read again, and a row written since (ingest, compaction, a rebuild) is.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { SketchCache } from "../src/query/sketch-cache.ts";
import { summarize } from "../src/query/summary/summarize.ts";
import type { SummaryQueryInput } from "../src/query/summary/window.ts";
import { compactAll, dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const db = await preparedDatabase({ RETENTION_DAYS: "30" });
const app = buildApp({ sql: db.sql, config: testConfig({ RETENTION_DAYS: "30" }) });

const MIN = 60_000, HOUR = 3_600_000, DAY = 86_400_000;
const now = Date.now();
const today = Math.floor(now / DAY) * DAY;
// Whole days, hours and minutes, and raw edges: every tier and both tables of the series.
const WINDOW = { start: today - 4 * DAY + 3 * HOUR + 17 * MIN + 23_456, end: now - 5_000 };
const q = {
  start_time: new Date(WINDOW.start).toISOString(),
  end_time: new Date(WINDOW.end).toISOString(),
} as SummaryQueryInput;

async function post(events: Record<string, unknown>[]): Promise<void> {
  const res = await app.request("/logs", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  assert.equal(res.status, 201, await res.text());
  await compactAll(db.sql);
}

const at = (t: number, service: string, latency: number) => ({
  service_name: service,
  status_code: 200,
  latency_ms: latency,
  timestamp: new Date(t).toISOString(),
});

const events: Record<string, unknown>[] = [];
for (let i = 0; i < 600; i++) {
  const t = WINDOW.start + Math.floor((WINDOW.end - WINDOW.start) * i / 600);
  events.push(at(t, i % 3 === 0 ? "cache-a" : "cache-b", 5 + (i % 17) * 3));
}
await post(events);

dbTest(
  "[sketch-cache] a cached summary equals an uncached one, before and after writes",
  async () => {
    const cache = new SketchCache();
    const first = await summarize(db.sql, q, { now, sketchCache: cache });
    assert.ok(cache.size > 0, "rows read are kept");
    const held = cache.snapshot();
    // Nothing written since: the second summary reads no row again (the cache is unchanged).
    assert.deepEqual(await summarize(db.sql, q, { now, sketchCache: cache }), first);
    assert.equal(cache.snapshot(), held, "no row read in full the second time");
    assert.deepEqual(await summarize(db.sql, q, { now }), first);

    // Slow events into rows the cache holds (a whole day, an hour inside the window, one of
    // its edges): their new versions must be read, or p95 and the series would not move.
    await post([
      ...Array.from({ length: 40 }, (_, i) => at(today - 2 * DAY + 5 * HOUR + i, "cache-a", 4000)),
      ...Array.from({ length: 40 }, (_, i) => at(today - 3 * DAY + 9 * HOUR + i, "cache-b", 6000)),
      ...Array.from({ length: 5 }, (_, i) => at(WINDOW.start + 30 * MIN + i, "cache-b", 9000)),
    ]);
    const cached = await summarize(db.sql, q, { now, sketchCache: cache });
    const fresh = await summarize(db.sql, q, { now });
    assert.deepEqual(cached, fresh);
    assert.notDeepEqual(cached.latency, first.latency);
    assert.notDeepEqual(
      cached.series.map((p) => p.p95_latency_ms),
      first.series.map((p) => p.p95_latency_ms),
    );
    // A service filter reads the per-service rows for the series too.
    const filtered = { ...q, service_name: ["cache-b"] } as SummaryQueryInput;
    assert.deepEqual(
      await summarize(db.sql, filtered, { now, sketchCache: cache }),
      await summarize(db.sql, filtered, { now }),
    );
  },
);

dbTest("[sketch-cache] rows rebuilt from log_events are read again", async () => {
  const cache = new SketchCache();
  const before = await summarize(db.sql, q, { now, sketchCache: cache });
  // Events lost from the rollups only (as by a restore): a rebuild brings the rows back in
  // line with log_events, with new row versions.
  await db.sql`
    delete from log_events
    where service_id = (select id from services where name = 'cache-a')
      and "timestamp" >= ${new Date(today - 2 * DAY)} and "timestamp" < ${new Date(today - DAY)}`;
  await db.sql`select observian_rollup_rebuild(${new Date(today - 2 * DAY)}, ${new Date(
    today - DAY,
  )})`;
  const cached = await summarize(db.sql, q, { now, sketchCache: cache });
  assert.deepEqual(cached, await summarize(db.sql, q, { now }));
  assert.ok(cached.total_logs < before.total_logs);
  assert.notDeepEqual(cached.latency, before.latency);
});

dbTest("[sketch-cache] teardown", () => db.drop());
