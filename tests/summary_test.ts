import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { createDb } from "../src/db/connect.ts";
import { boundedQueries } from "../src/query/bounded.ts";
import { BOUNDS_DESCRIPTION } from "../src/ingest/histogram.ts";
import { decompose, rangesOf } from "../src/query/summary/decompose.ts";
import { NO_EVENT_TYPE } from "../src/query/summary/event-types.ts";
import { summarize, type Summary } from "../src/query/summary/summarize.ts";
import type { SummaryQueryInput } from "../src/query/summary/window.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { mulberry32 } from "../scripts/lib/random.ts";

// 30 days of retention lets events sit several days back, so windows cross whole UTC days.
const db = await preparedDatabase({ RETENTION_DAYS: "30" });
const app = buildApp({ sql: db.sql, config: testConfig({ RETENTION_DAYS: "30" }) });

const MIN = 60_000, HOUR = 3_600_000, DAY = 86_400_000;
const now = Date.now();
const today = Math.floor(now / DAY) * DAY;

// Windows deliberately off every minute, hour and day boundary.
const WIDE = { // raw edges + minutes + hours + whole days
  start: today - 4 * DAY + 3 * HOUR + 17 * MIN + 23_456,
  end: today - DAY + 20 * HOUR + 44 * MIN + 31_987,
};
const HOURS = { // raw edges + minutes + hours
  start: today - 2 * DAY + 5 * HOUR + 48 * MIN + 12_345,
  end: today - 2 * DAY + 9 * HOUR + 3 * MIN + 7_001,
};
const MINUTES = { // raw edges + minutes
  start: today - 3 * DAY + 11 * HOUR + 22 * MIN + 33_333,
  end: today - 3 * DAY + 11 * HOUR + 51 * MIN + 2_222,
};
const SUBMINUTE = { // raw only, across a minute boundary
  start: today - 2 * DAY + 14 * HOUR + 7 * MIN + 41_500,
  end: today - 2 * DAY + 14 * HOUR + 8 * MIN + 19_250,
};
const WINDOWS = { WIDE, HOURS, MINUTES, SUBMINUTE };

// ---- data ------------------------------------------------------------------------------------

interface Ev {
  service_name: string;
  status_code: number;
  latency_ms: number;
  event_type?: string | null;
  timestamp: string;
}

const rand = mulberry32(42);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
const SERVICES = ["auth-service", "checkout-service", "inventory-service", "search-svc"];
const STATUSES = [200, 200, 200, 200, 201, 204, 301, 404, 429, 500, 502, 503];
const TYPES = [null, null, null, "deploy", "payment.charge", "login"];
const randomEvent = (t: number): Ev => ({
  service_name: pick(SERVICES),
  status_code: pick(STATUSES),
  event_type: pick(TYPES),
  latency_ms: Math.round(rand() * rand() * 3000 * 100) / 100,
  timestamp: new Date(t).toISOString(),
});

const events: Ev[] = [];
// Background: spread over the last six days, up to a moment ago.
for (let i = 0; i < 2500; i++) {
  events.push(randomEvent(today - 6 * DAY + Math.floor(rand() * (now - 1000 - (today - 6 * DAY)))));
}
// Around every edge and tier boundary of every window, just inside and just outside.
const align = (t: number, unit: number, up: boolean) =>
  (up ? Math.ceil(t / unit) : Math.floor(t / unit)) * unit;
for (const w of Object.values(WINDOWS)) {
  const marks = [w.start, w.end];
  for (const unit of [MIN, HOUR, DAY]) {
    marks.push(align(w.start, unit, true), align(w.end, unit, false));
  }
  for (const m of marks) {
    for (const d of [-60_001, -15_000, -1_000, -1, 0, 1, 999, 15_000, 59_999]) {
      events.push(randomEvent(m + d));
    }
  }
}
// A little ahead of now (ingest accepts up to a day ahead): stored in today's rollups, but
// outside every window that ends now.
for (const ahead of [2 * MIN, 30 * MIN, 3 * HOUR]) events.push(randomEvent(now + ahead));
// A known latency mix for one service, spread over WIDE so every tier and both raw edges hold
// some: 50 × 3 ms, 45 × 120 ms, 5 × 2000 ms.
for (let i = 0; i < 100; i++) {
  const t = i < 3
    ? WIDE.start + 100 * i
    : i > 96
    ? WIDE.end - 100 * (100 - i)
    : WIDE.start + Math.floor((WIDE.end - WIDE.start) * i / 100);
  const latency = i % 20 < 10 ? 3 : i % 20 < 19 ? 120 : 2000;
  events.push({
    service_name: "latency-svc",
    status_code: 200,
    latency_ms: latency,
    timestamp: iso(t),
  });
}
// Latencies exactly on a bucket bound, read only from the fact table (raw edges).
for (let i = 0; i < 20; i++) {
  events.push({
    service_name: "bounds-svc",
    status_code: i < 5 ? 503 : 200,
    latency_ms: 100,
    event_type: "probe",
    timestamp: iso(SUBMINUTE.start + 1_000 * i),
  });
}

function iso(t: number) {
  return new Date(t).toISOString();
}

const posted = await app.request("/logs", {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(events),
});
if (posted.status !== 201) throw new Error(`seeding failed: ${await posted.text()}`);

// ---- helpers ---------------------------------------------------------------------------------

interface Direct {
  total: number;
  errors: number;
  status: Record<string, number>;
  types: Record<string, number>;
  services: Map<string, { total: number; errors: number; team: string | null }>;
  /** [time, 1 if status >= 500] of every event. */
  times: [number, number][];
}

/** Counted straight from log_events, the slow way. */
async function direct(start: number, end: number, services?: string[]): Promise<Direct> {
  const rows = await db.sql<
    {
      name: string;
      team_owner: string | null;
      status_code: number;
      event_type: string | null;
      ts: Date;
    }[]
  >`
    select s.name, s.team_owner, e.status_code, e.event_type, e."timestamp" as ts
    from log_events e join services s on s.id = e.service_id
    where e."timestamp" >= ${new Date(start)} and e."timestamp" < ${new Date(end)}`;
  const out: Direct = {
    total: 0,
    errors: 0,
    status: {},
    types: {},
    services: new Map(),
    times: [],
  };
  for (const r of rows) {
    if (services && !services.includes(r.name)) continue;
    const err = r.status_code >= 500 ? 1 : 0;
    out.total++;
    out.errors += err;
    out.status[r.status_code] = (out.status[r.status_code] ?? 0) + 1;
    const type = r.event_type ?? NO_EVENT_TYPE;
    out.types[type] = (out.types[type] ?? 0) + 1;
    const s = out.services.get(r.name) ?? { total: 0, errors: 0, team: r.team_owner };
    s.total++;
    s.errors += err;
    out.services.set(r.name, s);
    out.times.push([r.ts.getTime(), err]);
  }
  return out;
}

async function summary(params: Record<string, string | string[]>): Promise<Summary> {
  const res = await app.request(`/logs/summary?${query(params)}`);
  const text = await res.text();
  assert.equal(res.status, 200, text);
  return JSON.parse(text);
}

function query(params: Record<string, string | string[]>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    for (const x of Array.isArray(v) ? v : [v]) qs.append(k, x);
  }
  return qs.toString();
}

const range = (w: { start: number; end: number }) => ({
  start_time: iso(w.start),
  end_time: iso(w.end),
});
const round2 = (n: number) => Math.round(n * 100) / 100;
const sortedEntries = (o: Record<string, number>) =>
  Object.entries(o).sort(([a], [b]) => a < b ? -1 : 1);

function assertMatches(s: Summary, d: Direct, label: string) {
  assert.equal(s.total_logs, d.total, `${label}: total`);
  assert.equal(s.total_errors, d.errors, `${label}: errors`);
  assert.equal(s.error_rate_percent, d.total ? round2(d.errors / d.total * 100) : 0, label);
  assert.deepEqual(
    sortedEntries(s.status_code_breakdown),
    sortedEntries(d.status),
    `${label}: status`,
  );
  assert.deepEqual(
    sortedEntries(s.event_type_breakdown),
    sortedEntries(d.types),
    `${label}: types`,
  );
  assert.equal(
    Object.values(s.event_type_breakdown).reduce((a, n) => a + n, 0),
    s.total_logs,
    `${label}: the type breakdown adds up to total_logs`,
  );
  assert.deepEqual(
    s.services.map((x) => [x.service_name, x.total, x.errors, x.team_owner]).sort(),
    [...d.services].map(([name, v]) => [name, v.total, v.errors, v.team]).sort(),
    `${label}: services`,
  );
}

/** Series: aligned to the step, continuous, covering the window, each bucket exact. */
function assertSeries(s: Summary, d: Direct, stepMs: number, label: string) {
  const start = Date.parse(s.start_time), end = Date.parse(s.end_time);
  const first = Math.floor(start / stepMs) * stepMs;
  const expected = new Map<number, { count: number; errors: number }>();
  for (const [t, err] of d.times) {
    const b = Math.floor(t / stepMs) * stepMs;
    const e = expected.get(b) ?? { count: 0, errors: 0 };
    e.count++;
    e.errors += err;
    expected.set(b, e);
  }
  assert.equal(s.series.length, Math.ceil(end / stepMs) - first / stepMs, `${label}: points`);
  s.series.forEach((p, i) => {
    const t = Date.parse(p.start);
    assert.equal(t, first + i * stepMs, `${label}: bucket ${i} aligned and in order`);
    const e = expected.get(t) ?? { count: 0, errors: 0 };
    assert.equal(p.count, e.count, `${label}: bucket ${p.start}`);
    assert.equal(p.errors, e.errors, `${label}: errors in bucket ${p.start}`);
    assert.equal(p.p95_latency_ms === null, p.count === 0, `${label}: p95 null iff empty`);
  });
  assert.equal(s.series.reduce((a, p) => a + p.count, 0), s.total_logs, `${label}: series sum`);
  assert.equal(s.series.reduce((a, p) => a + p.errors, 0), s.total_errors, `${label}: errors sum`);
}

interface ExactLatency {
  min: number | null;
  max: number | null;
  p: [number, number, number] | null;
  services: Map<string, number>;
  /** Per step bucket: p50, p95, p99. */
  series: Map<number, [number, number, number]>;
}

/** Min, max and percentile_cont of the window's latencies: overall, per service, per step. */
async function exactLatency(start: number, end: number, stepMs: number): Promise<ExactLatency> {
  const from = new Date(start), to = new Date(end);
  const [t] = await db.sql<{ min: number | null; max: number | null; p: number[] | null }[]>`
    select min(latency_ms), max(latency_ms),
      percentile_cont(array[0.5, 0.95, 0.99]) within group (order by latency_ms) as p
    from log_events where "timestamp" >= ${from} and "timestamp" < ${to}`;
  const services = await db.sql<{ name: string; p95: number }[]>`
    select s.name, percentile_cont(0.95) within group (order by e.latency_ms) as p95
    from log_events e join services s on s.id = e.service_id
    where e."timestamp" >= ${from} and e."timestamp" < ${to} group by 1`;
  const series = await db.sql<{ start: Date; p: [number, number, number] }[]>`
    select date_bin(${stepMs / 1000} * interval '1 second', "timestamp", to_timestamp(0)) as start,
      percentile_cont(array[0.5, 0.95, 0.99]) within group (order by latency_ms) as p
    from log_events where "timestamp" >= ${from} and "timestamp" < ${to} group by 1`;
  return {
    min: t.min,
    max: t.max,
    p: t.p ? [t.p[0], t.p[1], t.p[2]] : null,
    services: new Map(services.map((r) => [r.name, r.p95])),
    series: new Map(series.map((r) => [r.start.getTime(), r.p])),
  };
}

/** Within 1% of the exact value (what the latency buckets guarantee). */
function assertNear(v: number | null, exact: number, label: string) {
  assert.ok(v !== null && Math.abs(v - exact) <= exact * 0.01, `${label}: ${v} vs exact ${exact}`);
}

/** Every percentile within 1% of percentile_cont and within the window's min and max. */
function assertLatency(s: Summary, e: ExactLatency, label: string) {
  assert.equal(s.latency.min, e.min, `${label}: min`);
  assert.equal(s.latency.max, e.max, `${label}: max`);
  const within = (v: number | null, what: string) =>
    assert.ok(v === null || (v >= e.min! && v <= e.max!), `${label}: ${what} ${v} in range`);
  if (e.p === null) {
    assert.deepEqual([s.latency.p50, s.latency.p95, s.latency.p99], [null, null, null]);
  } else {
    assertNear(s.latency.p50, e.p[0], `${label}: p50`);
    assertNear(s.latency.p95, e.p[1], `${label}: p95`);
    assertNear(s.latency.p99, e.p[2], `${label}: p99`);
  }
  for (const x of s.services) {
    assertNear(x.p95_latency_ms, e.services.get(x.service_name)!, `${label}: ${x.service_name}`);
    within(x.p95_latency_ms, x.service_name);
  }
  for (const p of s.series) {
    const exact = e.series.get(Date.parse(p.start));
    const got = [p.p50_latency_ms, p.p95_latency_ms, p.p99_latency_ms];
    if (exact === undefined) assert.deepEqual(got, [null, null, null], `${label}: ${p.start}`);
    else {
      assertNear(p.p50_latency_ms, exact[0], `${label}: series p50 ${p.start}`);
      assertNear(p.p95_latency_ms, exact[1], `${label}: series p95 ${p.start}`);
      assertNear(p.p99_latency_ms, exact[2], `${label}: series p99 ${p.start}`);
    }
    for (const v of got) within(v, `series ${p.start}`);
  }
  for (const v of [s.latency.p50, s.latency.p95, s.latency.p99]) within(v, "percentile");
}

async function assertProblem(params: Record<string, string | string[]>, field: string) {
  const res = await app.request(`/logs/summary?${query(params)}`);
  const text = await res.text();
  assert.equal(res.status, 400, `${JSON.stringify(params)}: ${text}`);
  assert.equal(res.headers.get("content-type"), "application/problem+json");
  const body = JSON.parse(text);
  assert.equal(body.status, 400);
  assert.ok(
    body.errors?.some((e: { field: string }) => e.field === field),
    `${JSON.stringify(params)} should name ${field}: ${text}`,
  );
}

// ---- tests -----------------------------------------------------------------------------------

dbTest("[summary] windows are cut into signed pieces that add up to exactly the window", () => {
  const cases = {
    ...WINDOWS,
    LAST_7D: { start: now - 7 * DAY, end: now },
    LAST_24H: { start: now - DAY, end: now },
    ALIGNED: { start: today - 3 * DAY, end: today - DAY },
  };
  const forms = ["cheapest", "additive", "subtractive"] as const;
  for (const [name, w] of Object.entries(cases)) {
    for (const [maxTier, form] of [0, 1, 2].flatMap((t) => forms.map((f) => [t, f] as const))) {
      const label = `${name}/${maxTier}/${form}`;
      const pieces = decompose(w.start, w.end, { maxTier, now, form });
      const probes = new Set([w.start - 1, w.start, w.end - 1, w.end]);
      for (const p of pieces) for (const t of [p.from - 1, p.from, p.to - 1, p.to]) probes.add(t);
      // Netted per source, as the queries read them: disjoint ranges whose weights add up to
      // 1 inside the window and 0 outside.
      const ranges = (["raw", "1m", "1h", "1d"] as const).flatMap((src) => rangesOf(pieces, src));
      for (const src of ["raw", "1m", "1h", "1d"] as const) {
        const rs = rangesOf(pieces, src);
        for (let i = 1; i < rs.length; i++) {
          assert.ok(rs[i - 1].to <= rs[i].from, `${label}: disjoint`);
        }
      }
      for (const t of probes) {
        const inside = w.start <= t && t < w.end ? 1 : 0;
        const weight = pieces.reduce((a, p) => a + (p.from <= t && t < p.to ? p.sign : 0), 0);
        assert.equal(weight, inside, `${label}: weight at ${iso(t)}`);
        const netted = ranges.reduce(
          (a, r) => a + (r.from.getTime() <= t && t < r.to.getTime() ? r.weight : 0),
          0,
        );
        assert.equal(netted, inside, `${label}: netted weight at ${iso(t)}`);
      }
      for (const p of pieces) {
        assert.ok(p.from < p.to, label);
        if (p.source === "raw") {
          assert.equal(Math.floor(p.from / MIN), Math.floor((p.to - 1) / MIN), `${label}: minute`);
        } else {
          const tier = ["1m", "1h", "1d"].indexOf(p.source);
          assert.ok(tier <= maxTier, `${label}: ${p.source} is coarser than allowed`);
          const unit = [MIN, HOUR, DAY][tier];
          assert.equal(p.from % unit, 0, label);
          assert.equal(p.to % unit, 0, label);
        }
      }
    }
  }
  const sources = (w: { start: number; end: number }) =>
    [...new Set(decompose(w.start, w.end, { now }).map((p) => p.source))].sort();
  assert.deepEqual(sources(WIDE), ["1d", "1h", "1m", "raw"]);
  assert.deepEqual(sources(HOURS), ["1h", "1m", "raw"]);
  assert.deepEqual(sources(MINUTES), ["1m", "raw"]);
  assert.deepEqual(sources(SUBMINUTE), ["raw"]);
  assert.deepEqual(decompose(cases.ALIGNED.start, cases.ALIGNED.end, { now }), [
    { source: "1d", from: cases.ALIGNED.start, to: cases.ALIGNED.end, sign: 1 },
  ]);
  // A long partial day reads the day row less what lies outside the window …
  assert.ok(decompose(WIDE.start, WIDE.end, { now }).some((p) => p.sign === -1));
  // … and a window ending now reads today's row: nothing after now is stored, so it is cheap.
  const last = decompose(now - 7 * DAY, now, { now });
  if (now - today > 2 * HOUR) {
    assert.ok(last.some((p) => p.source === "1d" && p.from === today && p.sign === 1));
  }
  // Short edges stay additive, as the brief's decomposition: no subtraction in MINUTES.
  assert.ok(decompose(MINUTES.start, MINUTES.end, { now }).every((p) => p.sign === 1));
  return Promise.resolve(); // pure: no database work
});

dbTest("[summary] an unaligned multi-day window matches log_events exactly", async () => {
  const s = await summary(range(WIDE));
  const d = await direct(WIDE.start, WIDE.end);
  assert.ok(d.total > 1000 && d.errors > 0, "the window holds data");
  assert.equal(s.start_time, iso(WIDE.start));
  assert.equal(s.end_time, iso(WIDE.end));
  assert.equal(s.window, null);
  assertMatches(s, d, "WIDE");
  const teams = Object.fromEntries(s.services.map((x) => [x.service_name, x.team_owner]));
  assert.equal(teams["auth-service"], "Identity Team");
  assert.equal(teams["search-svc"], null);
  for (let i = 1; i < s.services.length; i++) {
    assert.ok(s.services[i - 1].total >= s.services[i].total, "services sorted by total");
  }
  for (const x of s.services) {
    assert.equal(x.error_rate_percent, round2(x.errors / x.total * 100));
    assert.equal(x.availability_percent, round2((x.total - x.errors) / x.total * 100));
    assert.equal(typeof x.p95_latency_ms, "number");
  }
});

dbTest("[summary] the additive and the subtractive forms are both exact", async () => {
  // Edges are read as finer pieces or as a coarser row less the part outside the window,
  // whichever reads less; force each form everywhere to check both.
  const windows = { ...WINDOWS, LAST_7D: { start: now - 7 * DAY, end: now } };
  for (const [name, w] of Object.entries(windows)) {
    const d = await direct(w.start, w.end);
    for (const step of ["1m", "1h", "6h", "1d"] as const) {
      const stepMs = { "1m": MIN, "1h": HOUR, "6h": 6 * HOUR, "1d": DAY }[step];
      if (Math.ceil(w.end / stepMs) - Math.floor(w.start / stepMs) > 1440) continue;
      const q = { start_time: iso(w.start), end_time: iso(w.end), step, service_name: undefined };
      const [add, sub] = await Promise.all([
        summarize(db.sql, q, { form: "additive", now }),
        summarize(db.sql, q, { form: "subtractive", now }),
      ]);
      const label = `${name} ${step}`;
      const exact = await exactLatency(w.start, w.end, stepMs);
      for (const s of [add, sub]) {
        assertMatches(s, d, label);
        assertSeries(s, d, stepMs, label);
        assertLatency(s, exact, label);
      }
      // Bucket counts are exact in both forms, so every percentile agrees; the mean may
      // differ in the last bits of a float sum.
      const { avg: a1, ...p1 } = add.latency, { avg: a2, ...p2 } = sub.latency;
      assert.deepEqual(p2, p1, `${label}: percentiles`);
      assert.ok(a1 === a2 || Math.abs(a1! - a2!) <= 0.01, `${label}: avg ${a1} vs ${a2}`);
      assert.deepEqual(
        sub.services.map((x) => [x.service_name, x.p95_latency_ms]),
        add.services.map((x) => [x.service_name, x.p95_latency_ms]),
        `${label}: service p95`,
      );
      assert.deepEqual(
        sub.series.map((p) => [p.p50_latency_ms, p.p95_latency_ms, p.p99_latency_ms]),
        add.series.map((p) => [p.p50_latency_ms, p.p95_latency_ms, p.p99_latency_ms]),
        `${label}: series percentiles`,
      );
    }
  }
  // The known latency mix, read subtracting wherever possible.
  const q = { ...range(WIDE), service_name: ["latency-svc"] };
  const lat = await summarize(db.sql, q as SummaryQueryInput, { form: "subtractive", now });
  assert.equal(lat.total_logs, 100);
  assert.equal(lat.latency.avg, 155.5);
  assertNear(lat.latency.p95, 120 + 0.05 * 1880, "latency-svc p95");
  assert.deepEqual([lat.latency.min, lat.latency.max], [3, 2000]);
});

dbTest("[summary] windows of hours, minutes and under a minute match log_events", async () => {
  for (const [name, w] of Object.entries({ HOURS, MINUTES, SUBMINUTE })) {
    const d = await direct(w.start, w.end);
    assert.ok(d.total > 0, `${name} holds data`);
    assertMatches(await summary(range(w)), d, name);
  }
  // Start inclusive, end exclusive: events sit exactly on both.
  const edge = await summary({
    start_time: iso(SUBMINUTE.start),
    end_time: iso(SUBMINUTE.start + 1),
  });
  assert.equal(edge.total_logs, (await direct(SUBMINUTE.start, SUBMINUTE.start + 1)).total);
  assert.ok(edge.total_logs >= 2, "the planted event and the first bounds-svc event");
});

dbTest("[summary] named windows end now and match log_events", async () => {
  for (const window of ["15m", "1h", "24h", "7d", "30d"]) {
    const s = await summary({ window });
    assert.equal(s.window, window);
    const start = Date.parse(s.start_time), end = Date.parse(s.end_time);
    assert.equal(
      end - start,
      { "15m": 15 * MIN, "1h": HOUR, "24h": DAY, "7d": 7 * DAY, "30d": 30 * DAY }[window],
    );
    assert.ok(end >= now, "ends now");
    assertMatches(s, await direct(start, end), window);
  }
  const dflt = await summary({});
  assert.equal(dflt.window, "24h");
  assert.equal(dflt.step, "1h");
  assert.equal((await summary({ window: "7d" })).step, "6h");
  assert.equal((await summary({ window: "30d" })).step, "1d");
  assert.equal((await summary({ window: "15m" })).step, "1m");
});

dbTest(
  "[summary] start alone runs until now; end alone covers the 24 hours before it",
  async () => {
    const s = await summary({ start_time: iso(WIDE.start) });
    assert.equal(s.start_time, iso(WIDE.start));
    assert.ok(Date.parse(s.end_time) >= now);
    assertMatches(s, await direct(WIDE.start, Date.parse(s.end_time)), "start only");
    const e = await summary({ end_time: iso(HOURS.end) });
    assert.equal(e.start_time, iso(HOURS.end - DAY));
    assert.equal(e.end_time, iso(HOURS.end));
    assertMatches(e, await direct(HOURS.end - DAY, HOURS.end), "end only");
  },
);

dbTest(
  "[summary] percentiles of a known latency mix are percentile_cont's, within 1%",
  async () => {
    const s = await summary({ ...range(WIDE), service_name: "latency-svc" });
    assert.equal(s.total_logs, 100);
    assert.equal(s.latency.avg, 155.5); // (50×3 + 45×120 + 5×2000) / 100, exact
    assert.equal(s.latency.min, 3);
    assert.equal(s.latency.max, 2000);
    const { p50, p95, p99 } = s.latency;
    // percentile_cont: p50 halfway between the 50th (3) and 51st (120) values; p95 the 96th
    // (120, 0.05 of the way to 2000); p99 0.01 of the way from the 99th (2000) to the 100th.
    const near = (v: number | null, exact: number) =>
      assert.ok(Math.abs(v! - exact) <= exact * 0.01, `${v} vs ${exact}`);
    near(p50, 61.5);
    near(p95, 120 + 0.05 * 1880);
    near(p99, 2000);
    assert.equal(s.services[0].p95_latency_ms, p95);
    // One latency only: every percentile is that latency exactly (min = max).
    const b = await summary({ ...range(SUBMINUTE), service_name: "bounds-svc" });
    assert.equal(b.total_logs, 20);
    assert.equal(b.total_errors, 5);
    assert.equal(b.error_rate_percent, 25);
    assert.equal(b.services[0].availability_percent, 75);
    assert.deepEqual(b.event_type_breakdown, { probe: 20 });
    assert.deepEqual(
      [b.latency.min, b.latency.p50, b.latency.p95, b.latency.p99, b.latency.max],
      [100, 100, 100, 100, 100],
    );
    assert.equal(b.latency.avg, 100);
  },
);

dbTest("[summary] series buckets are aligned, continuous, exact and sum to the total", async () => {
  const d = await direct(WIDE.start, WIDE.end);
  const auto = await summary(range(WIDE));
  assert.equal(auto.step, "1h", "the finest step with at most ~200 points");
  assertSeries(auto, d, HOUR, "auto");
  for (const [step, ms] of [["15m", 15 * MIN], ["6h", 6 * HOUR], ["1d", DAY]] as const) {
    const s = await summary({ ...range(WIDE), step });
    assert.equal(s.step, step);
    assertSeries(s, d, ms, step);
  }
  for (const [name, w] of Object.entries({ HOURS, MINUTES, SUBMINUTE })) {
    const s = await summary({ ...range(w), step: "1m" });
    assertSeries(s, await direct(w.start, w.end), MIN, name);
  }
  const day = await summary({ window: "24h" });
  assertSeries(
    day,
    await direct(Date.parse(day.start_time), Date.parse(day.end_time)),
    HOUR,
    "24h",
  );
});

dbTest("[summary] service_name filters, repeatable; an unknown service gives zeros", async () => {
  const two = ["auth-service", "search-svc"];
  const s = await summary({ ...range(WIDE), service_name: two });
  assertMatches(s, await direct(WIDE.start, WIDE.end, two), "two services");
  assert.deepEqual(s.services.map((x) => x.service_name).sort(), two);
  const comma = await summary({ ...range(WIDE), service_name: two.join(",") });
  assert.equal(comma.total_logs, s.total_logs);
  const none = await summary({ ...range(WIDE), service_name: "no-such-service" });
  assert.equal(none.total_logs, 0);
  assert.deepEqual(none.services, []);
  assert.ok(none.series.every((p) => p.count === 0));
});

dbTest("[summary] a service filter works on the first request of a fresh pool", async () => {
  // The tier queries run concurrently; on a fresh one-connection pool they queue while
  // postgres.js fetches array types, when JS array parameters can be sent malformed. The
  // timing varies, so several fresh pools and windows.
  const two = ["auth-service", "search-svc"];
  const windows = [range(WIDE), range(HOURS), range(MINUTES), { window: "24h" }, { window: "7d" }];
  for (let round = 0; round < 5; round++) {
    for (const w of windows) {
      const pool = createDb(db.url, { max: 1 });
      try {
        // Straight to the query layer, so that nothing else has fetched the types first.
        const s = await summarize(pool, { ...w, service_name: two } as SummaryQueryInput);
        const d = await direct(Date.parse(s.start_time), Date.parse(s.end_time), two);
        assert.equal(s.total_logs, d.total);
      } finally {
        await pool.end();
      }
    }
  }
});

dbTest("[summary] an empty window answers zeros, nulls and empty buckets", async () => {
  const start = today - 20 * DAY + 5 * HOUR + 123;
  const s = await summary({ start_time: iso(start), end_time: iso(start + 2 * DAY) });
  assert.equal(s.total_logs, 0);
  assert.equal(s.total_errors, 0);
  assert.equal(s.error_rate_percent, 0);
  assert.deepEqual(s.status_code_breakdown, {});
  assert.deepEqual(s.event_type_breakdown, {});
  assert.deepEqual(s.latency, {
    avg: null,
    min: null,
    max: null,
    p50: null,
    p95: null,
    p99: null,
  });
  assert.deepEqual(s.services, []);
  assert.equal(s.step, "15m");
  assert.equal(s.series.length, 193);
  assert.ok(s.series.every((p) => p.count === 0 && p.errors === 0 && p.p95_latency_ms === null));
});

dbTest("[summary] every bad parameter is a 400 problem naming it", async () => {
  const at = (t: number) => iso(t);
  await assertProblem({ window: "2h" }, "window");
  await assertProblem({ window: ["24h", "7d"] }, "window");
  await assertProblem({ window: "24h", start_time: at(HOURS.start) }, "window");
  await assertProblem({ window: "7d", end_time: at(HOURS.end) }, "window");
  await assertProblem({ start_time: at(HOURS.end), end_time: at(HOURS.start) }, "start_time");
  await assertProblem({ start_time: at(HOURS.start), end_time: at(HOURS.start) }, "start_time");
  await assertProblem({ start_time: at(now + HOUR) }, "start_time");
  await assertProblem({ start_time: at(now - 32 * DAY), end_time: at(now) }, "start_time");
  await assertProblem({ start_time: "yesterday" }, "start_time");
  await assertProblem({ start_time: "2026-02-30T25:00:00Z" }, "start_time");
  await assertProblem({ end_time: "2026-01-01T00:00:00" }, "end_time");
  await assertProblem({ step: "2m" }, "step");
  await assertProblem({ window: "30d", step: "1m" }, "step");
  await assertProblem({ start_time: at(now - 2 * DAY), end_time: at(now), step: "1m" }, "step");
  // Exactly 31 days is allowed, and 1440 one-minute points too.
  await summary({ start_time: at(today - 31 * DAY), end_time: at(today) });
  await summary({ start_time: at(today - DAY), end_time: at(today), step: "1m" });
});

dbTest("[summary] SQL metacharacters in service_name are refused as an invalid name", async () => {
  const [before] = await db.sql`select count(*)::int as n from services`;
  for (const name of ["x'; drop table services; --", "' or 1=1 --", 'a"b', "a;b", "%", "a b"]) {
    await assertProblem({ service_name: name }, "service_name");
    await assertProblem({ service_name: ["auth-service", name] }, "service_name");
  }
  const [after] = await db.sql`select count(*)::int as n from services`;
  assert.equal(after.n, before.n);
  assert.ok((await summary(range(WIDE))).total_logs > 0);
});

dbTest("[summary] the OpenAPI document describes /logs/summary and the histogram", async () => {
  const doc = await (await app.request("/openapi.json")).json();
  const op = doc.paths["/logs/summary"]?.get;
  assert.ok(op, "documented");
  assert.ok(op.description.includes(BOUNDS_DESCRIPTION));
  const params = op.parameters.map((p: { name: string }) => p.name).sort();
  assert.deepEqual(params, ["end_time", "service_name", "start_time", "step", "window"]);
  assert.ok(op.responses["400"]);
  const schema = op.responses["200"].content["application/json"].schema;
  assert.ok(schema.$ref?.endsWith("LogSummary"));
  const props = doc.components.schemas.LogSummary.properties;
  for (
    const key of [
      "total_logs",
      "error_rate_percent",
      "status_code_breakdown",
      "event_type_breakdown",
      "latency",
      "services",
      "series",
    ]
  ) {
    assert.ok(props[key], key);
  }
});

dbTest(
  "[summary] times at the edge of the calendar are a 400 or a summary, never a 500",
  async () => {
    // Found by Schemathesis: the 24 hours before 0001-01-01 reached PostgreSQL as year 0 (500).
    const edge = await app.request("/logs/summary?end_time=0001-01-01T00:00Z&step=1m");
    assert.equal(edge.status, 400, await edge.clone().text());
    assert.equal((await edge.json()).errors[0].field, "end_time");
    // An offset that reaches back past year 1 selects from its first instant.
    const early = await app.request(
      "/logs/summary?start_time=0001-01-01T00:30%2B01:00&end_time=0001-01-02T00:00Z",
    );
    assert.equal(early.status, 200, await early.clone().text());
    assert.equal((await early.json()).start_time, "0001-01-01T00:00:00.000Z");
    const late = await app.request(
      "/logs/summary?start_time=9999-12-31T00:00Z&end_time=9999-12-31T23:30-01:00",
    );
    assert.equal(late.status, 200, await late.clone().text());
  },
);

dbTest(
  "[summary] bounded queries can refuse parallel plans (serial), the default keeps them",
  async () => {
    const show = (serial?: boolean) =>
      boundedQueries(db.sql, { timeoutMs: 5000, serial }, (conn) =>
        [conn<
          { w: string }[]
        >`select current_setting('max_parallel_workers_per_gather') as w`] as const)
        .then(([rows]) => rows[0].w);
    assert.equal(await show(true), "0");
    assert.notEqual(await show(), "0");
    // Set for the transaction only: the pooled connection keeps the server's setting.
    assert.notEqual(await show(false), "0");
  },
);

dbTest("[summary] teardown", () => db.drop());
