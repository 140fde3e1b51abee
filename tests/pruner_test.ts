// Retention: whole old partitions dropped, the boundary partition trimmed, rollups kept equal
// to the rows, upcoming partitions created, dry runs harmless.
import assert from "node:assert/strict";
import { ensurePartitions, listPartitionDays, utcDay } from "../src/db/partitions.ts";
import { pruneLogs, runPruner } from "../src/jobs/pruner.ts";
import { createMetrics } from "../src/metrics/registry.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const db = await preparedDatabase({ RETENTION_DAYS: "7" });
const config = testConfig({ RETENTION_DAYS: "7" });

const DAY = 86_400_000;
/** Noon UTC today: the cutoff (now − 7 days) falls mid-day, so there is a boundary partition. */
const TODAY = utcDay(new Date());
const NOW = new Date(`${TODAY}T12:00:00Z`);
const day = (offset: number) => utcDay(new Date(NOW.getTime() + offset * DAY));
const at = (offset: number, time: string) => new Date(`${day(offset)}T${time}Z`);

/** [day offset, time, count]; every third row a 500. */
const ROWS: [number, string, number][] = [
  [-10, "05:00:00", 3], // whole partitions: dropped
  [-9, "23:59:59", 2],
  [-7, "06:00:00", 4], // boundary day, before the cutoff (12:00): deleted
  [-7, "11:59:59", 1],
  [-7, "12:00:00", 2], // boundary day, at or after the cutoff: kept
  [-7, "18:30:00", 2],
  [-3, "10:00:00", 5], // recent: kept
  [0, "01:00:00", 3],
];
const OLD = 3 + 2 + 4 + 1;
const TOTAL = ROWS.reduce((n, r) => n + r[2], 0);

/** Old data the ingest path would refuse: partitions made by hand, rows inserted with SQL. */
async function seed() {
  await db
    .sql`truncate log_events, log_rollup_pending, log_rollup_1m_store, log_rollup_1h_store, log_rollup_1d_store,
    github_seen_events, markers`;
  await ensurePartitions(db.sql, day(-12), day(7));
  const services = await db.sql<{ id: number }[]>`select id from services order by id limit 2`;
  const svc: number[] = [], ts: string[] = [], status: number[] = [], latency: number[] = [];
  let i = 0;
  for (const [offset, time, n] of ROWS) {
    for (let k = 0; k < n; k++, i++) {
      svc.push(services[i % 2].id);
      ts.push(at(offset, time).toISOString());
      status.push(i % 3 === 0 ? 500 : 200);
      latency.push(5 + i);
    }
  }
  await db.sql`
    insert into log_events (service_id, "timestamp", status_code, latency_ms, event_type)
    select s, t, c, l, 'seeded'
    from unnest(${svc}::int[], ${ts}::timestamptz[], ${status}::smallint[], ${latency}::float8[])
      as u (s, t, c, l)`;
  await db.sql`select observian_rollup_rebuild(${at(-12, "00:00:00")}, ${at(1, "00:00:00")})`;
  await db.sql`
    insert into github_seen_events (github_id, created_at)
    values ('old', ${at(-9, "00:00:00")}), ('recent', ${at(-1, "00:00:00")})`;
  await db.sql`
    insert into markers (service_id, at, kind, title, delivery)
    select ${services[0].id}, t, 'deployment', d, d
    from unnest(${MARKERS.map(([d]) => d)}::text[], ${
    MARKERS.map(([, t]) => t.toISOString())
  }::timestamptz[]) as u (d, t)`;
}

/** Markers go with the log cutoff (12:00 seven days ago): the first two are older. */
const MARKERS: [string, Date][] = [
  ["old", at(-9, "08:00:00")],
  ["boundary-old", at(-7, "11:59:59")],
  ["boundary-kept", at(-7, "12:00:00")],
  ["recent", at(-1, "08:00:00")],
];
const markerNames = async () =>
  (await db.sql`select delivery from markers order by at`).map((r) => r.delivery);

async function count(where: "all" | "old" = "all"): Promise<number> {
  const cutoff = new Date(NOW.getTime() - 7 * DAY);
  const [r] = where === "all"
    ? await db.sql`select count(*)::int as n from log_events`
    : await db.sql`select count(*)::int as n from log_events where "timestamp" < ${cutoff}`;
  return r.n;
}

/** Every rollup bucket of every tier equals what the rows say, and no bucket is extra. */
async function assertRollupsMatchRows() {
  for (
    const [table, unit] of [["log_rollup_1m", "minute"], ["log_rollup_1h", "hour"], [
      "log_rollup_1d",
      "day",
    ]]
  ) {
    const fromRows = await db.sql`
      select service_id, date_trunc(${unit}, "timestamp", 'UTC') as bucket,
             count(*)::int as count, (count(*) filter (where status_code >= 500))::int as errors,
             sum(latency_ms) as latency_sum
      from log_events group by 1, 2 order by 1, 2`;
    const fromRollups = await db.sql`
      select service_id, bucket, sum(count)::int as count, sum(errors)::int as errors,
             sum(latency_sum) as latency_sum
      from ${db.sql(table)} group by 1, 2 order by 1, 2`;
    assert.deepEqual([...fromRollups], [...fromRows], `${table} agrees with log_events`);
  }
}

dbTest("[pruner] a dry run reports the figures and changes nothing", async () => {
  await seed();
  const partitions = await listPartitionDays(db.sql);
  const rollups = await db.sql`select * from log_rollup_1h order by service_id, bucket`;
  const report = await pruneLogs(db.sql, config, null, { dryRun: true, now: NOW });
  assert.equal(report.dry_run, true);
  assert.equal(report.deleted, OLD);
  assert.equal(report.dropped_partitions, 5, "days -12 to -8");
  assert.equal(report.cutoff, new Date(NOW.getTime() - 7 * DAY).toISOString());
  assert.equal(await count(), TOTAL);
  assert.deepEqual(await listPartitionDays(db.sql), partitions);
  assert.deepEqual(await db.sql`select * from log_rollup_1h order by service_id, bucket`, rollups);
  const [seen] = await db.sql`select count(*)::int as n from github_seen_events`;
  assert.equal(seen.n, 2);
  assert.equal(report.markers_deleted, 2);
  assert.deepEqual(await markerNames(), MARKERS.map(([d]) => d));
});

dbTest(
  "[pruner] drops old partitions, trims the boundary, keeps rollups equal to rows",
  async () => {
    await seed();
    await assertRollupsMatchRows();
    const metrics = createMetrics({ processMetrics: false });
    const expectedOld = await count("old");
    assert.equal(expectedOld, OLD);

    const report = await pruneLogs(db.sql, config, metrics, { now: NOW });
    assert.equal(report.deleted, OLD);
    assert.equal(report.dropped_partitions, 5);
    assert.equal(report.dry_run, false);
    assert.equal(typeof report.duration_ms, "number");

    assert.equal(await count("old"), 0, "nothing older than the cutoff");
    assert.equal(await count(), TOTAL - OLD, "everything newer kept");
    const days = await listPartitionDays(db.sql);
    assert.equal(days[0], day(-7), "the oldest partition is the boundary day's");
    for (let d = 0; d <= 7; d++) assert.ok(days.includes(day(d)), `partition for ${day(d)}`);
    const [left] = await db.sql`
    select count(*)::int as n from pg_class where relname = ${
      "log_events_p" + day(-10).replaceAll("-", "")
    }`;
    assert.equal(left.n, 0, "dropped, not just detached");
    await assertRollupsMatchRows();

    const seen = await db.sql`select github_id from github_seen_events`;
    assert.deepEqual(seen.map((r) => r.github_id), ["recent"]);
    assert.equal(report.markers_deleted, 2);
    assert.deepEqual(await markerNames(), ["boundary-kept", "recent"]);

    assert.equal((await metrics.prunerDeletedRows.get()).values[0].value, OLD);
    assert.equal((await metrics.prunerDroppedPartitions.get()).values[0].value, 5);
    assert.ok((await metrics.partitionsAhead.get()).values[0].value >= 7);

    // A second pass finds nothing more.
    const again = await pruneLogs(db.sql, config, metrics, { now: NOW });
    assert.equal(again.deleted, 0);
    assert.equal(again.dropped_partitions, 0);
    assert.equal(again.markers_deleted, 0);
    assert.equal(await count(), TOTAL - OLD);
    await assertRollupsMatchRows();
  },
);

dbTest("[pruner] creates the partitions of the coming week", async () => {
  await seed();
  const future = new Date(NOW.getTime() + 9 * DAY);
  const report = await pruneLogs(db.sql, config, null, { now: future });
  assert.ok(report.partitions_created >= 2, "days 8 and 9 from today, and more");
  const days = await listPartitionDays(db.sql);
  for (let d = 9; d <= 16; d++) assert.ok(days.includes(day(d)), `partition for ${day(d)}`);
  assert.equal(report.partitions_ahead, 7);
});

dbTest("[pruner] ROLLUP_RETENTION_DAYS keeps rollups past the rows", async () => {
  await seed();
  const long = testConfig({ RETENTION_DAYS: "7", ROLLUP_RETENTION_DAYS: "30" });
  const [before] = await db.sql`
    select sum(count)::int as n from log_rollup_1d where bucket < ${at(-6, "00:00:00")}`;
  const report = await pruneLogs(db.sql, long, null, { now: NOW });
  assert.equal(report.deleted, OLD);
  assert.equal(report.rollup_cutoff, new Date(NOW.getTime() - 30 * DAY).toISOString());
  const [after] = await db.sql`
    select sum(count)::int as n from log_rollup_1d where bucket < ${at(-6, "00:00:00")}`;
  assert.equal(after.n, before.n, "the summaries of pruned days survive");
});

dbTest("[pruner] a table left detached by an interrupted run is dropped", async () => {
  await seed();
  await db.sql`create table log_events_p20000101 (like log_events)`;
  const dry = await pruneLogs(db.sql, config, null, { dryRun: true, now: NOW });
  assert.equal(dry.dropped_partitions, 6);
  const report = await pruneLogs(db.sql, config, null, { now: NOW });
  assert.equal(report.dropped_partitions, 6);
  assert.equal(report.deleted, OLD, "its rows were no longer logs");
  const [t] = await db.sql`select to_regclass('log_events_p20000101') as t`;
  assert.equal(t.t, null);
});

dbTest("[pruner] the job: runner, switch, run record; dry runs ignore the switch", async () => {
  await seed();
  const deps = { sql: db.sql, config, metrics: createMetrics({ processMetrics: false }) };
  const run = await runPruner({ ...deps, now: () => NOW });
  assert.equal(run.outcome, "success", run.error ?? "");
  assert.equal(run.result!.deleted, OLD);
  const [row] = await db.sql`select * from job_control where job = 'pruner'`;
  assert.deepEqual(row.last_success_at, NOW);
  assert.equal(row.state.last_result.deleted, OLD);
  assert.equal(row.state.last_result.dropped_partitions, 5);
  assert.equal(row.state.last_result.markers_deleted, 2);

  await seed();
  await db.sql`update job_control set enabled = false where job = 'pruner'`;
  try {
    assert.equal((await runPruner({ ...deps, now: () => NOW })).outcome, "skipped_disabled");
    assert.equal(await count(), TOTAL);
    const dry = await runPruner({ ...deps, now: () => NOW }, { dryRun: true });
    assert.equal(dry.outcome, "success");
    assert.equal(dry.result!.deleted, OLD);
    assert.equal(await count(), TOTAL);
  } finally {
    await db.sql`update job_control set enabled = true where job = 'pruner'`;
  }
  // ?days=N prunes with another cutoff; rollups follow it.
  const short = await runPruner({ ...deps, now: () => NOW }, { days: 2 });
  assert.equal(short.result!.cutoff, new Date(NOW.getTime() - 2 * DAY).toISOString());
  const [{ n }] = await db.sql`
    select count(*)::int as n from log_events where "timestamp" < ${short.result!.cutoff}`;
  assert.equal(n, 0);
  assert.equal(await count(), 3);
  await assertRollupsMatchRows();
});

dbTest("[x] teardown", () => db.drop());
