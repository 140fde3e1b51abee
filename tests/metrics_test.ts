// /metrics: the exposition, route templates, database-backed gauges read at scrape time, and
// `promtool check metrics` against a live scrape over real HTTP.
import { onPath } from "./helpers/tools.ts";
import { EventWriter } from "../src/ingest/writer.ts";
import assert from "node:assert/strict";
import { register as globalRegistry } from "prom-client";
import { buildApp } from "../src/app.ts";
import { createDb } from "../src/db/connect.ts";
import { ensurePartitionWindow, utcDay } from "../src/db/partitions.ts";
import { timeQuery } from "../src/metrics/query-timing.ts";
import { createMetrics } from "../src/metrics/registry.ts";
import { LiveHub } from "../src/live/hub.ts";
import { compactAll, dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";
import { newEvent } from "./helpers/events.ts";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a text exposition (enough of the format for these assertions). */
function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = line.match(/^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The value of the one sample with this name and (at least) these labels. */
function sample(ms: Sample[], name: string, labels: Record<string, string> = {}) {
  const found = ms.filter((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

const db = await preparedDatabase();
const config = testConfig();

function fresh() {
  const metrics = createMetrics({ processMetrics: false });
  return { metrics, app: buildApp({ sql: db.sql, config, metrics }) };
}

async function scrape(app: { request: (p: string) => Response | Promise<Response> }) {
  const res = await app.request("/metrics");
  assert.equal(res.status, 200);
  return parseMetrics(await res.text());
}

dbTest("[metrics] GET /metrics answers with the registry's content type", async () => {
  const { app, metrics } = fresh();
  const res = await app.request("/metrics");
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), metrics.registry.contentType);
  assert.match(metrics.registry.contentType, /^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  assert.match(text, /^# TYPE http_requests_total counter$/m);
  assert.match(text, /^# TYPE observian_events_ingested_total counter$/m);
  assert.match(text, /^observian_db_pool_max_connections 10$/m);
});

dbTest("[metrics] requests are counted by route template, never by raw path", async () => {
  const { app } = fresh();
  app.get("/test/items/:id", (c) => c.text("ok"));
  for (const id of ["1", "2", "3"]) await (await app.request(`/test/items/${id}`)).body?.cancel();
  await (await app.request("/no/such/path/42")).body?.cancel();
  await (await app.request("/health")).body?.cancel();
  const m = await scrape(app);
  assert.equal(
    sample(m, "http_requests_total", { method: "GET", route: "/test/items/:id", status: "200" }),
    3,
  );
  assert.equal(
    sample(m, "http_requests_total", { method: "GET", route: "unmatched", status: "404" }),
    1,
  );
  assert.equal(
    sample(m, "http_request_duration_seconds_count", { method: "GET", route: "/health" }),
    1,
  );
  const routes = new Set(
    m.filter((s) => s.name === "http_requests_total").map((s) => s.labels.route),
  );
  for (const route of routes) {
    assert.ok(!/\/(1|2|3|42)$/.test(route), `raw path leaked into a label: ${route}`);
  }
});

dbTest("[metrics] failed requests count as 500 and odd methods share one label", async () => {
  const { app } = fresh();
  app.get("/test/boom", () => {
    throw new Error("boom");
  });
  const res = await app.request("/test/boom");
  assert.equal(res.status, 500);
  await res.body?.cancel();
  await (await app.request("/health", { method: "BREW" })).body?.cancel();
  const m = await scrape(app);
  assert.equal(
    sample(m, "http_requests_total", { method: "GET", route: "/test/boom", status: "500" }),
    1,
  );
  const methods = m.filter((s) => s.name === "http_requests_total").map((s) => s.labels.method);
  assert.ok(methods.includes("other"), methods.join());
  assert.ok(!methods.includes("BREW"));
});

dbTest("[metrics] ingest counters move with POST /logs", async () => {
  const { app } = fresh();
  const post = (body: string) =>
    app.request("/logs", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
    });
  const ok = await post(JSON.stringify([
    { service_name: "metrics-svc", status_code: 200, latency_ms: 3 },
    { service_name: "metrics-svc", status_code: 503, latency_ms: 40 },
  ]));
  assert.equal(ok.status, 201, await ok.text());
  const bad = await post("{not json");
  assert.equal(bad.status, 400);
  await bad.body?.cancel();
  const m = await scrape(app);
  assert.equal(sample(m, "observian_events_ingested_total", { source: "api" }), 2);
  assert.equal(sample(m, "observian_events_rejected_total", { reason: "malformed" }), 1);
  assert.equal(sample(m, "observian_ingest_batch_events_count"), 1);
});

dbTest("[metrics] each refused body counts under the reason of its kind", async () => {
  const metrics = createMetrics({ processMetrics: false });
  const app = buildApp({
    sql: db.sql,
    config: testConfig({ MAX_BODY_BYTES: "1024", BODY_READ_TIMEOUT_MS: "100" }),
    metrics,
  });
  const post = async (body: BodyInit, contentType = "application/json") => {
    const res = await app.request("/logs", {
      method: "POST",
      headers: { "content-type": contentType },
      body,
    });
    await res.body?.cancel();
    return res.status;
  };
  assert.equal(await post(JSON.stringify({ service_name: "metrics-svc", status_code: 99 })), 422);
  assert.equal(await post("x".repeat(2048)), 413);
  assert.equal(await post("{}", "text/plain"), 415);
  // A body that never ends: refused once BODY_READ_TIMEOUT_MS passes.
  const stalled = new ReadableStream<Uint8Array>({
    start: (c) => c.enqueue(new TextEncoder().encode("[")),
  });
  assert.equal(await post(stalled), 408);
  const m = await scrape(app);
  for (const reason of ["invalid", "too_large", "unsupported_media_type", "timeout"]) {
    assert.equal(sample(m, "observian_events_rejected_total", { reason }), 1, reason);
  }
});

dbTest("[metrics] partitions ahead are counted at scrape time, up to the first gap", async () => {
  const { app } = fresh();
  assert.equal(sample(await scrape(app), "observian_partitions_ahead"), 7);
  const gap = utcDay(new Date(Date.now() + 3 * 86_400_000)).replaceAll("-", "");
  await db.sql`drop table ${db.sql(`log_events_p${gap}`)}`;
  try {
    // Days 4..7 still exist, but nothing bridges day 3: only two days are safe.
    assert.equal(sample(await scrape(app), "observian_partitions_ahead"), 2);
  } finally {
    await ensurePartitionWindow(db.sql, { retentionDays: config.retentionDays });
  }
  assert.equal(sample(await scrape(app), "observian_partitions_ahead"), 7);
});

dbTest("[metrics] pending rollup deltas are counted at scrape time", async () => {
  const { app } = fresh();
  await compactAll(db.sql);
  assert.equal(sample(await scrape(app), "observian_rollup_pending_rows"), 0);
  await new EventWriter(db.sql, { compactEveryMs: Infinity }).write([newEvent()]);
  assert.equal(sample(await scrape(app), "observian_rollup_pending_rows"), 1);
  await compactAll(db.sql);
  assert.equal(sample(await scrape(app), "observian_rollup_pending_rows"), 0);
});

dbTest("[metrics] live-feed streams and drops are counted at scrape time", async () => {
  const liveHub = new LiveHub(db.sql, { maxQueue: 2, closeGraceMs: 100 });
  const metrics = createMetrics({ processMetrics: false });
  const app = buildApp({ sql: db.sql, config, metrics, liveHub });
  try {
    assert.equal(sample(await scrape(app), "observian_live_subscribers"), 0);
    const stream = await app.request("/logs/live-feed?service_name=live-metrics", {
      headers: { accept: "text/event-stream" },
    });
    assert.equal(stream.status, 200);
    // Neither the stream's client nor this subscriber reads: three events overflow both
    // queues of two.
    const slow = await liveHub.subscribe({ services: ["live-metrics"] });
    assert.equal(sample(await scrape(app), "observian_live_subscribers"), 2);
    await new EventWriter(db.sql).write(
      [1, 2, 3].map((latencyMs) => newEvent({ serviceName: "live-metrics", latencyMs })),
    );
    for (let i = 0; i < 100 && !slow.ended; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(slow.ended, "overflow");
    for (let i = 0; i < 100 && liveHub.stats().subscribers > 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const after = await scrape(app);
    assert.equal(sample(after, "observian_live_subscribers"), 0);
    assert.equal(sample(after, "observian_live_dropped_subscribers_total"), 2);
    // Counted once: a second scrape adds nothing.
    assert.equal(sample(await scrape(app), "observian_live_dropped_subscribers_total"), 2);
    await stream.body!.cancel();
  } finally {
    await liveHub.close();
  }
});

dbTest("[metrics] pool use is read from pg_stat_activity, beside DB_POOL_MAX", async () => {
  const { app } = fresh();
  const held = await db.sql.reserve();
  try {
    await held`select 1`;
    const m = await scrape(app);
    const states = m.filter((s) => s.name === "observian_db_connections");
    assert.deepEqual(
      states.map((s) => s.labels.state).sort(),
      ["active", "idle", "idle_in_transaction", "other"],
    );
    // The reserved session sits idle; the scrape's own session is left out.
    assert.ok(sample(m, "observian_db_connections", { state: "idle" })! >= 1);
    assert.equal(sample(m, "observian_db_pool_max_connections"), config.dbPoolMax);
  } finally {
    held.release();
  }
});

dbTest("[metrics] job switches and the shared last success come from job_control", async () => {
  const { app, metrics } = fresh();
  await db
    .sql`update job_control set last_success_at = '2026-01-01T00:00:00Z' where job = 'ingestor'`;
  try {
    let m = await scrape(app);
    assert.equal(sample(m, "observian_job_enabled", { observian_job: "ingestor" }), 0);
    assert.equal(sample(m, "observian_job_enabled", { observian_job: "pruner" }), 1);
    assert.equal(
      sample(m, "observian_job_last_success_timestamp_seconds", { observian_job: "ingestor" }),
      Date.parse("2026-01-01T00:00:00Z") / 1000,
    );
    assert.equal(
      sample(m, "observian_job_last_success_timestamp_seconds", { observian_job: "pruner" }),
      undefined,
      "no success recorded anywhere: no series",
    );
    // When a switch was set is exported while the job is on, and goes when it is switched off.
    const [pruner] = await db.sql`select updated_at from job_control where job = 'pruner'`;
    const switched = sample(m, "observian_job_switched_on_timestamp_seconds", {
      observian_job: "pruner",
    });
    assert.ok(Math.abs(switched! - pruner.updated_at.getTime() / 1000) < 0.001, `${switched}`);
    assert.equal(
      sample(m, "observian_job_switched_on_timestamp_seconds", { observian_job: "ingestor" }),
      undefined,
    );
    await db.sql`update job_control set enabled = false where job = 'pruner'`;
    try {
      const off = await scrape(app);
      assert.equal(
        sample(off, "observian_job_switched_on_timestamp_seconds", { observian_job: "pruner" }),
        undefined,
      );
    } finally {
      await db.sql`update job_control set enabled = true where job = 'pruner'`;
    }
    // A later success seen by this instance is not overwritten by an older shared record.
    const later = Date.parse("2026-02-01T00:00:00Z") / 1000;
    metrics.jobLastSuccess.set({ observian_job: "ingestor" }, later);
    m = await scrape(app);
    assert.equal(
      sample(m, "observian_job_last_success_timestamp_seconds", { observian_job: "ingestor" }),
      later,
    );
  } finally {
    await db.sql`update job_control set last_success_at = null`;
  }
});

dbTest(
  "[metrics] GitHub's rate limit is absent until GitHub answers, and after its reset",
  async () => {
    const { app, metrics } = fresh();
    let m = await scrape(app);
    assert.equal(sample(m, "observian_github_rate_limit_remaining"), undefined, "never asked");
    metrics.githubRateLimitRemaining.setUntil(0, Date.now() + 60_000);
    m = await scrape(app);
    assert.equal(sample(m, "observian_github_rate_limit_remaining"), 0, "a real 0");
    metrics.githubRateLimitRemaining.setUntil(0, Date.now() - 1);
    m = await scrape(app);
    assert.equal(sample(m, "observian_github_rate_limit_remaining"), undefined, "reset: unknown");
    metrics.githubRateLimitRemaining.setUntil(42, null);
    m = await scrape(app);
    assert.equal(sample(m, "observian_github_rate_limit_remaining"), 42);
    // The other label-less gauges either hold a true value from the start or are read at scrape.
    // A new label-less gauge starts at 0 in prom-client: each here was checked to mean it.
    const zeros = (await createMetrics({ processMetrics: false }).registry.getMetricsAsJSON())
      .filter((g) => String(g.type) === "gauge" && g.values.some((v) => v.value === 0))
      .map((g) => g.name);
    assert.deepEqual(zeros.sort(), [
      "observian_database_up",
      "observian_db_pool_max_connections",
      "observian_ingest_inflight_bytes",
      "observian_live_subscribers",
      "observian_partitions_ahead",
      "observian_rollup_pending_rows",
    ]);
  },
);

dbTest("[metrics] timeQuery observes durations by query name, failures included", async () => {
  const metrics = createMetrics({ processMetrics: false });
  assert.equal(
    await timeQuery(metrics, "answer", () => db.sql`select 42 as n`.then((r) => r[0].n)),
    42,
  );
  await assert.rejects(() => timeQuery(metrics, "broken", () => db.sql`select nope`));
  const m = parseMetrics(await metrics.registry.metrics());
  assert.equal(sample(m, "observian_db_query_duration_seconds_count", { query: "answer" }), 1);
  assert.equal(sample(m, "observian_db_query_duration_seconds_count", { query: "broken" }), 1);
});

dbTest("[metrics] a database that never answers cannot stall a scrape", async () => {
  // A TCP server that accepts and stays silent: the client would wait for its connect timeout.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  void (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  const silent = createDb(`postgres://u:p@127.0.0.1:${listener.addr.port}/x`, {
    max: 1,
    connectTimeoutS: 3600,
  });
  const metrics = createMetrics({ processMetrics: false });
  const app = buildApp({ sql: silent, config, metrics });
  let guard: ReturnType<typeof setTimeout> | undefined;
  try {
    // Not a timing assertion: only turns a hang into a failure (the scrape's bound is 1 s).
    const res = await Promise.race([
      app.request("/metrics"),
      new Promise<never>((_, reject) => {
        guard = setTimeout(() => reject(new Error("scrape hung")), 30_000);
      }),
    ]);
    assert.equal(res.status, 200);
    const m = parseMetrics(await res.text());
    assert.ok(Number.isNaN(sample(m, "observian_partitions_ahead")));
    assert.ok(Number.isNaN(sample(m, "observian_db_connections", { state: "active" })));
    assert.equal(sample(m, "observian_metrics_collect_failures_total"), 1);
  } finally {
    clearTimeout(guard);
    await silent.end({ timeout: 0 });
    listener.close();
    for (const c of held) c.close();
  }
});

dbTest("[metrics] GET /metrics is in the OpenAPI document as text/plain", async () => {
  const { app } = fresh();
  const doc = await (await app.request("/openapi.json")).json();
  const op = doc.paths["/metrics"]?.get;
  assert.ok(op, "GET /metrics documented");
  assert.ok(op.responses["200"].content["text/plain"]);
});

dbTest("[metrics] nothing is registered on prom-client's global registry", async () => {
  const metrics = createMetrics();
  buildApp({ sql: db.sql, config, metrics });
  assert.equal(globalRegistry.getMetricsAsArray().length, 0);
  assert.ok((await metrics.registry.metrics()).includes("process_resident_memory_bytes"));
});

const promtool = onPath("promtool");
if (!promtool) {
  console.warn("[metrics] promtool not on PATH: skipping its check (.ci/run installs it)");
}

Deno.test({
  name: "[metrics] promtool check metrics finds nothing in a live scrape over HTTP",
  ignore: !promtool,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const metrics = createMetrics();
    const app = buildApp({ sql: db.sql, config, metrics });
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
    try {
      const base = `http://127.0.0.1:${server.addr.port}`;
      // Traffic of every kind, so labelled series exist.
      for (const path of ["/health", "/health/ready", "/nowhere", "/metrics"]) {
        await (await fetch(base + path)).body?.cancel();
      }
      await (await fetch(`${base}/logs`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ service_name: "promtool-svc", status_code: 200, latency_ms: 1 }),
      })).body?.cancel();
      const res = await fetch(`${base}/metrics`);
      const body = await res.text();
      assert.ok(body.includes('route="/health/ready"'));
      const child = new Deno.Command(promtool!, {
        args: ["check", "metrics"],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode(body));
      await writer.close();
      const out = await child.output();
      const report = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(report.trim(), "", report);
      assert.equal(out.code, 0);
    } finally {
      await server.shutdown();
    }
  },
});

dbTest("[metrics] teardown", async () => {
  await db.drop();
});
