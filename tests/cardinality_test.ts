// High-cardinality event types (a service sending raw paths as its type) must not stall the
// summaries: the rollups keep at most ROLLUP_MAX_EVENT_TYPES types per row, a summary's
// queries stop at QUERY_TIMEOUT_MS, and a client that goes away cancels its queries.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { ConfigError, parseConfig } from "../src/config.ts";
import { loadMigrations, migrate } from "../src/db/migrate.ts";
import { CLIENT_CLOSED_REQUEST } from "../src/http/client-gone.ts";
import { compactRollups } from "../src/ingest/rollup.ts";
import { DEFAULT_ROLLUP_MAX_EVENT_TYPES } from "../src/db/rollup-constants.ts";
import { createMetrics } from "../src/metrics/registry.ts";
import { foldEventTypes, OTHER_EVENT_TYPES } from "../src/query/summary/event-types.ts";
import type { Summary } from "../src/query/summary/summarize.ts";
import { compactAll, dbTest, emptyDatabase, preparedDatabase, testConfig } from "./helpers/db.ts";
import { postEvents } from "./helpers/events.ts";
import { eventually } from "./helpers/wait.ts";

const db = await preparedDatabase();
/** ROLLUP_MAX_EVENT_TYPES's default, that of compaction and of the SQL functions (sql/010). */
const MAX = 100;
const app = buildApp({ sql: db.sql, config: testConfig({ QUERY_TIMEOUT_MS: "20000" }) });

const MIN = 60_000;
// The burst lies in the last 20 minutes, or in the first minutes of today just after midnight,
// so that its minutes, hours and day are all inside the windows asked below.
const burstEnd = Date.now() - 1_000;
const burstStart = Math.max(burstEnd - 20 * MIN, Math.floor(burstEnd / 86_400_000) * 86_400_000);
const BURST = 4_000;
/** Every fourth event is one frequent type; the others each have a type of their own. */
const burstType = (i: number) => i % 4 === 0 ? "http.request" : `GET /users/${i}`;

async function summary(target: { request: typeof app.request }, qs: string): Promise<Summary> {
  const res = await target.request(`/logs/summary?${qs}`);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

/** Typed events per rollup bucket of `tier`, counted from log_events. */
async function typedPerBucket(service: string, unit: "minute" | "hour" | "day") {
  const rows = await db.sql<{ bucket: Date; n: number }[]>`
    select date_trunc(${unit}, e."timestamp", 'UTC') as bucket, count(e.event_type)::int as n
    from log_events e join services s on s.id = e.service_id
    where s.name = ${service} group by 1`;
  return new Map(rows.map((r) => [r.bucket.getTime(), r.n]));
}

async function assertRowsCapped(service: string, max: number) {
  for (const [tier, unit] of [["1m", "minute"], ["1h", "hour"], ["1d", "day"]] as const) {
    const rows = await db.sql<{ bucket: Date; keys: number; listed: number; other: number }[]>`
      select r.bucket, (select count(*)::int from jsonb_object_keys(r.event_counts)) as keys,
        (select coalesce(sum(v::bigint), 0)::int from jsonb_each_text(r.event_counts) kv (k, v))
          as listed,
        r.event_other::int as other
      from ${db.sql(`log_rollup_${tier}_store`)} r join services s on s.id = r.service_id
      where s.name = ${service}`;
    const typed = await typedPerBucket(service, unit);
    assert.equal(rows.length, typed.size, `${tier}: a row per bucket`);
    for (const r of rows) {
      assert.ok(r.keys <= max, `${tier} ${r.bucket.toISOString()}: ${r.keys} types kept`);
      assert.equal(r.listed + r.other, typed.get(r.bucket.getTime()), `${tier}: nothing lost`);
    }
  }
}

dbTest(
  "[cardinality] a burst of distinct event types is folded; summaries list the top ones",
  async () => {
    // Interleaved over the burst's minutes, as concurrent shippers would send them.
    const events = Array.from({ length: BURST }, (_, i) => ({
      service_name: "burst-svc",
      status_code: i % 50 === 0 ? 503 : 200,
      latency_ms: 5 + (i % 40),
      event_type: burstType(i),
      timestamp: new Date(burstStart + ((i * 7919) % BURST) * (burstEnd - burstStart) / BURST)
        .toISOString(),
    }));
    for (let i = 0; i < BURST; i += 1000) await postEvents(app, events.slice(i, i + 1000));
    await compactAll(db.sql);
    await assertRowsCapped("burst-svc", MAX);

    const frequent = BURST / 4;
    for (const window of ["1h", "24h", "7d"]) {
      const s = await summary(app, `window=${window}&service_name=burst-svc`);
      assert.equal(s.total_logs, BURST, window);
      assert.equal(s.total_errors, BURST / 50, window);
      const types = Object.keys(s.event_type_breakdown);
      assert.ok(types.length <= MAX + 1, `${window}: ${types.length} types listed`);
      assert.equal(types.at(-1), OTHER_EVENT_TYPES, `${window}: the folded ones last`);
      // Kept by every row (it is the most frequent type of every delta), so exact.
      assert.equal(s.event_type_breakdown["http.request"], frequent, window);
      const listed = Object.values(s.event_type_breakdown).reduce((a, b) => a + b, 0);
      assert.equal(listed, BURST, `${window}: the breakdown adds up to the typed events`);
      assert.equal(s.event_types_folded, s.event_type_breakdown[OTHER_EVENT_TYPES]);
      assert.ok(s.event_types_folded > BURST / 2, `${window}: ${s.event_types_folded} folded`);
    }
    // A summary lists fewer types when told to, from the same rows.
    const narrow = buildApp({ sql: db.sql, config: testConfig({ ROLLUP_MAX_EVENT_TYPES: "5" }) });
    const s = await summary(narrow, "window=1h&service_name=burst-svc");
    assert.equal(Object.keys(s.event_type_breakdown).length, 6);
    assert.equal(s.event_type_breakdown["http.request"], frequent);

    // The raw events keep their types.
    for (const i of [1, 2_001, BURST - 1]) {
      const res = await app.request(
        `/logs?service_name=burst-svc&event_type=${encodeURIComponent(burstType(i))}`,
      );
      const found = await res.json();
      assert.equal(res.status, 200);
      assert.equal(found.length, 1, burstType(i));
      assert.equal(found[0].event_type, burstType(i));
    }

    // Folds are counted for /metrics.
    const scrape = await (await app.request("/metrics")).text();
    for (const tier of ["1m", "1h", "1d"]) {
      const m = scrape.match(
        new RegExp(`^observian_rollup_folded_event_types_total\\{tier="${tier}"\\} (\\d+)`, "m"),
      );
      assert.ok(m && Number(m[1]) > 0, `folded types counted for ${tier}`);
    }

    // Rebuilding from the facts folds the same way.
    await db.sql`select observian_rollup_rebuild(${new Date(burstStart)}, ${new Date(burstEnd)})`;
    await assertRowsCapped("burst-svc", MAX);
    const rebuilt = await summary(app, "window=24h&service_name=burst-svc");
    assert.equal(rebuilt.event_type_breakdown["http.request"], frequent);
    assert.equal(Object.values(rebuilt.event_type_breakdown).reduce((a, b) => a + b, 0), BURST);
  },
);

dbTest("[cardinality] compaction folds a row already over the limit as it adds to it", async () => {
  // What a row written before the limit existed looks like: 3 × MAX types.
  const minute = Math.floor((Date.now() - 30 * MIN) / MIN) * MIN;
  const [svc] = await db.sql`insert into services (name) values ('legacy-svc') returning id`;
  const legacy = Object.fromEntries(
    Array.from({ length: 3 * MAX }, (_, i) => [`legacy.${i}`, 1 + (i % 7)]),
  );
  const legacyTotal = Object.values(legacy).reduce((a, b) => a + b, 0);
  await db.sql`insert into log_rollup_1m_store (service_id, bucket, count, errors, latency_sum,
      status_counts, event_counts)
    values (${svc.id}, ${new Date(minute)}, ${legacyTotal}, 0, 0,
      ${db.sql.json({ "200": legacyTotal })}, ${db.sql.json(legacy)})`;
  await postEvents(app, [
    {
      service_name: "legacy-svc",
      status_code: 200,
      latency_ms: 1,
      event_type: "new.type",
      timestamp: new Date(minute + 30_000).toISOString(),
    },
    ...Array.from({ length: 10 }, (_, s) => ({
      service_name: "legacy-svc",
      status_code: 200,
      latency_ms: 1,
      event_type: "legacy.0",
      timestamp: new Date(minute + s * 1000).toISOString(),
    })),
  ]);
  await compactAll(db.sql);
  const [row] = await db.sql`
    select event_counts, event_other::int as other from log_rollup_1m_store
    where service_id = ${svc.id} and bucket = ${new Date(minute)}`;
  assert.equal(Object.keys(row.event_counts).length, MAX);
  const kept = Object.values(row.event_counts as Record<string, number>);
  assert.equal(kept.reduce((a, b) => a + b, 0) + row.other, legacyTotal + 11);
  // The largest counts stay, legacy.0 (1 + 10) among them; the row is full for new types.
  assert.equal(row.event_counts["legacy.0"], 11);
  assert.ok(Math.min(...kept) >= 5, "the smaller counts were folded");
  assert.equal(row.event_counts["new.type"], undefined);
});

dbTest("[cardinality] the ingest writer compacts with ROLLUP_MAX_EVENT_TYPES", async () => {
  const narrow = buildApp({ sql: db.sql, config: testConfig({ ROLLUP_MAX_EVENT_TYPES: "3" }) });
  // The pending deltas are shared: a trailing compaction of this file's other writers (a
  // compaction interval, 1 s, after their last write), with the default limit, would fold these
  // events instead of the narrow writer. Past the interval, and with none running, none is due.
  await new Promise((r) => setTimeout(r, 1500));
  for (const deadline = Date.now() + 10_000;;) {
    const [{ n }] = await db.sql`select count(*)::int as n from pg_stat_activity
      where datname = current_database() and state = 'active'
        and query like '%observian_rollup_compact(%' and pid <> pg_backend_pid()`;
    if (n === 0) break;
    assert.ok(Date.now() < deadline, "another writer's compaction ended");
    await new Promise((r) => setTimeout(r, 50));
  }
  await compactAll(db.sql);
  const now = Date.now();
  await postEvents(
    narrow,
    Array.from({ length: 20 }, (_, i) => ({
      service_name: "narrow-svc",
      status_code: 200,
      latency_ms: 1,
      event_type: `type-${i}`,
      timestamp: new Date(now - 1000).toISOString(),
    })),
  );
  // The writer's own compaction, a second after its previous one at most.
  const deadline = Date.now() + 15_000;
  for (;;) {
    const [{ n }] = await db.sql`select count(*)::int as n from log_rollup_pending p
      join services s on s.id = p.service_id where s.name = 'narrow-svc'`;
    if (n === 0) break;
    assert.ok(Date.now() < deadline, "the writer compacted");
    await new Promise((r) => setTimeout(r, 100));
    await postEvents(narrow, [{ service_name: "other-svc", status_code: 200, latency_ms: 1 }]);
  }
  await assertRowsCapped("narrow-svc", 3);
});

dbTest("[cardinality] the final breakdown: top types, (other), never negative", () => {
  const m = (o: Record<string, number>) => new Map(Object.entries(o));
  // Nothing folded: exact, no (other).
  assert.deepEqual(foldEventTypes(m({ b: 2, a: 5, c: 0 }), 0, 10), {
    breakdown: { a: 5, b: 2 },
    folded: 0,
  });
  // Beyond max: the largest (then by name), the rest in (other), last.
  assert.deepEqual(foldEventTypes(m({ x: 1, y: 1, z: 9, w: 4 }), 3, 2), {
    breakdown: { z: 9, w: 4, [OTHER_EVENT_TYPES]: 5 },
    folded: 5,
  });
  // Rows folded differently and netted: a type above its events is brought back so that the
  // breakdown still adds up (4 - 2 + 1 + 1 = 4 typed events) and nothing is negative.
  assert.deepEqual(foldEventTypes(m({ a: 4, b: 1, c: -2 }), 1, 5), {
    breakdown: { a: 4 },
    folded: 0,
  });
  return Promise.resolve();
});

dbTest("[cardinality] ROLLUP_MAX_EVENT_TYPES is read and checked", () => {
  assert.equal(parseConfig({}).rollupMaxEventTypes, MAX);
  assert.equal(DEFAULT_ROLLUP_MAX_EVENT_TYPES, MAX);
  assert.equal(parseConfig({ ROLLUP_MAX_EVENT_TYPES: "500" }).rollupMaxEventTypes, 500);
  for (const bad of ["0", "ten", "100000"]) {
    assert.throws(
      () => parseConfig({ ROLLUP_MAX_EVENT_TYPES: bad }),
      (err) => err instanceof ConfigError && err.variable === "ROLLUP_MAX_EVENT_TYPES",
    );
  }
  return Promise.resolve();
});

// ---- bounded queries ---------------------------------------------------------------------

/**
 * Statements of this database's other sessions still running (the app's, not ours), but for
 * rollup compaction: a writer of an earlier test may fold its last deltas now, and that waits
 * for the lock as it should; it is no query of the request.
 */
async function running(exceptPid: number): Promise<string[]> {
  const rows = await db.sql<{ query: string }[]>`
    select query from pg_stat_activity
    where datname = current_database() and state = 'active'
      and pid <> pg_backend_pid() and pid <> ${exceptPid}
      and query not like '%observian_rollup_compact%'`;
  return rows.map((r) => r.query);
}

const waitFor = (what: string, check: () => Promise<boolean>, ms = 10_000) =>
  eventually(what, check, ms, 50);

/** Holds an exclusive lock on `tables` (every read of them waits) until release(). */
async function lockTables(tables: string[]) {
  const locker = await db.sql.reserve();
  await locker`begin`;
  for (const t of tables) await locker`lock table ${locker(t)} in access exclusive mode`;
  const [{ pid }] = await locker<{ pid: number }[]>`select pg_backend_pid() as pid`;
  return {
    pid,
    async release() {
      await locker`rollback`;
      locker.release();
    },
  };
}

const ROLLUP_TABLES = [
  "log_rollup_pending",
  "log_rollup_1m_store",
  "log_rollup_1h_store",
  "log_rollup_1d_store",
  "log_events",
];

dbTest("[cardinality] a summary stops at QUERY_TIMEOUT_MS and leaves nothing running", async () => {
  const bounded = buildApp({ sql: db.sql, config: testConfig({ QUERY_TIMEOUT_MS: "300" }) });
  const generation = db.sql.generation;
  const lock = await lockTables(ROLLUP_TABLES);
  try {
    for (const qs of ["window=1h", "window=7d", "window=15m&service_name=burst-svc"]) {
      // Without the bound the request waits for the lock: fail instead of hanging.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const res = await Promise.race([
        bounded.request(`/logs/summary?${qs}`),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${qs} was not stopped`)), 10_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.equal(res.status, 503, qs);
      assert.equal(res.headers.get("content-type"), "application/problem+json");
      assert.match((await res.json()).detail, /QUERY_TIMEOUT_MS/);
      // Its other queries were cancelled with it, not left waiting for the lock.
      await waitFor("no query left running", async () => (await running(lock.pid)).length === 0);
    }
  } finally {
    await lock.release();
  }
  assert.equal(db.sql.generation, generation, "no connection was taken for lost");
  assert.equal((await bounded.request("/logs/summary?window=1h")).status, 200);
});

dbTest("[cardinality] a client that disconnects cancels its queries (summary, logs)", async () => {
  const metrics = createMetrics({ processMetrics: false });
  // A generous bound, so that only the disconnect can stop the queries.
  const served = buildApp({
    sql: db.sql,
    config: testConfig({ QUERY_TIMEOUT_MS: "60000" }),
    metrics,
  });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, served.fetch);
  const base = `http://127.0.0.1:${server.addr.port}`;
  const generation = db.sql.generation;
  const lock = await lockTables(ROLLUP_TABLES);
  try {
    for (const path of ["/logs/summary?window=7d", "/logs?min_latency_ms=1"]) {
      const client = new AbortController();
      const answered = fetch(base + path, { signal: client.signal }).then(
        () => "answered",
        () => "aborted",
      );
      await waitFor(
        `${path} waiting on the lock`,
        async () => (await running(lock.pid)).length > 0,
      );
      client.abort();
      assert.equal(await answered, "aborted");
      // Still locked: only a cancel can have ended them.
      await waitFor(
        `${path}: queries cancelled`,
        async () => (await running(lock.pid)).length === 0,
      );
    }
    await waitFor("both recorded as 499", async () => {
      const { values } = await metrics.httpRequests.get();
      return values.filter((v) => String(v.labels.status) === String(CLIENT_CLOSED_REQUEST))
        .length === 2;
    });
  } finally {
    await lock.release();
    await server.shutdown();
  }
  // Cancelled without the pool being replaced (as a cancel request's own connection, closed by
  // the server, would have had it).
  assert.equal(db.sql.generation, generation);
  // The pool is intact.
  assert.equal((await served.request("/logs/summary?window=1h")).status, 200);
  assert.equal((await served.request("/logs?limit=1")).status, 200);
});

// ---- migration 010 -------------------------------------------------------------------------

dbTest("[cardinality] migration 010 folds rows stored before it over 100 types", async () => {
  const empty = await emptyDatabase();
  const dir = await Deno.makeTempDir();
  try {
    for (const m of await loadMigrations()) {
      if (m.version >= 10) continue;
      await Deno.writeTextFile(`${dir}/${String(m.version).padStart(3, "0")}_${m.name}.sql`, m.sql);
    }
    await migrate(empty.sql, { dir: new URL(`file://${dir}/`) });
    const sql = empty.sql;
    const [svc] = await sql`insert into services (name) values ('hot') returning id`;
    const [calm] = await sql`insert into services (name) values ('calm') returning id`;
    const day = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000);
    const hour = new Date(day.getTime() + 3_600_000);
    const minute = new Date(hour.getTime() + 5 * MIN);
    // 250 types, counts 1..250 in the minute; the hour and day hold them and a few more.
    const map = (n: number, extra = 0) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`t${i}`, i + 1 + extra]));
    const rows: [string, Date, Record<string, number>, number][] = [
      ["log_rollup_1m_store", minute, map(250), svc.id],
      ["log_rollup_1h_store", hour, map(260), svc.id],
      ["log_rollup_1d_store", day, map(270), svc.id],
      ["log_rollup_1d_store", day, map(5), calm.id],
      ["log_rollup_1h_store", hour, map(5), calm.id],
    ];
    const total = (m: Record<string, number>) => Object.values(m).reduce((a, b) => a + b, 0);
    for (const [table, bucket, counts, service] of rows) {
      await sql`insert into ${sql(table)} (service_id, bucket, count, errors, latency_sum,
          status_counts, event_counts)
        values (${service}, ${bucket}, ${total(counts)}, 0, 0, '{}', ${sql.json(counts)})`;
    }
    await migrate(sql);
    for (const [table, bucket, counts, service] of rows) {
      const [r] = await sql`select event_counts, event_other::int as other from ${sql(table)}
        where service_id = ${service} and bucket = ${bucket}`;
      const keys = Object.keys(counts).length;
      assert.equal(Object.keys(r.event_counts).length, Math.min(keys, 100), table);
      assert.equal(total(r.event_counts) + r.other, total(counts), `${table}: nothing lost`);
      // The largest stay.
      assert.equal(r.event_counts[`t${keys - 1}`], keys, table);
    }
    const stats = await sql`select tier, folded_types::int as n from rollup_fold_stats
      order by tier`;
    assert.deepEqual(stats.map((r) => [r.tier, r.n]), [["1d", 170], ["1h", 160], ["1m", 150]]);
  } finally {
    await empty.drop();
    await Deno.remove(dir, { recursive: true });
  }
});

dbTest("[cardinality] compaction moves a backlog a bounded batch at a time", async () => {
  await compactAll(db.sql);
  const [svc] = await db.sql`insert into services (name) values ('backlog-svc') returning id`;
  // 25 deltas as ingest appends them (no events behind them: removed at the end).
  await db.sql`insert into log_rollup_pending (service_id, bucket, status_code, event_type,
      count, errors, latency_sum)
    select ${svc.id}, date_trunc('minute', now()), 200, 'backlog.' || i, 1, 0, 1
    from generate_series(1, 25) i`;
  // One transaction moves at most max_rows; compactRollups runs as many as the backlog needs.
  const [first] = await db.sql`select observian_rollup_compact(100, 10) as moved`;
  assert.equal(Number(first.moved), 10);
  assert.equal(await compactRollups(db.sql, { maxRows: 10 }), 15);
  const [row] = await db.sql`select count::int, event_counts from log_rollup_1m_store
    where service_id = ${svc.id}`;
  assert.equal(row.count, 25);
  assert.equal(Object.keys(row.event_counts).length, 25);
  for (const t of ["log_rollup_1m_store", "log_rollup_1h_store", "log_rollup_1d_store"]) {
    await db.sql`delete from ${db.sql(t)} where service_id = ${svc.id}`;
  }
});

dbTest("[cardinality] teardown", () => db.drop());
