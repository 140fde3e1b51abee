// Latency percentiles against PostgreSQL's exact percentile_cont (issue 11, defect 9), and
// summaries and compaction over stored data no input check would let in today (defect 1).
import assert from "node:assert/strict";
import { buildApp, writerFor } from "../src/app.ts";
import { loadMigrations, migrate } from "../src/db/migrate.ts";
import { ensurePartitionWindow } from "../src/db/partitions.ts";
import { backfillLatencySketches, compactRollups } from "../src/ingest/rollup.ts";
import { createMetrics } from "../src/metrics/registry.ts";
import type { Summary } from "../src/query/summary/summarize.ts";
import { compactAll, dbTest, emptyDatabase, preparedDatabase, testConfig } from "./helpers/db.ts";
import { mulberry32, normal as gaussian } from "../scripts/lib/random.ts";

const db = await preparedDatabase({ RETENTION_DAYS: "30" });
const config = testConfig({ RETENTION_DAYS: "30" });
const appMetrics = createMetrics({ processMetrics: false });
// Held so that a test can stop its compactions (idle() also cancels the trailing one).
const appWriter = writerFor(db.sql, config, appMetrics);
const app = buildApp({ sql: db.sql, config, metrics: appMetrics, writer: appWriter });

const MIN = 60_000, HOUR = 3_600_000, DAY = 86_400_000;
const now = Date.now();
const today = Math.floor(now / DAY) * DAY;
// Crosses whole days, hours, minutes and partial minutes at both ends.
const WINDOW = { start: today - 3 * DAY + 7 * HOUR + 13 * MIN + 4_321, end: now - 17_777 };

const rand = mulberry32(7);
const normal = () => gaussian(rand);

/** Latency distributions, one service each. */
const DISTRIBUTIONS: Record<string, { n: number; draw: () => number }> = {
  "acc-single": { n: 1, draw: () => 12 },
  "acc-two": { n: 2, draw: () => (rand() < 0.5 ? 10 : 1000) },
  "acc-lognormal": { n: 3000, draw: () => Math.exp(Math.log(80) + 0.7 * normal()) },
  // Pareto, alpha 1.1: a few events thousands of times the median.
  "acc-heavy-tail": { n: 3000, draw: () => 5 / (1 - rand()) ** (1 / 1.1) },
  "acc-submillisecond": { n: 2000, draw: () => 0.002 + rand() * rand() * 0.9 },
  "acc-bimodal": { n: 2000, draw: () => (rand() < 0.8 ? 2 + rand() : 900 + 200 * rand()) },
  "acc-with-zeros": { n: 500, draw: () => (rand() < 0.3 ? 0 : 1 + 40 * rand()) },
};

// Spread over the window, plus a few just outside it (which must not count).
const events: Record<string, unknown>[] = [];
for (const [service_name, d] of Object.entries(DISTRIBUTIONS)) {
  for (let i = 0; i < d.n; i++) {
    const t = d.n === 1
      ? WINDOW.start + 5 * HOUR
      : WINDOW.start + rand() * (WINDOW.end - WINDOW.start);
    events.push({
      service_name,
      status_code: 200,
      latency_ms: Math.round(d.draw() * 1e6) / 1e6,
      timestamp: new Date(Math.floor(t)).toISOString(),
    });
  }
  for (const t of [WINDOW.start - 1, WINDOW.end, WINDOW.end + 5_000]) {
    events.push({
      service_name,
      status_code: 200,
      latency_ms: 77_777,
      timestamp: new Date(t).toISOString(),
    });
  }
}
for (let i = 0; i < events.length; i += 5000) {
  const res = await app.request("/logs", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(events.slice(i, i + 5000)),
  });
  if (res.status !== 201) throw new Error(`seeding failed: ${await res.text()}`);
}

async function summary(qs: string): Promise<Summary> {
  const res = await app.request(`/logs/summary?${qs}`);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

const near = (v: number | null, exact: number, label: string) =>
  assert.ok(
    v !== null && Math.abs(v - exact) <= Math.abs(exact) * 0.01,
    `${label}: ${v} vs exact ${exact} (${((Math.abs(v! - exact) / exact) * 100).toFixed(3)}%)`,
  );

dbTest(
  "[accuracy] percentiles are within 1% of percentile_cont and within [min, max]",
  async () => {
    const range = `start_time=${new Date(WINDOW.start).toISOString()}` +
      `&end_time=${new Date(WINDOW.end).toISOString()}`;
    for (const name of Object.keys(DISTRIBUTIONS)) {
      const [exact] = await db.sql<{ p: number[]; min: number; max: number; n: number }[]>`
      select percentile_cont(array[0.5, 0.95, 0.99]) within group (order by e.latency_ms) as p,
        min(e.latency_ms), max(e.latency_ms), count(*)::int as n
      from log_events e join services s on s.id = e.service_id
      where s.name = ${name} and e."timestamp" >= ${new Date(WINDOW.start)}
        and e."timestamp" < ${new Date(WINDOW.end)}`;
      const s = await summary(`${range}&service_name=${name}`);
      assert.equal(s.total_logs, exact.n, name);
      assert.equal(s.latency.min, exact.min, `${name}: min`);
      assert.equal(s.latency.max, exact.max, `${name}: max`);
      const got = [s.latency.p50, s.latency.p95, s.latency.p99];
      got.forEach((v, i) => {
        near(v, exact.p[i], `${name} p${[50, 95, 99][i]}`);
        assert.ok(v! >= exact.min && v! <= exact.max, `${name}: ${v} within [min, max]`);
      });
      assert.equal(s.services[0].p95_latency_ms, s.latency.p95, name);
      for (const p of s.series) {
        if (p.p95_latency_ms === null) continue;
        assert.ok(p.p95_latency_ms >= exact.min && p.p95_latency_ms <= exact.max, `${name} series`);
      }
    }
    // The case: one 12 ms event reported p50 17.5 and p99 24.85.
    const one = await summary(`${range}&service_name=acc-single`);
    assert.deepEqual(
      [one.latency.min, one.latency.p50, one.latency.p95, one.latency.p99, one.latency.max],
      [12, 12, 12, 12, 12],
    );
    // All services together, read with the named windows too.
    for (const w of ["24h", "7d"]) {
      const s = await summary(`window=${w}`);
      const [exact] = await db.sql<{ p: number[] }[]>`
      select percentile_cont(array[0.5, 0.95, 0.99]) within group (order by latency_ms) as p
      from log_events where "timestamp" >= ${new Date(s.start_time)}
        and "timestamp" < ${new Date(s.end_time)}`;
      near(s.latency.p50, exact.p[0], `${w} p50`);
      near(s.latency.p95, exact.p[1], `${w} p95`);
      near(s.latency.p99, exact.p[2], `${w} p99`);
    }
  },
);

dbTest("[accuracy] latencies stored before the input bounds do not break summaries", async () => {
  // Rows that ingest accepted before latency_ms had an upper bound: two of them overflowed
  // every sum, so every summary answered 500 and compaction failed forever.
  const [svc] = await db.sql<{ id: number }[]>`
    insert into services (name) values ('acc-huge') returning id`;
  const minute = Math.floor((now - 40 * MIN) / MIN) * MIN;
  const at = (ms: number) => new Date(ms);
  await db.sql`
    insert into log_events (service_id, "timestamp", status_code, latency_ms)
    select ${svc.id}, ${at(minute)}::timestamptz + (i * interval '1 second'), 200, 1.7e308
    from generate_series(1, 4) i`;
  // The same events as deltas, the way ingest wrote them, and as compacted rows.
  for (let i = 0; i < 4; i++) {
    await db.sql`insert into log_rollup_pending (service_id, bucket, status_code, count, errors,
        latency_sum, lat_min, lat_max, lat_idx, lat_cnt)
      values (${svc.id}, ${at(minute)}, 200, 1, 0, 1.7e308, 1.7e308, 1.7e308, '{32767}', '{1}')`;
  }
  for (
    const [table, b] of [["log_rollup_1m_store", minute - 10 * MIN], [
      "log_rollup_1m_store",
      minute - 11 * MIN,
    ]] as const
  ) {
    await db.sql`insert into ${db.sql(table)} (service_id, bucket, count, errors, latency_sum,
        lat_min, lat_max, lat_idx, lat_cnt, status_counts)
      values (${svc.id}, ${
      at(b)
    }, 1, 0, 1.7e308, 1.7e308, 1.7e308, '{32767}', '{1}', '{"200": 1}')`;
  }
  for (const w of ["15m", "1h", "24h", "7d", "30d"]) {
    const s = await summary(`window=${w}`);
    if (w !== "15m") assert.ok(s.latency.max! >= 1.7e308, `${w}: max ${s.latency.max}`);
  }
  await compactAll(db.sql);
  const [p] = await db.sql`select count(*)::int as n from log_rollup_pending`;
  assert.equal(p.n, 0, "every delta compacted");
  const s = await summary("window=1h&service_name=acc-huge");
  // (The injected minute rows have no hour or day rows behind them, so how many of them a
  // window counts depends on how it is cut.)
  assert.ok(s.total_logs >= 4, `${s.total_logs}`);
  assert.equal(s.latency.p50, 1.7e308);
  // Put the rollups back as the events say.
  await db.sql`delete from log_events where service_id = ${svc.id}`;
  await db.sql`select observian_rollup_rebuild(${at(minute - DAY)}, ${at(minute + DAY)})`;
});

dbTest(
  "[accuracy] a delta compaction cannot fold is set aside, counted, and the rest folded",
  async () => {
    // The app's writer compacts after its writes (and once more later): quiet it, so that this
    // test's compaction is the one that meets the bad delta.
    assert.ok(await appWriter.idle(30_000));
    const metrics = createMetrics({ processMetrics: false });
    const writer = writerFor(db.sql, config, metrics);
    const [svc] = await db.sql<{ id: number }[]>`
    insert into services (name) values ('acc-poison') returning id`;
    const at = new Date(Math.floor((now - 5 * MIN) / MIN) * MIN);
    // A count map no release writes: compaction cannot read it.
    await db.sql`insert into log_rollup_pending (service_id, bucket, count, errors, latency_sum,
      status_counts, event_counts)
    values (${svc.id}, ${at}, 1, 0, 1, '{"200": "many"}', '{}')`;
    const errors: unknown[] = [];
    // Straight, then through the writer (which logs and counts).
    await db.sql`insert into log_rollup_pending (service_id, bucket, status_code, count, errors,
      latency_sum, lat_min, lat_max, lat_idx, lat_cnt)
    values (${svc.id}, ${at}, 200, 2, 0, 10, 5, 5, '{82}', '{2}')`;
    while (await compactRollups(db.sql, { onDataError: (e) => errors.push(e) }) < 0) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(errors.length >= 1, "the failure is reported");
    const [rejected] = await db.sql`select count(*)::int as n, min(error) as error
    from log_rollup_rejected where service_id = ${svc.id}`;
    assert.equal(rejected.n, 1);
    assert.match(rejected.error, /bigint|invalid/);
    const [left] = await db.sql`select count(*)::int as n from log_rollup_pending`;
    assert.equal(left.n, 0, "the good deltas are folded");
    const [row] = await db.sql`select count::int from log_rollup_1m_store
    where service_id = ${svc.id} and bucket = ${at}`;
    assert.equal(row.count, 2);

    await db.sql`insert into log_rollup_pending (service_id, bucket, count, errors, latency_sum,
      status_counts, event_counts)
    values (${svc.id}, ${at}, 1, 0, 1, '{"200": "many"}', '{}')`;
    await writer.write([{
      serviceName: "acc-poison",
      statusCode: 200,
      latencyMs: 5,
      timestamp: at,
      eventType: null,
      message: null,
      attributes: null,
    }]);
    assert.ok(await writer.idle(30_000));
    const text = await metrics.registry.metrics();
    const failures = Number(text.match(/^observian_rollup_compaction_failures_total (\S+)/m)?.[1]);
    assert.ok(failures >= 1, `failures counted: ${failures}`);
    const [again] = await db.sql`select count(*)::int as n from log_rollup_rejected
    where service_id = ${svc.id}`;
    assert.equal(again.n, 2);
  },
);

dbTest(
  "[accuracy] migration 012 rebuilds the latency buckets of the days still in log_events",
  async () => {
    const old = await emptyDatabase();
    const dir = await Deno.makeTempDir();
    try {
      const all = await loadMigrations();
      for (const m of all.filter((m) => m.version < 12)) {
        await Deno.writeTextFile(
          `${dir}/${String(m.version).padStart(3, "0")}_${m.name}.sql`,
          m.sql,
        );
      }
      const sql = old.sql;
      await migrate(sql, { dir: new URL(`file://${dir}/`) });
      await ensurePartitionWindow(sql, { retentionDays: 30 });
      const [svc] = await sql<
        { id: number }[]
      >`insert into services (name) values ('m') returning id`;
      const kept = new Date(today - 2 * DAY), pruned = new Date(today - 4 * DAY);
      // Two days of events rolled up the old way; then one day's events go, its rollups stay
      // (ROLLUP_RETENTION_DAYS above RETENTION_DAYS).
      for (const day of [kept, pruned]) {
        await sql`insert into log_events (service_id, "timestamp", status_code, latency_ms)
        select ${svc.id}, ${day}::timestamptz + i * interval '1 minute', 200, i * 1.5
        from generate_series(1, 600) i`;
        await sql`select observian_rollup_rebuild(${day}, ${new Date(day.getTime() + DAY)})`;
      }
      await sql`delete from log_events where "timestamp" < ${new Date(pruned.getTime() + DAY)}`;
      await migrate(sql);
      assert.equal(await backfillLatencySketches(sql), 2);
      const rows = await sql<{ bucket: Date; count: number; n: number; lo: number; hi: number }[]>`
      select bucket, count::int, (select coalesce(sum(x), 0) from unnest(lat_cnt) x)::int as n,
        lat_min as lo, lat_max as hi
      from log_rollup_1d_store order by bucket`;
      assert.deepEqual(rows.map((r) => [r.bucket.getTime(), r.count, r.n, r.lo, r.hi]), [
        [pruned.getTime(), 600, 0, null, null],
        [kept.getTime(), 600, 600, 1.5, 900],
      ]);
      const [global] = await sql`select count(*)::int as n from log_latency_1h_store`;
      assert.equal(global.n, 11, "the all-services hours of the rebuilt day (00:01 to 10:00)");
      const [left] = await sql`select count(*)::int as n from rollup_sketch_backfill`;
      assert.equal(left.n, 0);
      assert.equal(await backfillLatencySketches(sql), 0, "done once");
    } finally {
      await Deno.remove(dir, { recursive: true });
      await old.drop();
    }
  },
);

dbTest("[accuracy] teardown", () => db.drop());
