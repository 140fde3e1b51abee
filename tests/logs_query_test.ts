import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { filterSql } from "../src/query/filters.ts";
import { encodeCursor } from "../src/query/logs.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { postEvents } from "./helpers/events.ts";

const db = await preparedDatabase();
const app = buildApp({ sql: db.sql, config: testConfig() });

const SERVICES = ["alpha-svc", "beta-svc", "gamma-svc", "team/delta"];
const STATUSES = [200, 201, 204, 301, 404, 429, 500, 503, 101];
const TYPES = ["deploy", "payment.charge", null, null, null];
const BASE = Date.now() - 3_600_000;

const post = (events: Record<string, unknown>[]) => postEvents(app, events);

// 600 events over ~4 days (several daily partitions); every three share one timestamp, so pages
// must break ties by id.
await post(Array.from({ length: 600 }, (_, i) => ({
  service_name: SERVICES[i % 4],
  status_code: STATUSES[(i * 7) % 9],
  event_type: TYPES[i % 5],
  latency_ms: ((i * 13) % 1000) + 0.5,
  timestamp: new Date(BASE - Math.floor(i / 3) * 1_800_000).toISOString(),
  message: `event ${i}`,
  attributes: i % 10 === 0 ? { i, region: "eu" } : null,
})));

interface Row {
  id: number;
  ts: string;
  service: string;
  status: number;
  type: string | null;
  latency: number;
}

/** Every stored event, read straight from the table: the oracle the API is checked against. */
async function allEvents(): Promise<Row[]> {
  const rows = await db.sql<
    {
      id: string;
      ts: string;
      service: string;
      status: number;
      type: string | null;
      latency: number;
    }[]
  >`
    select e.id, to_char(e."timestamp" at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') as ts,
           s.name as service, e.status_code as status, e.event_type as type,
           e.latency_ms as latency
    from log_events e join services s on s.id = e.service_id`;
  return rows.map((r) => ({ ...r, id: Number(r.id) })).sort((a, b) =>
    a.ts === b.ts ? b.id - a.id : a.ts < b.ts ? 1 : -1
  );
}

const ids = (rows: { id: number }[]) => rows.map((r) => r.id);

async function get(path: string) {
  const res = await app.request(path);
  const body = await res.json();
  return { res, body };
}

async function getIds(path: string): Promise<number[]> {
  const { res, body } = await get(path);
  assert.equal(res.status, 200, `${path}: ${JSON.stringify(body)}`);
  return ids(body);
}

/** Follows Link rel=next to the end; returns every page. */
async function allPages(path: string): Promise<{ id: number }[][]> {
  const pages: { id: number }[][] = [];
  let next: string | null = path;
  while (next) {
    const res = await app.request(next);
    assert.equal(res.status, 200);
    const page = await res.json();
    pages.push(page);
    next = linkNext(res.headers.get("link"));
    assert.equal(res.headers.get("x-next-cursor") !== null, next !== null);
    assert.ok(pages.length < 1000, "pagination does not end");
  }
  return pages;
}

function linkNext(link: string | null): string | null {
  if (link === null) return null;
  const m = link.match(/^<([^>]+)>; rel="next"$/);
  assert.ok(m, `malformed Link header: ${link}`);
  return m[1];
}

const iso = (ms: number) => new Date(ms).toISOString();

dbTest("[logs] unfiltered: newest first, 20 by default, every field of the event", async () => {
  const all = await allEvents();
  const { res, body } = await get("/logs");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(ids(body), ids(all.slice(0, 20)));
  const first = body[0];
  assert.deepEqual(Object.keys(first).sort(), [
    "attributes",
    "event_type",
    "id",
    "latency_ms",
    "message",
    "service_name",
    "status_code",
    "team_owner",
    "timestamp",
  ]);
  const [row] = await db.sql`
    select e.*, s.name, s.team_owner from log_events e join services s on s.id = e.service_id
    where e.id = ${first.id}`;
  assert.equal(first.timestamp, row.timestamp.toISOString());
  assert.equal(first.service_name, row.name);
  assert.equal(first.team_owner, row.team_owner);
  assert.equal(first.status_code, row.status_code);
  assert.equal(first.event_type, row.event_type);
  assert.equal(first.latency_ms, row.latency_ms);
  assert.equal(first.message, row.message);
  assert.deepEqual(first.attributes, row.attributes);
  const withAttrs = body.find((e: { attributes: unknown }) => e.attributes !== null);
  assert.deepEqual(Object.keys(withAttrs.attributes).sort(), ["i", "region"]);
});

dbTest("[logs] each filter alone returns exactly the matching events, in order", async () => {
  const all = await allEvents();
  const mid = all[Math.floor(all.length / 2)];
  const q = all[Math.floor(all.length / 4)];
  const cases: [string, (r: Row) => boolean][] = [
    ["service_name=beta-svc", (r) => r.service === "beta-svc"],
    ["service_name=team/delta", (r) => r.service === "team/delta"],
    ["status_code=503", (r) => r.status === 503],
    ["status_class=5xx", (r) => r.status >= 500],
    ["status_class=2xx", (r) => r.status >= 200 && r.status < 300],
    ["status_class=1xx", (r) => r.status < 200],
    ["event_type=deploy", (r) => r.type === "deploy"],
    ["event_type=payment.charge", (r) => r.type === "payment.charge"],
    [`start_time=${mid.ts}Z`, (r) => r.ts >= mid.ts],
    [`end_time=${mid.ts}Z`, (r) => r.ts <= mid.ts],
    ["min_latency_ms=900", (r) => r.latency >= 900],
    ["min_latency_ms=900.5", (r) => r.latency >= 900.5],
    // A number as JSON (and Python, and most clients) may write it.
    ["min_latency_ms=9.005e2", (r) => r.latency >= 900.5],
    [`start_time=${mid.ts}Z&end_time=${q.ts}Z`, (r) => r.ts >= mid.ts && r.ts <= q.ts],
  ];
  for (const [query, keep] of cases) {
    const expected = ids(all.filter(keep));
    assert.ok(expected.length > 0 && expected.length < all.length, `${query}: a real filter`);
    assert.deepEqual(await getIds(`/logs?limit=1000&${query}`), expected, query);
  }
});

dbTest("[logs] filters combine (AND), services repeat or comma-separate (OR)", async () => {
  const all = await allEvents();
  const from = all[500].ts, to = all[100].ts;
  const cases: [string, (r: Row) => boolean][] = [
    [
      `service_name=alpha-svc&status_class=5xx&start_time=${from}Z&end_time=${to}Z`,
      (r) => r.service === "alpha-svc" && r.status >= 500 && r.ts >= from && r.ts <= to,
    ],
    [
      "service_name=alpha-svc&service_name=gamma-svc",
      (r) => r.service === "alpha-svc" || r.service === "gamma-svc",
    ],
    [
      "service_name=alpha-svc,team/delta&status_class=4xx",
      (r) =>
        (r.service === "alpha-svc" || r.service === "team/delta") && r.status >= 400 &&
        r.status < 500,
    ],
    ["event_type=deploy&min_latency_ms=500", (r) => r.type === "deploy" && r.latency >= 500],
    [
      `status_code=404&service_name=beta-svc&end_time=${to}Z`,
      (r) => r.status === 404 && r.service === "beta-svc" && r.ts <= to,
    ],
    [
      `service_name=gamma-svc&event_type=payment.charge&min_latency_ms=100&start_time=${from}Z`,
      (r) =>
        r.service === "gamma-svc" && r.type === "payment.charge" && r.latency >= 100 &&
        r.ts >= from,
    ],
    ["service_name=alpha-svc&status_code=503&status_class=4xx", () => false],
  ];
  for (const [query, keep] of cases) {
    assert.deepEqual(await getIds(`/logs?limit=1000&${query}`), ids(all.filter(keep)), query);
  }
});

dbTest("[logs] limit: 1 and 1000 are the bounds, default 20", async () => {
  const all = await allEvents();
  assert.deepEqual(await getIds("/logs?limit=1"), ids(all.slice(0, 1)));
  assert.deepEqual(await getIds("/logs?limit=1000"), ids(all.slice(0, 1000)));
  assert.deepEqual(
    await getIds("/logs?limit=37&service_name=beta-svc"),
    ids(
      all.filter((r) => r.service === "beta-svc").slice(0, 37),
    ),
  );
  for (const bad of ["0", "1001", "-1", "1.5", "abc", "NaN", "", "1e2", "99999999999999999999"]) {
    await assertBadParam(`/logs?limit=${bad}`, "limit");
  }
});

dbTest("[logs] offset skips events in the same order; capped; not with cursor", async () => {
  const all = await allEvents();
  assert.deepEqual(await getIds("/logs?offset=0&limit=5"), ids(all.slice(0, 5)));
  assert.deepEqual(await getIds("/logs?offset=13&limit=5"), ids(all.slice(13, 18)));
  const beta = all.filter((r) => r.service === "beta-svc");
  assert.deepEqual(
    await getIds("/logs?service_name=beta-svc&offset=40&limit=30"),
    ids(beta.slice(40, 70)),
  );
  assert.deepEqual(await getIds(`/logs?offset=${all.length}`), []);
  assert.deepEqual(await getIds("/logs?offset=100000"), []);
  for (const bad of ["100001", "-1", "abc", "NaN", "2.5"]) {
    await assertBadParam(`/logs?offset=${bad}`, "offset");
  }
  const { res } = await get("/logs?limit=2");
  const cursor = res.headers.get("x-next-cursor")!;
  const both = await assertBadParam(`/logs?offset=2&cursor=${cursor}`, "offset");
  assert.ok(both.errors.some((e: { field: string }) => e.field === "cursor"));
});

dbTest("[logs] cursor pages through the whole set: the full ordered set, once each", async () => {
  const all = await allEvents();
  // limit 7 splits the groups of three events that share a timestamp.
  for (
    const [query, keep] of [
      ["", () => true],
      ["service_name=gamma-svc", (r: Row) => r.service === "gamma-svc"],
      [
        "service_name=alpha-svc&service_name=beta-svc&status_class=5xx",
        (r: Row) => (r.service === "alpha-svc" || r.service === "beta-svc") && r.status >= 500,
      ],
      ["event_type=deploy", (r: Row) => r.type === "deploy"],
    ] as [string, (r: Row) => boolean][]
  ) {
    const limit = query === "" ? 53 : 7;
    const pages = await allPages(`/logs?limit=${limit}&${query}`);
    const expected = ids(all.filter(keep));
    assert.deepEqual(pages.flat().map((e) => e.id), expected, query);
    assert.ok(pages.slice(0, -1).every((p) => p.length === limit), query);
  }
});

dbTest("[logs] Link and X-Next-Cursor appear exactly when another page exists", async () => {
  const gamma = (await allEvents()).filter((r) => r.service === "gamma-svc");
  const n = gamma.length;
  // Exactly n: one page, no next even though it is full.
  let { res, body } = await get(`/logs?service_name=gamma-svc&limit=${n}`);
  assert.equal(body.length, n);
  assert.equal(res.headers.get("link"), null);
  assert.equal(res.headers.get("x-next-cursor"), null);
  // n - 1: a next page holding the last one, and no further link.
  ({ res, body } = await get(`/logs?service_name=gamma-svc&limit=${n - 1}`));
  assert.equal(body.length, n - 1);
  const next = linkNext(res.headers.get("link"));
  assert.ok(next);
  assert.equal(
    new URL(next, "http://x").searchParams.get("cursor"),
    res.headers.get("x-next-cursor"),
  );
  ({ res, body } = await get(next));
  assert.deepEqual(ids(body), ids(gamma.slice(n - 1)));
  assert.equal(res.headers.get("link"), null);
  assert.equal(res.headers.get("x-next-cursor"), null);
  // Nothing matches: no link either.
  ({ res, body } = await get("/logs?service_name=no-such-service"));
  assert.deepEqual(body, []);
  assert.equal(res.headers.get("link"), null);
});

dbTest("[logs] the next link keeps path and filters, sets cursor, drops offset", async () => {
  const keep = (await allEvents()).filter((r) =>
    r.service === "alpha-svc" && r.status >= 400 && r.status < 500
  );
  const { res } = await get(
    "/logs?service_name=alpha-svc&status_class=4xx&offset=3&limit=4&min_latency_ms=0",
  );
  assert.equal(res.status, 200);
  const next = new URL(linkNext(res.headers.get("link"))!, "http://x");
  assert.equal(next.pathname, "/logs");
  assert.equal(next.searchParams.get("offset"), null);
  assert.equal(next.searchParams.get("service_name"), "alpha-svc");
  assert.equal(next.searchParams.get("status_class"), "4xx");
  assert.equal(next.searchParams.get("limit"), "4");
  assert.equal(next.searchParams.get("min_latency_ms"), "0");
  assert.equal(next.searchParams.get("cursor"), res.headers.get("x-next-cursor"));
  assert.deepEqual(await getIds(next.pathname + next.search), ids(keep.slice(7, 11)));
});

dbTest("[logs] cursor pages stay free of duplicates and gaps while events arrive", async () => {
  const svc = "moving-svc";
  const t0 = Date.now() - 2 * 3_600_000;
  // 60 events a minute apart, in pairs sharing a timestamp.
  await post(Array.from({ length: 60 }, (_, i) => ({
    service_name: svc,
    status_code: 200,
    latency_ms: 1,
    timestamp: iso(t0 - Math.floor(i / 2) * 60_000),
    message: `orig ${i}`,
  })));
  const original = ids((await allEvents()).filter((r) => r.service === svc));
  const seen: { id: number; timestamp: string; message: string }[] = [];
  const expectedLate: string[] = [];
  const unexpectedLate: string[] = [];
  let next: string | null = `/logs?service_name=${svc}&limit=9`;
  for (let round = 0; next; round++) {
    const res: Response = await app.request(next);
    assert.equal(res.status, 200);
    seen.push(...await res.json());
    next = linkNext(res.headers.get("link"));
    if (!next || round > 3) continue;
    // Between fetches: newer events (above every page), events in the part already read, and
    // events in the part still ahead, including one at the very timestamp of the last row read.
    const lastTs = Date.parse(seen[seen.length - 1].timestamp);
    const arrivals = [
      { message: `new ${round}`, ts: t0 + 60_000 * (round + 1), ahead: false },
      { message: `read ${round}`, ts: lastTs + 30_000, ahead: false },
      { message: `ahead ${round}`, ts: lastTs - 90_000, ahead: true },
      // Same time as the cursor but a higher id: sorts before the cursor, so it is not read.
      { message: `tie ${round}`, ts: lastTs, ahead: false },
    ];
    await post(arrivals.map((a) => ({
      service_name: svc,
      status_code: 200,
      latency_ms: 1,
      timestamp: iso(a.ts),
      message: a.message,
    })));
    for (const a of arrivals) (a.ahead ? expectedLate : unexpectedLate).push(a.message);
  }
  const seenIds = ids(seen);
  assert.equal(new Set(seenIds).size, seenIds.length, "no event twice");
  for (const id of original) assert.ok(seenIds.includes(id), `event ${id} was skipped`);
  const messages = seen.map((e) => e.message);
  for (const m of expectedLate) assert.ok(messages.includes(m), `${m} arrived ahead, not read`);
  for (const m of unexpectedLate) assert.ok(!messages.includes(m), `${m} read after the cursor`);
  // Strictly newest first across all pages.
  for (let i = 1; i < seen.length; i++) {
    const a = seen[i - 1], b = seen[i];
    assert.ok(a.timestamp > b.timestamp || (a.timestamp === b.timestamp && a.id > b.id));
  }
});

dbTest("[logs] time bounds are inclusive, to the microsecond, in any zone", async () => {
  const all = await allEvents();
  const t = all.find((r) => r.service === "beta-svc")!;
  const at = (q: string) => getIds(`/logs?service_name=beta-svc&limit=1000&${q}`);
  const same = all.filter((r) => r.service === "beta-svc" && r.ts === t.ts);
  assert.ok(same.length >= 1);
  const exact = ids(same);
  const tsZ = `${t.ts}Z`; // microsecond text: 2026-11-28T07:00:00.123000Z
  assert.deepEqual(await at(`start_time=${tsZ}&end_time=${tsZ}`), exact);
  // One microsecond later / earlier excludes it: a millisecond Date would have kept it.
  const plus1us = tsZ.replace(
    /(\d{6})Z$/,
    (d) => String(Number(d.slice(0, 6)) + 1).padStart(6, "0") + "Z",
  );
  assert.notEqual(plus1us, tsZ);
  assert.deepEqual(await at(`start_time=${plus1us}&end_time=${plus1us}`), []);
  // The same instant written in another zone, with a space, without the colon.
  const ms = Date.parse(tsZ);
  const plus2 = new Date(ms + 2 * 3_600_000).toISOString().slice(0, 23).replace("T", " ");
  assert.deepEqual(
    await at(
      `start_time=${encodeURIComponent(plus2 + "+0200")}&end_time=${
        encodeURIComponent(plus2 + "+02:00")
      }`,
    ),
    exact,
  );
});

dbTest("[logs] bulk-loaded microsecond times: cursor pages exact, bounds exact", async () => {
  // COPY-style bulk loads (the benchmark's, not ingest's millisecond Dates) store microseconds;
  // loaded as the bulk path does, rollups rebuilt after. Four rows per millisecond, 1 µs apart,
  // and pairs sharing the very same microsecond.
  const [{ id: serviceId }] = await db.sql`
    insert into services (name) values ('bulk-svc') returning id`;
  const t0 = new Date(Date.now() - 5 * 3_600_000);
  await db.sql`
    insert into log_events (service_id, "timestamp", status_code, latency_ms, message)
    select ${serviceId}, ${t0}::timestamptz - (g / 2) * interval '1 microsecond'
             - (g / 8) * interval '1 millisecond',
           200, 1, 'bulk ' || g
    from generate_series(0, 199) g`;
  await db.sql`
    select observian_rollup_rebuild(${t0}::timestamptz - interval '1 hour',
                                    ${t0}::timestamptz + interval '1 hour')`;
  const bulk = (await allEvents()).filter((r) => r.service === "bulk-svc");
  assert.equal(bulk.length, 200);
  assert.ok(bulk.some((r) => !r.ts.endsWith("000")), "microseconds stored");
  for (const limit of [1, 3, 8]) {
    const pages = await allPages(`/logs?service_name=bulk-svc&limit=${limit}`);
    assert.deepEqual(pages.flat().map((e) => e.id), ids(bulk), `limit ${limit}`);
  }
  const pages = await allPages("/logs?limit=7&start_time=" + bulk[199].ts + "Z");
  assert.deepEqual(
    pages.flat().map((e) => e.id).filter((id) => ids(bulk).includes(id)),
    ids(bulk),
  );
  // Bounds to the microsecond: [ts of row 10, ts of row 3] holds exactly rows 3..10 and their
  // same-microsecond twins.
  const lo = bulk[10].ts, hi = bulk[3].ts;
  assert.deepEqual(
    await getIds(`/logs?service_name=bulk-svc&limit=1000&start_time=${lo}Z&end_time=${hi}Z`),
    ids(bulk.filter((r) => r.ts >= lo && r.ts <= hi)),
  );
  assert.ok(bulk.filter((r) => r.ts >= lo && r.ts <= hi).length < 12);
});

dbTest("[logs] bad parameters are 400 problems naming each field", async () => {
  const injection = encodeURIComponent("' or 1=1 --");
  const cases: [string, string][] = [
    ["status_code=abc", "status_code"],
    ["status_code=99", "status_code"],
    ["status_code=600", "status_code"],
    ["status_code=NaN", "status_code"],
    ["status_code=5.5", "status_code"],
    ["status_code=-1", "status_code"],
    [`status_code=${injection}`, "status_code"],
    ["status_class=6xx", "status_class"],
    ["status_class=500", "status_class"],
    [`status_class=${injection}`, "status_class"],
    ["start_time=yesterday", "start_time"],
    ["start_time=2026-02-30T00:00:00Z", "start_time"],
    ["start_time=2025-02-29T00:00:00Z", "start_time"],
    ["start_time=2026-01-01T24:00:00Z", "start_time"],
    ["start_time=2026-01-01T00:00:00", "start_time"],
    ["start_time=NaN", "start_time"],
    ["start_time=0000-01-01T00:00:00Z", "start_time"],
    ["start_time=2026-01-01T00:00:00%2B25:00", "start_time"],
    [`start_time=${injection}`, "start_time"],
    ["end_time=2026-13-01T00:00:00Z", "end_time"],
    ["end_time=2026-01-01T12:60:00Z", "end_time"],
    [`end_time=${injection}`, "end_time"],
    ["start_time=2026-01-02T00:00:00Z&end_time=2026-01-01T00:00:00Z", "start_time"],
    ["min_latency_ms=-1", "min_latency_ms"],
    ["min_latency_ms=abc", "min_latency_ms"],
    ["min_latency_ms=NaN", "min_latency_ms"],
    ["min_latency_ms=Infinity", "min_latency_ms"],
    ["min_latency_ms=0x10", "min_latency_ms"],
    ["min_latency_ms=86400001", "min_latency_ms"],
    ["min_latency_ms=", "min_latency_ms"],
    [`min_latency_ms=${"9".repeat(400)}`, "min_latency_ms"],
    [`min_latency_ms=${injection}`, "min_latency_ms"],
    [`service_name=${injection}`, "service_name"],
    ["service_name=", "service_name"],
    ["service_name=a%20b", "service_name"],
    ["service_name=alpha-svc,", "service_name"],
    [`service_name=${"a".repeat(101)}`, "service_name"],
    ["event_type=", "event_type"],
    [`event_type=${"x".repeat(201)}`, "event_type"],
    ["event_type=a%00b", "event_type"],
    ["limit=1&limit=2", "limit"],
    ["cursor=garbage!", "cursor"],
    // A misspelt parameter is named, not ignored.
    ["limt=5", "limt"],
    ["cursor=", "cursor"],
    [`cursor=${injection}`, "cursor"],
    [`cursor=${btoa("x|y|z")}`, "cursor"],
  ];
  for (const [query, field] of cases) await assertBadParam(`/logs?${query}`, field);
  // Several bad parameters at once: each is named.
  const body = await assertBadParam("/logs?limit=0&status_code=1&cursor=x", "limit");
  const fields = body.errors.map((e: { field: string }) => e.field).sort();
  assert.deepEqual(fields, ["cursor", "limit", "status_code"]);
});

dbTest("[logs] a tampered or forged cursor is a 400 naming cursor", async () => {
  const { res } = await get("/logs?limit=3");
  const cursor = res.headers.get("x-next-cursor")!;
  assert.ok(cursor);
  // Every single-character edit is refused (a checksum covers the whole position).
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (let i = 0; i < cursor.length; i++) {
    const c = alphabet[(alphabet.indexOf(cursor[i]) + 1) % alphabet.length];
    const edited = cursor.slice(0, i) + c + cursor.slice(i + 1);
    const r = await app.request(`/logs?cursor=${edited}`);
    if (r.status === 200) {
      // Base64 padding bits can change without changing the decoded text.
      assert.equal(i, cursor.length - 1, `edit at ${i} accepted`);
      assert.deepEqual(ids(await r.json()), await getIds(`/logs?cursor=${cursor}`));
    } else {
      assert.equal(r.status, 400);
      assert.equal((await r.json()).errors[0].field, "cursor");
    }
  }
  await assertBadParam(`/logs?cursor=${cursor.slice(0, -4)}`, "cursor");
  await assertBadParam(`/logs?cursor=${cursor}AAAA`, "cursor");
  // Well-formed and checksummed, but not a real time or id: still a 400, never a 500.
  for (
    const forged of [
      { ts: "2026-02-30T00:00:00.000000Z", id: "5" },
      { ts: "2026-01-01 00:00:00+00", id: "5" },
      { ts: "2026-01-01T00:00:00.000000Z", id: "0" },
      { ts: "2026-01-01T00:00:00.000000Z", id: "9223372036854775808" },
      { ts: "2026-01-01T00:00:00.000000Z", id: "1 or 1=1" },
      { ts: "' or 1=1 --", id: "5" },
    ]
  ) {
    await assertBadParam(`/logs?cursor=${encodeCursor(forged)}`, "cursor");
  }
  // A well-formed position works even far outside the data.
  assert.deepEqual(
    await getIds(`/logs?cursor=${encodeCursor({ ts: "2001-01-01T00:00:00.000000Z", id: "1" })}`),
    [],
  );
});

dbTest("[logs] SQL metacharacters in valid values simply match nothing", async () => {
  const [{ n: before }] = await db.sql`select count(*)::int as n from log_events`;
  for (
    const value of [
      "' or 1=1 --",
      "deploy' or '1'='1",
      "%",
      "_",
      "deploy%",
      "\\",
      "'; drop table log_events; --",
      '"',
      "$1",
    ]
  ) {
    const ev = encodeURIComponent(value);
    assert.deepEqual(await getIds(`/logs?event_type=${ev}`), [], value);
    assert.deepEqual(await getIds(`/logs?service_name=alpha-svc&event_type=${ev}`), [], value);
  }
  for (const name of ["--", "a/../b", "alpha-svc--", "..", "_", "a.b/c_d-e"]) {
    assert.deepEqual(await getIds(`/logs?service_name=${encodeURIComponent(name)}`), [], name);
  }
  const [{ n: after }] = await db.sql`select count(*)::int as n from log_events`;
  assert.equal(after, before);
});

dbTest("[logs] the OpenAPI document describes GET /logs and its parameters", async () => {
  const doc = await (await app.request("/openapi.json")).json();
  const op = doc.paths["/logs"].get;
  assert.ok(op, "GET /logs documented");
  assert.ok(doc.paths["/logs"].post, "POST /logs still documented");
  const names = op.parameters.map((p: { name: string }) => p.name).sort();
  assert.deepEqual(names, [
    "cursor",
    "end_time",
    "event_type",
    "limit",
    "min_latency_ms",
    "offset",
    "service_name",
    "start_time",
    "status_class",
    "status_code",
  ]);
  assert.ok(op.responses["200"].headers.Link);
  assert.ok(op.responses["200"].headers["X-Next-Cursor"]);
  assert.ok(op.responses["400"]);
});

async function assertBadParam(path: string, field: string) {
  const res = await app.request(path);
  const text = await res.text();
  assert.equal(res.status, 400, `${path}: ${res.status} ${text}`);
  assert.equal(res.headers.get("content-type"), "application/problem+json", path);
  const body = JSON.parse(text);
  assert.equal(body.status, 400);
  assert.ok(
    body.errors?.some((e: { field: string }) => e.field === field),
    `${path}: expected an error on ${field}, got ${text}`,
  );
  return body;
}

dbTest(
  "[logs] a query running past QUERY_TIMEOUT_MS is stopped: 503 problem, pool intact",
  async () => {
    const bounded = buildApp({ sql: db.sql, config: testConfig({ QUERY_TIMEOUT_MS: "300" }) });
    // A lock held elsewhere makes every read of log_events wait: a query that cannot finish in
    // time, whatever the machine's speed. statement_timeout counts the wait.
    const locker = await db.sql.reserve();
    await locker`begin`;
    await locker`lock table log_events in access exclusive mode`;
    try {
      for (const path of ["/logs?min_latency_ms=1", "/logs/live-feed"]) {
        // Without the bound the request would wait for the lock: fail instead of hanging.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const res = await Promise.race([
          bounded.request(path),
          new Promise<never>((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${path} was not stopped`)), 5000);
          }),
        ]).finally(() => clearTimeout(timer));
        assert.equal(res.status, 503, path);
        assert.equal(res.headers.get("content-type"), "application/problem+json");
        assert.equal(res.headers.get("retry-after"), null);
        assert.match((await res.json()).detail, /QUERY_TIMEOUT_MS/);
      }
    } finally {
      await locker`rollback`;
      locker.release();
    }
    // The connections that ran the stopped queries serve the next ones.
    for (let i = 0; i < 12; i++) assert.equal((await bounded.request("/logs?limit=1")).status, 200);
  },
);

dbTest("[logs] slow-request searches can use the partial index on latency >= 1 s", async () => {
  await post([
    { service_name: "alpha-svc", status_code: 200, latency_ms: 1500 },
    { service_name: "beta-svc", status_code: 504, latency_ms: 30_000 },
  ]);
  const res = await app.request("/logs?min_latency_ms=1200");
  assert.equal(res.status, 200);
  const rows: { latency_ms: number }[] = await res.json();
  assert.deepEqual(rows.map((r) => r.latency_ms).sort((a, b) => a - b), [1500, 30_000]);
  // The filter GET /logs uses, planned with its values as GET /logs plans it: it must be able
  // to read only the partial index (seq scans off, so a tiny table cannot hide the choice).
  const children = new Set((await db.sql`
    select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'log_events_slow_time_idx'::regclass`).map((r) => r.relname as string));
  assert.ok(children.size > 0);
  const used = await db.sql.begin(async (tx) => {
    await tx`set local enable_seqscan = off`;
    await tx`set local enable_bitmapscan = off`;
    await tx`set local plan_cache_mode = force_custom_plan`;
    const [row] = await tx`explain (format json) select e.id from log_events e
      where true ${filterSql(db.sql, { minLatencyMs: 1200 })}
      order by e."timestamp" desc, e.id desc limit 21`;
    return [...JSON.stringify(row["QUERY PLAN"]).matchAll(/"Index Name":"([^"]+)"/g)]
      .map((m) => m[1]);
  });
  assert.ok(used.length > 0 && used.every((name) => children.has(name)), used.join(", "));
});

dbTest("[logs] teardown", () => db.drop());
