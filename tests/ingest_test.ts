import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { createDb } from "../src/db/connect.ts";
import { EventWriter, type FlushInfo } from "../src/ingest/writer.ts";
import { compactAll, dbTest, holdInserts, preparedDatabase, testConfig } from "./helpers/db.ts";
import { newEvent } from "./helpers/events.ts";
import { eventually } from "./helpers/wait.ts";

const db = await preparedDatabase();
const config = testConfig({ MAX_BODY_BYTES: "65536" });
const app = buildApp({ sql: db.sql, config });

const post = (body: unknown, contentType = "application/json") =>
  app.request("/logs", {
    method: "POST",
    headers: { "content-type": contentType },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

const event = (over: Record<string, unknown> = {}) => ({
  service_name: "checkout-service",
  status_code: 200,
  latency_ms: 12.5,
  ...over,
});

async function count(): Promise<number> {
  const [r] = await db.sql`select count(*)::int as n from log_events`;
  return r.n;
}

async function rollupTotal(): Promise<number> {
  const [r] = await db.sql`select coalesce(sum(count), 0)::int as n from log_rollup_1m`;
  return r.n;
}

dbTest("[ingest] one event → 201 {id, status} and the row as sent", async () => {
  const ts = new Date(Date.now() - 3_600_000).toISOString();
  const res = await post(event({
    status_code: 503,
    event_type: "payment.charge",
    timestamp: ts,
    message: "card declined",
    attributes: { region: "eu", attempt: 2, nested: { ok: true } },
  }));
  assert.equal(res.status, 201);
  const body = await res.json();
  assert.equal(body.status, "created");
  assert.equal(typeof body.id, "number");
  const [row] = await db.sql`
    select s.name, e."timestamp", e.status_code, e.event_type, e.latency_ms, e.message,
           e.attributes
    from log_events e join services s on s.id = e.service_id where e.id = ${body.id}`;
  assert.equal(row.name, "checkout-service");
  assert.equal(row.timestamp.toISOString(), ts);
  assert.equal(row.status_code, 503);
  assert.equal(row.event_type, "payment.charge");
  assert.equal(row.latency_ms, 12.5);
  assert.equal(row.message, "card declined");
  assert.deepEqual(row.attributes, { region: "eu", attempt: 2, nested: { ok: true } });
});

dbTest("[ingest] timestamp defaults to now", async () => {
  const before = Date.now();
  const res = await post(event());
  const { id } = await res.json();
  const [row] = await db.sql`select "timestamp" from log_events where id = ${id}`;
  assert.ok(row.timestamp.getTime() >= before - 1000 && row.timestamp.getTime() <= Date.now());
});

dbTest("[ingest] a JSON array is one atomic batch → {status, accepted}", async () => {
  const before = await count();
  const res = await post(Array.from({ length: 250 }, (_, i) => event({ latency_ms: i })));
  assert.equal(res.status, 201);
  assert.deepEqual(await res.json(), { status: "created", accepted: 250 });
  assert.equal(await count(), before + 250);
});

dbTest("[ingest] NDJSON batch, blank lines ignored", async () => {
  const before = await count();
  const lines = [event(), event({ status_code: 404 }), event({ service_name: "a/b" })]
    .map((e) => JSON.stringify(e)).join("\n\n") + "\n";
  const res = await post(lines, "application/x-ndjson");
  assert.equal(res.status, 201);
  assert.deepEqual(await res.json(), { status: "created", accepted: 3 });
  assert.equal(await count(), before + 3);
});

dbTest("[ingest] one bad event fails the whole batch, listing every bad index", async () => {
  const before = await count();
  const batch = [
    event(),
    event({ status_code: 99 }),
    event(),
    event({ latency_ms: -1, service_name: "" }),
  ];
  const res = await post(batch);
  assert.equal(res.status, 422);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const body = await res.json();
  const fields = body.errors.map((e: { field: string }) => e.field).sort();
  assert.deepEqual(fields, ["[1].status_code", "[3].latency_ms", "[3].service_name"]);
  assert.equal(await count(), before, "nothing written");
});

dbTest("[ingest] NDJSON errors are reported by event index", async () => {
  const res = await post(
    [JSON.stringify(event()), JSON.stringify(event({ status_code: "200" }))].join("\n"),
    "application/x-ndjson",
  );
  assert.equal(res.status, 422);
  const body = await res.json();
  assert.deepEqual(body.errors.map((e: { field: string }) => e.field), ["[1].status_code"]);
});

dbTest(
  "[ingest] an unknown service is registered once, even under concurrent first writes",
  async () => {
    const name = `new-svc-${crypto.randomUUID().slice(0, 8)}`;
    // Separate writers model separate instances, each with an empty service cache.
    const apps = Array.from({ length: 6 }, () => buildApp({ sql: db.sql, config }));
    const results = await Promise.all(apps.map((a) =>
      a.request("/logs", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(event({ service_name: name })),
      })
    ));
    for (const r of results) assert.equal(r.status, 201);
    const rows = await db.sql`select id, team_owner from services where name = ${name}`;
    assert.equal(rows.length, 1);
    assert.equal(rows[0].team_owner, null);
    const [n] = await db.sql`
    select count(*)::int as n from log_events where service_id = ${rows[0].id}`;
    assert.equal(n.n, 6);
  },
);

dbTest("[ingest] many concurrent requests share commits and every one is stored", async () => {
  const before = await count();
  const flushes: number[] = [];
  const writer = new EventWriter(db.sql, { onFlush: (f) => flushes.push(f.requests) });
  const grouped = buildApp({ sql: db.sql, config, writer });
  const ids = await Promise.all(Array.from({ length: 200 }, async (_, i) => {
    const r = await grouped.request("/logs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event({ latency_ms: i })),
    });
    assert.equal(r.status, 201);
    return (await r.json()).id as number;
  }));
  assert.equal(new Set(ids).size, 200, "distinct ids");
  assert.equal(await count(), before + 200);
  assert.equal(flushes.reduce((a, b) => a + b, 0), 200);
  assert.ok(flushes.length < 200, `group commit: ${flushes.length} transactions for 200`);
});

dbTest("[ingest] writes queued on a brand-new connection all succeed", async () => {
  // postgres.js may mis-serialise array parameters before a new connection has fetched its
  // array types; the writer sends JSON instead, so this must never fail.
  for (let round = 0; round < 3; round++) {
    const fresh = createDb(db.url, { max: 1 });
    try {
      const writer = new EventWriter(fresh, { concurrentFlushes: 2 });
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) =>
        writer.write([
          newEvent({ serviceName: `fresh-${round}-${i % 3}` }),
          newEvent({ eventType: "x" }),
        ])));
      assert.equal(results.flat().length, 20);
    } finally {
      await fresh.end();
    }
  }
});

dbTest(
  "[ingest] small groups pipeline on the lane while a big batch commits beside them",
  async () => {
    const lane = createDb(db.url, { max: 1 });
    try {
      const flushes: FlushInfo[] = [];
      const writer = new EventWriter(db.sql, { lane, onFlush: (f) => flushes.push(f) });
      const before = await count();
      const ids = await Promise.all([
        ...Array.from({ length: 300 }, (_, i) => writer.write([newEvent({ latencyMs: i })])),
        writer.write(Array.from({ length: 600 }, () => newEvent())),
      ]);
      assert.equal(new Set(ids.flat()).size, 900);
      assert.equal(await count(), before + 900);
      assert.ok(flushes.some((f) => f.pipelined), "a second group went out behind the first");
      await writer.idle(); // its compaction must not overlap the next tests'
    } finally {
      await lane.end({ timeout: 5 });
    }
  },
);

dbTest(
  "[ingest] a lane whose connection is killed reconnects and loses nothing acknowledged",
  async () => {
    const lane = createDb(db.url, { max: 1 });
    let hold: { release: () => Promise<void> } | undefined;
    try {
      const writer = new EventWriter(db.sql, { lane });
      const before = await count();
      // Hold inserts back so the lane's statements are in flight when its backend is killed.
      hold = await holdInserts(db.sql);
      const writes = Array.from({ length: 41 }, () => writer.write([newEvent()]));
      let pid: number | undefined;
      while (pid === undefined) {
        const [r] = await db.sql`select pid from pg_stat_activity
        where wait_event_type = 'Lock' and query like '%insert into log_events%' limit 1`;
        pid = r?.pid;
      }
      await db.sql`select pg_terminate_backend(${pid})`;
      await hold.release();
      const results = await Promise.allSettled(writes);
      const acked = results.filter((r) => r.status === "fulfilled").length;
      assert.ok(results[0].status === "rejected", "the group on the killed backend fails");
      assert.ok(acked > 0, "the requests of a failed group are retried one by one");
      assert.equal((await writer.write([newEvent()])).length, 1, "later writes succeed");
      assert.equal(await count(), before + acked + 1);
      await writer.idle();
    } finally {
      await hold?.release();
      await lane.end({ timeout: 5 });
    }
  },
);

dbTest(
  "[ingest] a lost database socket nobody listens to any more does not end the process",
  async () => {
    // What a write postgres.js had queued for a killed backend produces in Deno's node:net. Without
    // surviveLostDbSockets (main installs it; so does tests/helpers/db.ts) this unhandled
    // rejection fails the whole file, as it would end the server.
    void Promise.reject(
      Object.assign(new Error("This socket has been ended by the other party"), { code: "EPIPE" }),
    );
    await new Promise((r) => setTimeout(r, 20));
  },
);

dbTest("[ingest] bodies beyond INGEST_MAX_INFLIGHT_BYTES get 503 with Retry-After", async () => {
  const limited = buildApp({
    sql: db.sql,
    config: testConfig({ MAX_BODY_BYTES: "65536", INGEST_MAX_INFLIGHT_BYTES: "2048" }),
    writer: new EventWriter(db.sql, { compactEveryMs: Infinity }),
  });
  const send = (body: string) =>
    limited.request("/logs", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "content-length": String(new TextEncoder().encode(body).length),
      },
      body,
    });
  const small = JSON.stringify(event({ service_name: "admission-test" }));
  const large = JSON.stringify(
    event({ service_name: "admission-test", message: "x".repeat(1900) }),
  );
  const before = await count();
  // Commits wait behind the lock, so the admitted requests stay in flight.
  const hold = await holdInserts(db.sql);
  try {
    const first = send(small);
    const second = send(small);
    await new Promise((r) => setTimeout(r, 50));
    const refused = await send(large);
    assert.equal(refused.status, 503);
    assert.equal(refused.headers.get("retry-after"), "1");
    assert.match(refused.headers.get("content-type") ?? "", /problem\+json/);
    assert.match((await refused.json()).detail, /INGEST_MAX_INFLIGHT_BYTES/);
    await hold.release();
    assert.deepEqual([(await first).status, (await second).status], [201, 201]);
  } finally {
    await hold.release();
  }
  assert.equal(await count(), before + 2, "only the admitted bodies were stored");
  // Released: a body larger than the limit alone is still taken when nothing else is in flight.
  const big = JSON.stringify(event({ service_name: "admission-test", message: "y".repeat(4000) }));
  assert.equal((await send(big)).status, 201);
});

dbTest("[ingest] a request failing in a shared commit does not fail the others", async () => {
  const writer = new EventWriter(db.sql, { retentionDays: 7 });
  const good = newEvent({ latencyMs: 1 });
  // Bypasses validation to force a database refusal (no partition in 1999).
  const bad = newEvent({ timestamp: new Date("1999-01-01T00:00:00Z") });
  const before = await count();
  const results = await Promise.allSettled([
    writer.write([good]),
    writer.write([bad]),
    writer.write([good, good]),
  ]);
  assert.equal(results[0].status, "fulfilled");
  assert.equal(results[1].status, "rejected");
  assert.equal(results[2].status, "fulfilled");
  assert.equal(await count(), before + 3);
});

dbTest("[ingest] a missing partition for an accepted day is created on demand", async () => {
  // Tomorrow (UTC): its partition holds none of the other tests' rows.
  const tomorrow = new Date(Date.now() + 86_400_000);
  const day = new Date(`${tomorrow.toISOString().slice(0, 10)}T00:00:01Z`);
  const name = `log_events_p${day.toISOString().slice(0, 10).replaceAll("-", "")}`;
  await db.sql`drop table if exists ${db.sql(name)}`;
  const res = await post(event({ timestamp: day.toISOString() }));
  assert.equal(res.status, 201);
  const [r] = await db.sql`select to_regclass(${name}) is not null as present`;
  assert.equal(r.present, true);
  // Again through a lane, with groups pipelined behind the first that hits the missing day
  // (the day after, whose partition is empty: dropping rows would put rollups out of step).
  const later = new Date(day.getTime() + 86_400_000);
  const laterName = `log_events_p${later.toISOString().slice(0, 10).replaceAll("-", "")}`;
  await db.sql`drop table if exists ${db.sql(laterName)}`;
  const lane = createDb(db.url, { max: 1 });
  try {
    const writer = new EventWriter(db.sql, { lane, retentionDays: 7, compactEveryMs: Infinity });
    const ids = await Promise.all(
      Array.from({ length: 60 }, () => writer.write([newEvent({ timestamp: later })])),
    );
    assert.equal(new Set(ids.flat()).size, 60);
    const [n] = await db.sql`select count(*)::int as n from ${db.sql(laterName)}`;
    assert.equal(n.n, 60);
  } finally {
    await lane.end({ timeout: 5 });
  }
});

dbTest("[ingest] rollups agree with the events after every kind of write", async () => {
  const [events] = await db.sql`select count(*)::int as n,
    count(*) filter (where status_code >= 500)::int as errors from log_events`;
  for (const table of ["log_rollup_1m", "log_rollup_1h", "log_rollup_1d"]) {
    const [r] = await db.sql`
      select coalesce(sum(count), 0)::int as n, coalesce(sum(errors), 0)::int as errors,
             coalesce(sum((select sum(n) from unnest(lat_cnt) n)), 0)::int as hist
      from ${db.sql(table)}`;
    assert.deepEqual([r.n, r.errors, r.hist], [events.n, events.errors, events.n], table);
  }
  const status = await db.sql`
    select key, sum(value::int)::int as n from log_rollup_1h, jsonb_each_text(status_counts)
    group by key order by key`;
  const direct = await db.sql`
    select status_code::text as key, count(*)::int as n from log_events group by 1 order by 1`;
  assert.deepEqual(status.map((r) => [r.key, r.n]), direct.map((r) => [r.key, r.n]));
  assert.equal(await rollupTotal(), events.n);
});

dbTest(
  "[ingest] compaction moves pending deltas into the tiers without changing any figure",
  async () => {
    const figures = async () =>
      await db.sql`select service_id, bucket, sum(count)::int as n, sum(errors)::int as e,
      min(lat_min) as lo, max(lat_max) as hi,
      (select jsonb_object_agg(i, n) from (
        select u.i, sum(u.n)::int as n from log_rollup_1h r2, unnest(r2.lat_idx, r2.lat_cnt) u (i, n)
        where r2.service_id = r.service_id and r2.bucket = r.bucket group by 1) y) as buckets
      from log_rollup_1h r group by 1, 2 order by 1, 2`;
    await new EventWriter(db.sql, { compactEveryMs: Infinity }).write([newEvent()]);
    const before = await figures();
    const [p] = await db.sql`select count(*)::int as n from log_rollup_pending`;
    assert.ok(p.n > 0, "ingest leaves deltas pending");
    await compactAll(db.sql);
    const [after] = await db.sql`select count(*)::int as n from log_rollup_pending`;
    assert.equal(after.n, 0);
    assert.deepEqual(await figures(), before);
  },
);

dbTest(
  "[ingest] after a burst the pending table's file shrinks back, once no reader sees its deltas",
  async () => {
    await compactAll(db.sql);
    const pages = async () =>
      (await db.sql`select (pg_relation_size('log_rollup_pending') / 8192)::int as n`)[0]
        .n as number;
    // A reader whose snapshot predates the burst: the deltas compaction deletes stay visible to
    // it, so no vacuum can give their pages back while it lasts.
    const reader = await db.sql.reserve();
    try {
      await reader`begin isolation level repeatable read`;
      await reader`select count(*) from log_rollup_pending`;
      const writer = new EventWriter(db.sql, { compactEveryMs: 300 });
      // A delta per service and status: a few hundred pages of pending rows, in services of
      // their own (event types would fill other tests' rows up to ROLLUP_MAX_EVENT_TYPES).
      await writer.write(
        Array.from(
          { length: 6000 },
          (_, i) =>
            newEvent({ serviceName: `pending-burst-${i % 12}`, statusCode: 100 + (i % 500) }),
        ),
      );
      await eventually(
        "the burst was compacted",
        async () => (await db.sql`select count(*)::int as n from log_rollup_pending`)[0].n === 0,
        15_000,
      );
      assert.ok((await pages()) > 16, `pending pages while the reader lasts: ${await pages()}`);
    } finally {
      await reader`commit`;
      reader.release();
    }
    // No more writes: the writer's later runs vacuum the file back down.
    await eventually(
      "the pending table's file back to 16 pages or fewer",
      async () => (await pages()) <= 16,
      15_000,
    );
  },
);

dbTest(
  "[ingest] the last commits of a burst are compacted once the interval passes, without more writes",
  async () => {
    await compactAll(db.sql);
    const pending = async () =>
      (await db.sql`select count(*)::int as n from log_rollup_pending`)[0].n as number;
    // Long enough that the second write lands inside the interval even on a slow machine.
    const every = 5000;
    const writer = new EventWriter(db.sql, { compactEveryMs: every });
    await writer.write([newEvent()]); // starts a compaction
    await eventually("the first compaction", async () => (await pending()) === 0, every + 10_000);
    // Inside the interval: no compaction now. Without a trailing one (from any writer) these
    // deltas wait for a next write, and none comes.
    await writer.write([newEvent()]);
    await eventually(
      "the last write's deltas compacted with no write after it",
      async () => (await pending()) === 0,
      every + 10_000,
    );
  },
);

dbTest(
  "[ingest] pending deltas in the pre-008 shape (count maps) are read and compacted",
  async () => {
    const writer = new EventWriter(db.sql, { compactEveryMs: Infinity });
    const at = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    await writer.write([newEvent({ timestamp: at, eventType: "deploy" })]);
    const [svc] = await db.sql`select id from services where name = 'auth-service'`;
    // What an instance still running the previous release appends during a rolling deploy.
    await db.sql`insert into log_rollup_pending
      (service_id, bucket, count, errors, latency_sum, lat_idx, lat_cnt, status_counts,
       event_counts)
    values (${svc.id}, ${at}, 3, 1, 30, '{-5}', '{3}', '{"200": 2, "503": 1}', '{"deploy": 3}')`;
    const figures = async (view: string) =>
      await db
        .sql`select sum(count)::int as n, sum(errors)::int as e, count(*) filter (where -5 = any(lat_idx))::int as h,
        observian_counts_add_all(array_agg(status_counts)) as status,
        observian_counts_add_all(array_agg(event_counts)) as types
      from ${db.sql(view)} where service_id = ${svc.id} and bucket = ${at}`;
    const before = await figures("log_rollup_1m");
    assert.equal(before[0].status["503"] >= 1, true);
    assert.equal(before[0].types.deploy >= 4, true);
    await compactAll(db.sql);
    assert.deepEqual(await figures("log_rollup_1m"), before);
    assert.deepEqual(await figures("log_rollup_1m_store"), before);
    // The injected counts have no events behind them: put the day back as the facts say.
    await db.sql`select observian_rollup_rebuild(${at}, ${new Date(at.getTime() + 60_000)})`;
  },
);

dbTest("[ingest] rebuilding rollups from the facts gives the same rollups", async () => {
  // Latencies from 0 and under a microsecond to hours, on powers of 1.02 (bucket bounds) and
  // just above, over several minutes, services and types, so that many latency buckets, the
  // zero bucket and both count maps are exercised.
  const minute = Math.floor(Date.now() / 60_000) * 60_000;
  const latencies = [
    0,
    0.0004,
    0.001,
    1e7,
    ...[-200, -1, 0, 1, 57, 300, 700].flatMap((i) => {
      const b = 1.02 ** i;
      return [b, b * 1.0001];
    }),
  ];
  const res = await post(latencies.map((latency_ms, i) => ({
    service_name: ["auth-service", "search-api", "billing"][i % 3],
    status_code: [200, 404, 503, 500][i % 4],
    event_type: i % 5 === 0 ? null : `type.${i % 3}`,
    latency_ms,
    timestamp: new Date(minute - (i % 4) * 60_000 + i).toISOString(),
  })));
  assert.equal(res.status, 201);
  await compactAll(db.sql);
  const snapshot = async () =>
    await db.sql`select service_id, bucket, count, errors, round(latency_sum::numeric, 6) as s,
      lat_min, lat_max, lat_idx, lat_cnt, status_counts, event_counts
      from log_rollup_1m_store order by 1, 2`;
  const before = await snapshot();
  assert.ok(before.some((r) => r.lat_idx.includes(-349)), "the zero bucket");
  assert.ok(new Set(before.flatMap((r) => r.lat_idx)).size > 12, "many buckets");
  await db
    .sql`select observian_rollup_rebuild(now() - interval '30 days', now() + interval '2 days')`;
  assert.deepEqual(await snapshot(), before);
});

// --- Bad input corpus: each gets a 4xx problem and writes nothing. ---

const nested = (depth: number) => {
  let v: unknown = "x";
  for (let i = 0; i < depth; i++) v = { a: v };
  return v;
};
const old = new Date(Date.now() - 8 * 86_400_000).toISOString();
const future = new Date(Date.now() + 2 * 86_400_000).toISOString();

const badBodies: [string, string | unknown, number, string, string?][] = [
  ["missing service_name", { status_code: 200, latency_ms: 1 }, 422, "service_name"],
  ["missing status_code", { service_name: "a", latency_ms: 1 }, 422, "status_code"],
  ["missing latency_ms", { service_name: "a", status_code: 200 }, 422, "latency_ms"],
  ["status as string", event({ status_code: "200" }), 422, "status_code"],
  ["status 600", event({ status_code: 600 }), 422, "status_code"],
  ["status 99", event({ status_code: 99 }), 422, "status_code"],
  ["status fractional", event({ status_code: 200.5 }), 422, "status_code"],
  ["latency 'NaN'", event({ latency_ms: "NaN" }), 422, "latency_ms"],
  ["latency 'Infinity'", event({ latency_ms: "Infinity" }), 422, "latency_ms"],
  ["latency negative", event({ latency_ms: -0.5 }), 422, "latency_ms"],
  ["latency null", event({ latency_ms: null }), 422, "latency_ms"],
  ["latency over 24 hours", event({ latency_ms: 86_400_000.5 }), 422, "latency_ms"],
  ["latency 1e308", event({ latency_ms: 1e308 }), 422, "latency_ms"],
  [
    "latency huge literal",
    '{"service_name":"a","status_code":200,"latency_ms":1e999}',
    422,
    "latency_ms",
  ],
  ["bare NaN literal", '{"service_name":"a","status_code":200,"latency_ms":NaN}', 400, "(body)"],
  ["service empty", event({ service_name: "" }), 422, "service_name"],
  ["service too long", event({ service_name: "s".repeat(101) }), 422, "service_name"],
  ["service with space", event({ service_name: "a b" }), 422, "service_name"],
  ["service SQL", event({ service_name: "x'; drop table services; --" }), 422, "service_name"],
  ["service NUL", event({ service_name: "a\u0000b" }), 422, "service_name"],
  ["service number", event({ service_name: 42 }), 422, "service_name"],
  ["event_type too long", event({ event_type: "e".repeat(201) }), 422, "event_type"],
  ["event_type NUL", event({ event_type: "a\u0000" }), 422, "event_type"],
  ["event_type object", event({ event_type: { a: 1 } }), 422, "event_type"],
  ["message NUL", event({ message: "hi\u0000there" }), 422, "message"],
  ["timestamp without zone", event({ timestamp: "2026-11-28T07:00:00" }), 422, "timestamp"],
  ["timestamp garbage", event({ timestamp: "yesterday" }), 422, "timestamp"],
  ["timestamp Feb 30", event({ timestamp: "2026-02-30T00:00:00Z" }), 422, "timestamp"],
  ["timestamp month 13", event({ timestamp: "2026-13-01T00:00:00Z" }), 422, "timestamp"],
  ["timestamp Arabic digits", event({ timestamp: "٢٠٢٦-01-01T00:00:00Z" }), 422, "timestamp"],
  ["timestamp epoch number", event({ timestamp: 1764313200 }), 422, "timestamp"],
  ["timestamp too old", event({ timestamp: old }), 422, "timestamp"],
  ["timestamp too far ahead", event({ timestamp: future }), 422, "timestamp"],
  ["attributes array", event({ attributes: [1, 2] }), 422, "attributes"],
  ["attributes string", event({ attributes: "x" }), 422, "attributes"],
  ["attributes NUL value", event({ attributes: { k: "\u0000" } }), 422, "attributes"],
  ["attributes NUL key", event({ attributes: { "k\u0000": 1 } }), 422, "attributes"],
  ["attributes too big", event({ attributes: { k: "x".repeat(9000) } }), 422, "attributes"],
  ["attributes too deep", event({ attributes: nested(40) }), 422, "attributes"],
  ["body is a number", 42, 422, "(body)"],
  ["body is null", "null", 422, "(body)"],
  ["body is a string", '"hello"', 422, "(body)"],
  ["empty array", [], 422, "(body)"],
  ["array of non-objects", [1, "two", null], 422, "[0]"],
  ["deeply nested arrays", "[".repeat(5000) + "]".repeat(5000), 422, "[0]"],
  ["malformed JSON", '{"service_name": "a",', 400, "(body)"],
  ["empty body", "", 400, "(body)"],
  ["trailing garbage", JSON.stringify(event()) + "}", 400, "(body)"],
  ["batch over 10,000", Array.from({ length: 10_001 }, () => ({})), 422, "(body)"],
];

for (const [name, body, status, field] of badBodies) {
  dbTest(`[ingest] refuses ${name} with ${status}`, async () => {
    const before = await count();
    const res = await post(body);
    assert.equal(res.status, status, await res.clone().text());
    assert.equal(res.headers.get("content-type"), "application/problem+json");
    const problem = await res.json();
    assert.equal(problem.status, status);
    assert.ok(
      problem.errors?.some((e: { field: string }) => e.field === field),
      `expected a problem naming ${field}: ${JSON.stringify(problem.errors)}`,
    );
    assert.equal(await count(), before, "nothing written");
  });
}

dbTest("[ingest] a wrong content type is 415", async () => {
  for (const type of ["text/plain", "application/x-www-form-urlencoded", ""]) {
    const res = await app.request("/logs", {
      method: "POST",
      headers: type ? { "content-type": type } : {},
      body: JSON.stringify(event()),
    });
    assert.equal(res.status, 415, type);
    assert.equal((await res.json()).errors[0].field, "content-type");
  }
});

dbTest("[ingest] malformed NDJSON names the line", async () => {
  const res = await post(`${JSON.stringify(event())}\n{oops\n`, "application/x-ndjson");
  assert.equal(res.status, 400);
  assert.equal((await res.json()).errors[0].field, "line 2");
});

dbTest("[ingest] a body over MAX_BODY_BYTES is 413, declared or streamed", async () => {
  const before = await count();
  const big = JSON.stringify(
    Array.from({ length: 3000 }, () => event({ message: "x".repeat(30) })),
  );
  assert.ok(big.length > 65536);
  const declared = await post(big);
  assert.equal(declared.status, 413);
  // Chunked: no Content-Length, the limit must still hold while reading.
  const stream = new ReadableStream({
    start(c) {
      const bytes = new TextEncoder().encode(big);
      for (let i = 0; i < bytes.length; i += 8192) c.enqueue(bytes.slice(i, i + 8192));
      c.close();
    },
  });
  const chunked = await app.request("/logs", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: stream,
  });
  assert.equal(chunked.status, 413);
  assert.equal(await count(), before);
});

dbTest(
  "[ingest] gzip and deflate bodies are taken, limited by their decompressed size",
  async () => {
    const before = await count();
    const compress = async (text: string, format: "gzip" | "deflate") =>
      await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream(format)))
        .arrayBuffer();
    const send = (body: BodyInit, encoding: string) =>
      app.request("/logs", {
        method: "POST",
        headers: { "content-type": "application/json", "content-encoding": encoding },
        body,
      });
    const batch = JSON.stringify([
      event({ service_name: "gzip-test" }),
      event({ service_name: "gzip-test", status_code: 503 }),
    ]);
    const gz = await send(await compress(batch, "gzip"), "gzip");
    assert.equal(gz.status, 201);
    assert.equal((await gz.json()).accepted, 2);
    const one = JSON.stringify(event({ service_name: "gzip-test" }));
    assert.equal((await send(await compress(one, "deflate"), "deflate")).status, 201);
    assert.equal(await count(), before + 3);
    // A bomb: a few KB that inflate to 1 MiB, over this suite's 64 KiB limit.
    const bomb = await compress(" ".repeat(1 << 20) + batch, "gzip");
    assert.ok(bomb.byteLength < 65536);
    assert.equal((await send(bomb, "gzip")).status, 413);
    const garbage = await send("not gzip at all", "gzip");
    assert.equal(garbage.status, 400);
    assert.equal((await garbage.json()).errors[0].field, "(body)");
    const brotli = await send(batch, "br");
    assert.equal(brotli.status, 415);
    // RFC 9110 §12.5.3: a 415 for a content coding names those accepted.
    assert.equal(brotli.headers.get("accept-encoding"), "gzip, deflate");
    assert.equal((await brotli.json()).errors[0].field, "content-encoding");
    const plainType = await post("x", "text/plain");
    assert.equal(plainType.status, 415);
    assert.equal(plainType.headers.get("accept-encoding"), null, "only for an encoding");
    await plainType.body?.cancel();
    assert.equal(await count(), before + 3, "refused bodies stored nothing");
  },
);

dbTest("[ingest] a body cut off before its declared length is 400 and stores nothing", async () => {
  const before = await count();
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  try {
    const conn = await Deno.connect({ port: server.addr.port, hostname: "127.0.0.1" });
    const body = JSON.stringify(event());
    await conn.write(new TextEncoder().encode(
      "POST /logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
        `Content-Length: ${body.length + 50}\r\n\r\n${body}`,
    ));
    await conn.closeWrite();
    const reply = new TextDecoder().decode(
      await new Response(conn.readable).arrayBuffer(),
    );
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.match(reply, /could not be read to the end/);
  } finally {
    await server.shutdown();
  }
  assert.equal(await count(), before);
});

dbTest("[ingest] invalid UTF-8 is 400", async () => {
  const res = await app.request("/logs", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]),
  });
  assert.equal(res.status, 400);
});

dbTest("[ingest] unknown fields are ignored, not stored", async () => {
  const res = await post({ ...event(), extra: "field", id: 5 });
  assert.equal(res.status, 201);
  const { id } = await res.json();
  assert.notEqual(id, 5);
});

dbTest("[ingest] the slowest latencies allowed leave summaries and ingest working", async () => {
  // Issue 11: two events of 1e308 ms in one minute overflowed the rollup sums, and every
  // summary answered 500 from then on. Now the largest latency is 24 h, and batches of it
  // still add up.
  const at = new Date(Date.now() - 120_000).toISOString();
  const huge = event({ service_name: "huge-latency", latency_ms: 1e308, timestamp: at });
  for (let i = 0; i < 2; i++) assert.equal((await post(huge)).status, 422);
  const slowest = event({ service_name: "huge-latency", latency_ms: 86_400_000, timestamp: at });
  const res = await post(Array.from({ length: 50 }, () => slowest));
  assert.equal(res.status, 201, await res.clone().text());
  await compactAll(db.sql);
  const summary = await app.request("/logs/summary?window=15m&service_name=huge-latency");
  assert.equal(summary.status, 200, await summary.clone().text());
  const body = await summary.json();
  assert.equal(body.total_logs, 50);
  assert.equal(body.latency.avg, 86_400_000);
});

dbTest("[ingest] teardown", async () => {
  await db.drop();
});
