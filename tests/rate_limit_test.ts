// Per-key rate limits (issue 13): a token bucket per key and instance holding two seconds of the
// key's rate_limit_per_s, spent per event by writers and per request by readers; 429 with
// Retry-After over it, RateLimit-Policy / RateLimit on every response of a limited key, and
// observian_rate_limited_total by key prefix. The buckets run on a clock the tests move; one
// test goes over real HTTP for the wiring.
import assert from "node:assert/strict";
import { buildApp } from "../src/app.ts";
import { RateLimits } from "../src/access/rate-limit.ts";
import { createMetrics } from "../src/metrics/registry.ts";
import { dbTest, preparedDatabase, testConfig } from "./helpers/db.ts";

const db = await preparedDatabase();
const ENV_KEY = "env-admin-key-rate-limit-0123";
const config = testConfig({ API_KEYS: ENV_KEY });

/** An app whose rate limits run on a clock the test moves, and its metrics. */
function clockedApp() {
  const clock = { ms: 1_000_000 };
  const metrics = createMetrics({ processMetrics: false });
  const app = buildApp({ sql: db.sql, config, metrics, rateLimitClock: () => clock.ms });
  return { app, clock, metrics };
}

const admin = buildApp({ sql: db.sql, config });

async function createKey(
  body: Record<string, unknown>,
): Promise<{ token: string; prefix: string }> {
  const res = await admin.request("/keys", {
    method: "POST",
    headers: { "X-API-Key": ENV_KEY, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return await res.json();
}

const event = (service: string) => ({ service_name: service, status_code: 200, latency_ms: 3 });

function post(
  app: { request: (p: string, i: RequestInit) => Response | Promise<Response> },
  token: string,
  body: unknown,
) {
  return app.request("/logs", {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function stored(service: string): Promise<number> {
  const [r] = await db.sql`
    select count(*)::int as n from log_events
    where service_id = (select id from services where name = ${service})`;
  return r.n;
}

Deno.test("[rate-limit] a bucket holds two seconds of its rate and refills at it", () => {
  let now = 0;
  const limits = new RateLimits({ now: () => now });
  const first = limits.take("k", 5, 10);
  assert.deepEqual(first, { ok: true, rate: 5, capacity: 10, remaining: 0, fullInS: 2 });
  // Refused without spending: what is refused leaves the bucket as it was.
  const refused = limits.take("k", 5, 1);
  assert.deepEqual(refused, {
    ok: false,
    retryAfterS: 1,
    rate: 5,
    capacity: 10,
    remaining: 0,
    fullInS: 2,
  });
  now += 400; // two tokens
  assert.equal(limits.take("k", 5, 3).ok, false);
  const two = limits.take("k", 5, 2);
  assert.equal(two.ok, true);
  assert.equal(two.remaining, 0);
  // More than a full bucket can never pass: no Retry-After would help.
  now += 60_000;
  assert.equal(limits.take("k", 5, 11).ok, false);
  assert.equal((limits.take("k", 5, 11) as { retryAfterS: number | null }).retryAfterS, null);
  assert.equal(limits.take("k", 5, 10).ok, true);
  // Retry-After is whole seconds, at least 1, enough for the request's cost.
  const slow = limits.take("slow", 0.25, 1);
  assert.equal(slow.ok, true, "a slow key still gets one request (capacity at least 1)");
  const wait = limits.take("slow", 0.25, 1);
  assert.equal(wait.ok, false);
  assert.equal((wait as { retryAfterS: number }).retryAfterS, 4);
});

Deno.test("[rate-limit] idle buckets are forgotten: memory is bounded by the active keys", () => {
  let now = 0;
  const limits = new RateLimits({ now: () => now });
  for (let i = 0; i < 500; i++) limits.take(`key-${i}`, 10, 1);
  assert.equal(limits.size, 500);
  now += 30_000; // every bucket has refilled
  limits.take("busy", 10, 20);
  assert.equal(limits.size, 1, "only the bucket just used is kept");
  // A forgotten bucket is the same as a full one: the key loses nothing.
  assert.equal(limits.take("key-1", 10, 20).ok, true);
});

dbTest(
  "[rate-limit] a writer key at 5/s: 10 events pass, the next is 429; later it passes",
  async () => {
    const { app, clock } = clockedApp();
    const key = await createKey({ name: "shipper-5", role: "writer", rate_limit_per_s: 5 });
    const svc = "rl-writer-svc";

    const batch = await post(app, key.token, Array.from({ length: 10 }, () => event(svc)));
    assert.equal(batch.status, 201, await batch.clone().text());
    assert.equal(batch.headers.get("ratelimit-policy"), '"events";q=10;w=2');
    assert.equal(batch.headers.get("ratelimit"), '"events";r=0;t=2');
    assert.equal(await stored(svc), 10);

    const over = await post(app, key.token, event(svc));
    assert.equal(over.status, 429);
    assert.equal(over.headers.get("content-type"), "application/problem+json");
    assert.equal(over.headers.get("retry-after"), "1");
    assert.equal(over.headers.get("ratelimit-policy"), '"events";q=10;w=2');
    // On a 429, t names the same moment as Retry-After.
    assert.equal(over.headers.get("ratelimit"), '"events";r=0;t=1');
    const problem = await over.json();
    assert.equal(problem.status, 429);
    assert.match(problem.detail, /5 events per second.*bursts of at most 10.*Nothing was stored/);
    assert.equal(await stored(svc), 10, "nothing stored from the refused request");

    clock.ms += 1000; // five events' worth
    const later = await post(app, key.token, event(svc));
    assert.equal(later.status, 201, await later.clone().text());
    assert.equal(later.headers.get("ratelimit"), '"events";r=4;t=2');
    assert.equal(await stored(svc), 11);
  },
);

dbTest("[rate-limit] a batch larger than a writer's burst is 413 naming the limit", async () => {
  const { app } = clockedApp();
  const key = await createKey({ name: "shipper-big", role: "writer", rate_limit_per_s: 5 });
  const svc = "rl-big-svc";
  const res = await post(app, key.token, Array.from({ length: 11 }, () => event(svc)));
  assert.equal(res.status, 413);
  const problem = await res.json();
  assert.match(problem.detail, /5 events per second.*at most 10.*11 events can never be accepted/);
  assert.ok(res.headers.get("ratelimit-policy"));
  assert.equal(await stored(svc), 0);
  // Nothing was spent: a batch of the burst still passes.
  const ok = await post(app, key.token, Array.from({ length: 10 }, () => event(svc)));
  assert.equal(ok.status, 201);
});

dbTest("[rate-limit] a reader key is limited on requests, whatever they ask", async () => {
  const { app, clock } = clockedApp();
  const key = await createKey({ name: "dashboard", role: "reader", rate_limit_per_s: 1 });
  const get = () => app.request("/services", { headers: { "X-API-Key": key.token } });
  const first = await get();
  assert.equal(first.status, 200);
  assert.equal(first.headers.get("ratelimit-policy"), '"requests";q=2;w=2');
  assert.equal(first.headers.get("ratelimit"), '"requests";r=1;t=1');
  await first.body?.cancel();
  assert.equal((await get()).status, 200);
  const over = await get();
  assert.equal(over.status, 429);
  assert.equal(over.headers.get("retry-after"), "1");
  assert.equal(over.headers.get("ratelimit"), '"requests";r=0;t=1');
  assert.match((await over.json()).detail, /1 requests per second/);
  // A refused request costs nothing; once a second has passed, one more passes.
  clock.ms += 1000;
  assert.equal((await get()).status, 200);
  assert.equal((await get()).status, 429);
  // Another instance has its own buckets (limits are per instance).
  const other = buildApp({ sql: db.sql, config });
  const elsewhere = await other.request("/services", { headers: { "X-API-Key": key.token } });
  assert.equal(elsewhere.status, 200);
});

dbTest("[rate-limit] a key without a limit gets no RateLimit fields", async () => {
  const { app } = clockedApp();
  const writer = await createKey({ name: "unlimited-writer", role: "writer" });
  const reader = await createKey({ name: "unlimited-reader", role: "reader" });
  const w = await post(app, writer.token, Array.from({ length: 50 }, () => event("rl-free")));
  assert.equal(w.status, 201);
  const r = await app.request("/services", { headers: { "X-API-Key": reader.token } });
  const e = await app.request("/keys", { headers: { "X-API-Key": ENV_KEY } });
  for (const res of [w, r, e]) {
    assert.equal(res.headers.get("ratelimit"), null);
    assert.equal(res.headers.get("ratelimit-policy"), null);
    await res.body?.cancel();
  }
  // A limited key's responses do carry them, errors included (a 400 here).
  const limited = await createKey({ name: "limited-reader", role: "reader", rate_limit_per_s: 50 });
  for (const [path, status] of [["/services", 200], ["/logs?limit=0", 400]] as const) {
    const res = await app.request(path, { headers: { "X-API-Key": limited.token } });
    assert.equal(res.status, status, path);
    assert.equal(res.headers.get("ratelimit-policy"), '"requests";q=100;w=2', path);
    assert.match(res.headers.get("ratelimit")!, /^"requests";r=\d+;t=1$/, path);
    await res.body?.cancel();
  }
});

dbTest("[rate-limit] observian_rate_limited_total counts refusals by key prefix", async () => {
  const { app, metrics } = clockedApp();
  const a = await createKey({ name: "counted-a", role: "reader", rate_limit_per_s: 1 });
  const b = await createKey({ name: "counted-b", role: "writer", rate_limit_per_s: 1 });
  for (let i = 0; i < 5; i++) {
    (await app.request("/services", { headers: { "X-API-Key": a.token } })).body?.cancel();
  }
  for (let i = 0; i < 3; i++) (await post(app, b.token, event("rl-counted"))).body?.cancel();
  const text = await (await app.request("/metrics")).text();
  assert.match(text, new RegExp(`observian_rate_limited_total\\{key_prefix="${a.prefix}"\\} 3`));
  assert.match(text, new RegExp(`observian_rate_limited_total\\{key_prefix="${b.prefix}"\\} 1`));
  assert.ok(!text.includes(a.token.slice(12)), "never the token");
  assert.match(
    await metrics.registry.getSingleMetricAsString("observian_events_rejected_total"),
    /reason="rate_limited"\} 1/,
  );
});

dbTest("[rate-limit] over real HTTP: 429 with Retry-After and the fields", async () => {
  const app = buildApp({ sql: db.sql, config });
  const key = await createKey({ name: "http-reader", role: "reader", rate_limit_per_s: 1 });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  try {
    const url = `http://127.0.0.1:${server.addr.port}/services`;
    let refused: Response | undefined;
    // Two fit in the burst and one more refills each second: ten in a row cannot all pass.
    for (let i = 0; i < 10 && !refused; i++) {
      const res = await fetch(url, { headers: { authorization: `Bearer ${key.token}` } });
      assert.ok(res.headers.get("ratelimit"), `request ${i} carries RateLimit`);
      if (res.status === 429) refused = res;
      else await res.body?.cancel();
    }
    assert.ok(refused, "refused within ten requests");
    assert.ok(Number(refused.headers.get("retry-after")) >= 1);
    assert.equal(refused.headers.get("ratelimit-policy"), '"requests";q=2;w=2');
    assert.match(refused.headers.get("ratelimit")!, /^"requests";r=0;t=[1-9]\d*$/);
    assert.equal((await refused.json()).status, 429);
  } finally {
    await server.shutdown();
  }
});
